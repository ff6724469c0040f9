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

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHUNK = 1280
"""openWakeWord's frame: 80 ms; one speech embedding per chunk."""
CHUNK_S = CHUNK / SAMPLE_RATE
MEL_CONTEXT = 480
"""Samples of left context openWakeWord's streaming melspectrogram uses per chunk."""
EMB_OFFSET = 9
"""Chunk index of the first embedding: 76 mel frames need 9.5 chunks."""
VERIFIER_SUFFIX = "_verifier.onnx"


def _session(path: Path, threads: int = 1) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Features:
    """openWakeWord's frozen melspectrogram + embedding models over a whole buffer.

    Computes exactly what the streaming `AudioFeatures` computes per 80 ms chunk
    (each chunk's melspectrogram with 480 samples of left context); embeddings batched.
    Embedding e ends at chunk e + EMB_OFFSET.
    """

    def __init__(self, threads: int = 1) -> None:
        from heymusic.wake import openwakeword_resources

        res = openwakeword_resources()
        self.mel = _session(res / "melspectrogram.onnx", threads)
        self.emb = _session(res / "embedding_model.onnx", threads)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n_chunks - EMB_OFFSET, 96) float32 embeddings of int16 audio (whole chunks)."""
        n = len(audio) // CHUNK
        if n <= EMB_OFFSET:
            return np.zeros((0, 96), np.float32)
        samples = audio[: n * CHUNK].astype(np.float32)
        x = np.concatenate([np.zeros(MEL_CONTEXT, np.float32), samples])
        rows = np.lib.stride_tricks.sliding_window_view(x, CHUNK + MEL_CONTEXT)[::CHUNK][:n]
        # One chunk per call, never batched: the melspectrogram model floors its output at
        # 80 dB below the loudest value of the whole input, so a batch would change the
        # features of quiet chunks (digital silence most of all) against the daemon's.
        mels = [
            self.mel.run(None, {"input": np.ascontiguousarray(row[None])})[0].reshape(-1, 32)  # type: ignore[attr-defined]
            for row in rows
        ]
        mel = np.concatenate(mels) / 10 + 2
        wins = np.lib.stride_tricks.sliding_window_view(mel, 76, axis=0)[4::8]  # (m, 32, 76)
        embs = []
        for i in range(0, len(wins), 512):
            batch = np.ascontiguousarray(wins[i : i + 512].transpose(0, 2, 1)[..., None])
            out = self.emb.run(None, {"input_1": batch.astype(np.float32)})[0]  # type: ignore[attr-defined]
            embs.append(out.reshape(-1, 96))
        return np.concatenate(embs)[: n - EMB_OFFSET]


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
                self._sessions[model] = _session(path)
            except Exception as err:  # onnxruntime raises its own exception types
                raise UserError(
                    f"wake verifier {path} cannot be loaded ({type(err).__name__}); restore it, "
                    "retrain with `heymusic train-wake`, or set [wake] verifier = false"
                ) from err
        first = next(iter(self._sessions.values()))
        self.frames: int = int(first.get_inputs()[0].shape[1])  # type: ignore[attr-defined]
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
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        return float(session.run(None, {name: window})[0].reshape(-1)[0])  # type: ignore[attr-defined]


def verifier_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".onnx") + VERIFIER_SUFFIX)


def load_verifier(settings: Settings) -> Verifier | None:
    """The verifier for each configured wake model that has one; None if none has."""
    from heymusic.wake import resolve_wake_model

    paths = {}
    for name in settings.wake.models:
        path = verifier_path(resolve_wake_model(settings, name))
        if path.exists():
            paths[path.name.removesuffix(VERIFIER_SUFFIX)] = path
    if not paths:
        _LOGGER.info("no wake verifier beside %s: first stage only", settings.wake.models)
        return None
    return Verifier(paths)
