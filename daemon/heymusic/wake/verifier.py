"""Second wake stage: a calibrated score on each first-stage candidate.

The verifier for a wake model `NAME.onnx` is `NAME_verifier.onnx` beside it (made
by `heymusic train-wake`). It sees 32 speech embeddings (~3.4 s of audio ending at
the candidate) instead of 16, and was trained only on what the first stage lets
through, so it rejects most near-misses of ordinary speech. Wake models without
such a file (e.g. openWakeWord's stock ones) are not second-guessed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.wake.features import cpu_session
from heymusic.wake.models import resolve_wake_model

_LOGGER = logging.getLogger(__name__)

VERIFIER_SUFFIX = "_verifier.onnx"


class Verifier:
    """Scores the speech embeddings ending at a candidate: ~1 = the wake phrase, ~0 = not.

    The embeddings are the ones openWakeWord's streaming buffer already holds (the same
    values `Features.embed` gives offline), so a check costs one tiny model call instead of
    recomputing 3.4 s of features (~50 ms) on every frame over the threshold.
    """

    def __init__(self, paths: dict[str, Path]) -> None:
        """`paths` maps wake model names to their verifier ONNX files."""
        self._sessions = {}
        for model, path in paths.items():
            try:
                self._sessions[model] = cpu_session(path)
            except Exception as err:  # onnxruntime raises its own exception types
                raise UserError(
                    f"wake verifier {path} cannot be loaded ({type(err).__name__}); restore it, "
                    "retrain with `heymusic train-wake`, or set [wake] verifier = false"
                ) from err
        first = next(iter(self._sessions.values()))
        self.frames: int = int(first.get_inputs()[0].shape[1])
        """Embeddings (80 ms each) a verifier reads, ending at the candidate."""

    def covers(self, model: str) -> bool:
        """Whether `model` has a verifier (others pass unverified)."""
        return model in self._sessions

    def score(self, embeddings: np.ndarray, model: str | None = None) -> float:
        """Score of the last `frames` of (n, 96) speech embeddings (padded at a stream start)."""
        session = self._sessions[model] if model else next(iter(self._sessions.values()))
        emb = np.asarray(embeddings, np.float32).reshape(-1, 96)
        if len(emb) == 0:
            return 0.0
        if len(emb) < self.frames:  # start of the stream: repeat the oldest frame
            emb = np.concatenate([np.repeat(emb[:1], self.frames - len(emb), axis=0), emb])
        window = np.ascontiguousarray(emb[-self.frames :][None])
        name = session.get_inputs()[0].name
        return float(session.run(None, {name: window})[0].reshape(-1)[0])


def verifier_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".onnx") + VERIFIER_SUFFIX)


def load_verifier(settings: Settings) -> Verifier | None:
    """The verifier for each configured wake model that has one; None if none has."""
    paths = {}
    for name in settings.wake.models:
        path = verifier_path(resolve_wake_model(settings, name))
        if path.exists():
            paths[path.name.removesuffix(VERIFIER_SUFFIX)] = path
    if not paths:
        _LOGGER.info("no wake verifier beside %s: first stage only", settings.wake.models)
        return None
    return Verifier(paths)
