"""Wake models: where a `[wake] models` entry's file is, and openWakeWord loaded lean.

A bare name is looked up in the shipped models dir, then in openwakeword's own resources.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.memory import release_freed_memory
from heymusic.wake.features import lean_features_class, openwakeword_resources


def resolve_wake_model(settings: Settings, name: str) -> Path:
    """The file for one `[wake] models` entry.

    Raises:
        UserError: naming the file when neither the models dir nor openwakeword has it.
    """
    path = settings.model_path(name)
    if path.exists():
        return path
    stock = openwakeword_resources() / name
    if Path(name).name == name and stock.exists():
        return stock
    raise UserError(
        f"wake model {path} not found; fix [wake] models in the config or restore the file "
        f"(stock models: {', '.join(sorted(p.name for p in openwakeword_resources().glob('*_v*.onnx')))})"
    )


_VERIFIER_TRAINING = "openwakeword.custom_verifier_model"


def _defer_verifier_training_import() -> None:
    """openwakeword's package __init__ imports its verifier-training module, which loads
    scikit-learn and scipy (~100 MB resident) that detection never uses: load it on first
    use instead."""
    if "openwakeword" in sys.modules or _VERIFIER_TRAINING in sys.modules:
        return
    lazy = types.ModuleType(_VERIFIER_TRAINING)

    def real() -> Any:
        del sys.modules[_VERIFIER_TRAINING]
        return importlib.import_module(_VERIFIER_TRAINING)

    def train_custom_verifier(*args: Any, **kwargs: Any) -> Any:
        return real().train_custom_verifier(*args, **kwargs)

    lazy.train_custom_verifier = train_custom_verifier  # type: ignore[attr-defined]

    def attribute(name: str) -> Any:
        if name.startswith("__"):  # the import system probing (__path__, ...): not a use
            raise AttributeError(name)
        return getattr(real(), name)

    lazy.__getattr__ = attribute  # type: ignore[method-assign]
    sys.modules[_VERIFIER_TRAINING] = lazy


class _LeanOrt:
    """onnxruntime as openwakeword sees it while loading: CPU only, no memory arena, one
    thread that does not spin. Its feature extractor runs a 10 s batch once at start; with the
    arena that batch's ~120 MB stays resident for good. Its models are tiny: with a thread
    per core, onnxruntime's workers spin-wait after every 80 ms chunk, which cost more idle
    CPU than the models themselves."""

    def __init__(self, ort: Any) -> None:
        self._ort = ort

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ort, name)

    def InferenceSession(self, path: str, sess_options: Any = None, **kwargs: Any) -> Any:
        options = sess_options or self._ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        try:  # openwakeword reuses one options object: setting it twice prints a warning
            options.get_session_config_entry("session.intra_op.allow_spinning")
        except Exception:  # onnxruntime's "does not have configuration" error
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        kwargs["providers"] = ["CPUExecutionProvider"]
        return self._ort.InferenceSession(path, sess_options=options, **kwargs)


def load_wake_model(paths: list[Path]) -> Any:
    """openWakeWord's streaming model for exactly these files, kept lean (`_LeanOrt`).

    Raises:
        UserError: naming the file that is not a valid openWakeWord ONNX model.
    """
    _defer_verifier_training_import()
    import onnxruntime
    from openwakeword import model as oww_model
    from openwakeword import utils as oww_utils

    try:
        oww_model.ort = oww_utils.ort = _LeanOrt(onnxruntime)
        oww_model.AudioFeatures = lean_features_class()
        model = oww_model.Model(wakeword_model_paths=[str(p) for p in paths])
    except Exception as err:  # onnxruntime raises its own exception types
        bad = _first_unloadable(paths)
        raise UserError(
            f"wake model {bad} cannot be loaded ({type(err).__name__}); it is not a valid "
            "openWakeWord ONNX model: restore or retrain it"
        ) from err
    finally:
        oww_model.ort = oww_utils.ort = onnxruntime
        oww_model.AudioFeatures = oww_utils.AudioFeatures
        release_freed_memory()
    # openwakeword 0.4.0 silently swallows unknown kwargs and then loads every stock
    # model: make sure we got exactly what was asked.
    wanted = [p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.name for p in paths]
    if sorted(model.models) != sorted(wanted):
        raise UserError(f"openwakeword loaded {sorted(model.models)} instead of {wanted}")
    return model


def _first_unloadable(paths: list[Path]) -> Path:
    import onnxruntime as ort

    for path in paths:
        try:
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception:  # any failure marks this file as the culprit
            return path
    return paths[0]
