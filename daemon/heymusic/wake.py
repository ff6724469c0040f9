"""Wake word: openWakeWord streaming scores, a threshold and a refractory period.

Model-agnostic: it loads whatever ONNX files `[wake] models` names (a bare name is
looked up in the shipped models dir, then in openwakeword's own resources), and
reports which one fired. Later stages check each candidate before it becomes a Wake:
an embedding verifier (heymusic.wake_verify) and Whisper hearing the phrase
(heymusic.wake_asr).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import logging
import math
import sys
import types
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake, WakeCandidate
from heymusic.intents import wake_phrases_from_models
from heymusic.wake_asr import AsrCheck
from heymusic.wake_enroll import load_personal
from heymusic.wake_features import MEL_CHUNKS, VoiceGate, lean_features_class
from heymusic.wake_verify import CHUNK, CHUNK_S, EMB_OFFSET, SAMPLE_RATE, load_verifier

_LOGGER = logging.getLogger(__name__)

GROUP_CHUNKS = 4
"""Chunks scored back to back per call while no burst waits for Whisper. Scored one per
80 ms, each chunk finds the feature models' weights gone from the CPU caches: 4 at a time
took 4.6-4.9 % of one core paced while someone talks, against 5.8-6.0 % one at a time
(bench/wake.py). Only when every model's wake waits `AsrCheck.after_seconds` for Whisper
anyway: a fire scored up to 240 ms late is then checked, and reported, on the same chunk
as one scored at once."""


def openwakeword_resources() -> Path:
    """The wheel's bundled models (feature extractors and stock wake words)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or spec.origin is None:
        raise UserError("openwakeword is not installed; run `make run` or pip install heymusic")
    return Path(spec.origin).parent / "resources" / "models"


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


def release_freed_memory() -> None:
    """Hand heap freed after a big one-off allocation back to the OS (glibc keeps it)."""
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name) if libc_name else None
    if libc is not None and hasattr(libc, "malloc_trim"):  # glibc only
        libc.malloc_trim(0)


def _load_model(paths: list[Path]) -> Any:
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


class WakeDetector:
    """Feed 80 ms int16 chunks; returns a Wake when a model's score crosses the threshold
    and the later stages agree, a WakeCandidate when one of them does not.

    Stages: the openWakeWord model (every chunk, except that while webrtcvad hears no voice
    chunks are stored, not scored: heymusic.wake_features), on each frame over the threshold
    the embedding verifier and, once someone enrolled, the personal verifier (which may vouch
    for a frame the embedding verifier doubts), then Whisper (`AsrCheck`, once per burst,
    `AFTER_S` later, when a Whisper model is given). After a fire it stays quiet for
    `refractory_seconds` so one utterance wakes once; a Whisper rejection also starts that
    period (one check per burst, not one per frame). While every model waits for Whisper,
    chunks are scored `group_chunks` at a time (GROUP_CHUNKS), with the same scores and
    the Wake on the same chunk.
    """

    def __init__(self, settings: Settings, whisper: Any = None) -> None:
        """`whisper`: the loaded faster-whisper model for the last stage (None = skip it)."""
        cfg = settings.wake
        if not cfg.models:
            raise UserError("[wake] models is empty; name at least one wake model")
        self._paths = [resolve_wake_model(settings, name) for name in cfg.models]
        self._model = _load_model(self._paths)
        self.model_names: list[str] = list(self._model.models)
        self.phrases = wake_phrases_from_models(self.model_names)
        """What each model listens for, as a transcript starts ("hey_jarvis_v0.1" -> "hey jarvis")."""
        self._threshold = cfg.threshold
        self._refractory_s = cfg.refractory_seconds
        self._last_fire_s = float("-inf")
        self._verifier = load_verifier(settings) if cfg.verifier else None
        self._personal = load_personal(settings, self.model_names)
        self._personal_threshold = cfg.personal_threshold
        self._personal_override = cfg.personal_override
        self._asr_checks = (
            {
                name: AsrCheck(whisper, phrase)
                for name, phrase in zip(self.model_names, self.phrases, strict=True)
            }
            if cfg.asr_check and whisper is not None
            else {}
        )
        self._asr_threshold = cfg.asr_check_threshold
        keep_s = max((c.window_seconds for c in self._asr_checks.values()), default=0.0)
        self._recent: deque[np.ndarray] = deque(maxlen=math.ceil(keep_s / CHUNK_S - 1e-9) + 1)
        """Audio for Whisper's check, one chunk more than its window: the check is settled
        on the first chunk ending `after_seconds` or more after the fire, and that chunk's
        overhang is cut off. The verifier reads openWakeWord's own embeddings."""
        self._verifier_threshold = cfg.verifier_threshold
        self._verifier_threshold_playing = cfg.verifier_threshold_playing
        self.music_playing = False
        """Set by the daemon while its player plays: the verifier's bar is then
        `verifier_threshold_playing` (music masks the phrase)."""
        features = self._model.preprocessor
        features.read_frames = max(
            [*self._model.model_inputs.values(), *(p.frames for p in self._personal.values())]
            + ([self._verifier.frames] if self._verifier is not None else [])
        )
        # a wake score reads the last 16 embeddings (stock and ours), 26 chunks of audio; the
        # verifiers read further back, but only on chunks the wake model fired on
        hold = max(self._model.model_inputs.values()) + MEL_CHUNKS
        self._gate = VoiceGate(hold) if cfg.skip_silence else None
        self._rejected = False
        self._samples = 0
        """Samples heard: openWakeWord's buffer starts out as embeddings of digital silence."""
        self._heard_s = 0.0
        """Where the last chunk scored ends, in seconds of input."""
        self._pending: tuple[float, float, str, float, float | None] | None = None
        """A burst waiting for Whisper: (fire time, score, model, verifier, personal score)."""
        # a fire scored k chunks late is still checked on time while k <= wait / 80 ms
        waits = [check.after_seconds for check in self._asr_checks.values()]
        self.group_chunks = (
            max(1, min(GROUP_CHUNKS, int(min(waits) / CHUNK_S + 1e-6)))
            if len(waits) == len(self.model_names)
            else 1
        )
        """Chunks taken per scoring (GROUP_CHUNKS); 1 when a model wakes without Whisper."""
        self._held: list[tuple[np.ndarray, float]] = []
        self._events: deque[Wake | WakeCandidate] = deque()
        """Events of chunks scored together, handed out one per call."""
        _LOGGER.info("wake models: %s (threshold %.2f)", ", ".join(self.model_names), cfg.threshold)

    @property
    def enrolled(self) -> list[str]:
        """Models with a personal verifier from `heymusic enroll`."""
        return sorted(self._personal)

    def process(self, chunk: np.ndarray, audio_s: float) -> Wake | WakeCandidate | None:
        """Take one chunk ending at `audio_s` seconds into the input; every `group_chunks`
        calls (every call while a burst waits for Whisper) score the chunks taken, in order.
        A Wake comes on the call it would one chunk at a time; a WakeCandidate (a log line)
        up to `group_chunks` - 1 calls later."""
        self._held.append((chunk, audio_s))
        if self._pending is not None or len(self._held) >= self.group_chunks:
            self._score_held()
        return self._events.popleft() if self._events else None

    def finish(self) -> list[Wake | WakeCandidate]:
        """End of input: score the chunks still held, and give a burst still waiting for
        Whisper its verdict on the audio there is (a recording that ends right after the
        phrase; wake-eval scores it so); the events not handed out yet."""
        self._score_held()
        if self._pending is not None:
            self._events.append(self._verdict(self._heard_s))
        events = list(self._events)
        self._events.clear()
        return events

    def events(self, audio: np.ndarray) -> list[Wake | WakeCandidate]:
        """A whole recording (int16 16 kHz, timed from its start), 80 ms at a time as a
        microphone feeds it, then `finish`: every event (evals, benches, tests)."""
        out = []
        for k in range(len(audio) // CHUNK):
            event = self.process(audio[k * CHUNK : (k + 1) * CHUNK], (k + 1) * CHUNK_S)
            if event is not None:
                out.append(event)
        return out + self.finish()

    def _score_held(self) -> None:
        for chunk, audio_s in self._held:
            event = self._step(chunk, audio_s)
            if event is not None:
                self._events.append(event)
        self._held.clear()

    def _step(self, chunk: np.ndarray, audio_s: float) -> Wake | WakeCandidate | None:
        """Score one chunk; its event, if any."""
        self._recent.append(chunk)
        self._samples += len(chunk)
        self._heard_s = audio_s
        scores: dict[str, float] = {}
        if self._gate is None or self._gate.open(chunk) or not self._skip(chunk):
            scores = self._model.predict(chunk)
        if self._pending is not None:
            return self._settle(audio_s)
        if not scores:
            return None
        model, score = max(scores.items(), key=lambda item: item[1])
        if score < self._threshold or audio_s - self._last_fire_s < self._refractory_s:
            self._rejected = False
            return None
        personal = None
        if model in self._personal:
            check = self._personal[model]
            personal = check.score(self._heard_embeddings(check.frames))
        verified = 1.0
        if self._verifier is not None and self._verifier.covers(model):
            verified = self._verifier.score(self._heard_embeddings(self._verifier.frames), model)
        vouched = personal is not None and personal >= self._personal_override
        bar = self._verifier_threshold_playing if self.music_playing else self._verifier_threshold
        doubted = verified < bar and not vouched
        if doubted or (personal is not None and personal < self._personal_threshold):
            # A rejected frame starts no refractory period: the next frames of the same
            # burst (the phrase completing) are checked again; one event per burst.
            return self._reject(
                WakeCandidate(audio_s, float(score), model, verified, None, personal)
            )
        self._rejected = False
        if model in self._asr_checks:
            self._pending = (audio_s, float(score), model, verified, personal)
            return None
        self._last_fire_s = audio_s
        return Wake(audio_s, float(score), model)

    def _skip(self, chunk: np.ndarray) -> bool:
        """Store a chunk no score can need yet (heymusic.wake_features); False = not stored."""
        if not self._model.preprocessor.defer(chunk):
            return False
        for name in self.model_names:  # openwakeword zeroes its first 5 scores: count this one
            self._model.prediction_buffer[name].append(0.0)
        return True

    def _reject(self, candidate: WakeCandidate) -> WakeCandidate | None:
        """The first rejected frame of a burst is reported, the rest are not."""
        first, self._rejected = not self._rejected, True
        return candidate if first else None

    def _heard_embeddings(self, frames: int) -> np.ndarray:
        """The last `frames` embeddings of openWakeWord's buffer, without the silence it starts
        with (the verifier never saw that in training and passed it: a check at start-up)."""
        heard = self._samples // CHUNK - EMB_OFFSET  # one embedding per 80 ms once warmed up
        n = min(frames, heard)
        if n <= 0:
            return np.zeros((0, 96), np.float32)
        return np.asarray(self._model.preprocessor.get_features(n))

    def _settle(self, audio_s: float) -> Wake | WakeCandidate | None:
        """Once `AFTER_S` of audio followed the fire: Whisper's verdict on the burst."""
        assert self._pending is not None
        fire_s, _, model, _, _ = self._pending
        if audio_s - fire_s < self._asr_checks[model].after_seconds - 1e-6:
            return None
        return self._verdict(audio_s)

    def _verdict(self, audio_s: float) -> Wake | WakeCandidate:
        """Whisper's verdict on the burst waiting for it, from the audio up to `audio_s`."""
        assert self._pending is not None
        fire_s, score, model, verified, personal = self._pending
        check = self._asr_checks[model]
        self._pending = None
        self._last_fire_s = fire_s
        heard = check.score(
            _cut(np.concatenate(self._recent), audio_s - fire_s - check.after_seconds)
        )
        if heard < self._asr_threshold:
            return WakeCandidate(fire_s, score, model, verified, heard, personal)
        return Wake(fire_s, score, model)

    def reset(self) -> None:
        """Forget recent scores (after a command), so stale frames cannot fire again."""
        self._score_held()  # their features are the next chunks' context; events are stale
        self._events.clear()
        self._model.reset()
        self._recent.clear()
        self._rejected = False
        self._pending = None


def _cut(audio: np.ndarray, overhang_s: float) -> np.ndarray:
    """`audio` without its last `overhang_s` seconds: Whisper hears exactly `after_seconds`
    after the fire, as wake-eval measured it (AFTER_S = 0.5 s is 6.25 chunks, so the
    chunk that settles a check ends 60 ms later; that 60 ms had made the daemon's windows
    differ from the eval's)."""
    overhang = round(overhang_s * SAMPLE_RATE)
    return audio[: len(audio) - overhang] if overhang > 0 else audio
