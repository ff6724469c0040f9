"""openWakeWord's streaming features, kept lean, and skipped while nobody speaks.

The wake models cost ~5 ms of CPU per 80 ms chunk paced in real time, most of it
openWakeWord's embedding model, and they run all day while the room is quiet. Two savings
that leave every score the wake models do compute unchanged (tests compare them bit for bit):

- `lean_features_class`: the same feature extractor without openwakeword 0.4.0's per-chunk
  copies of 10 s of audio and mel frames.
- `VoiceGate` + `defer`: while webrtcvad has heard no voice for as long as a score looks
  back, the chunk is only stored. When a voice starts, the features of the stored chunks a
  score can read are computed first, in order, from the same audio, so the next score is
  the one the detector would have given anyway. Scores are not computed for the quiet
  chunks themselves: their whole window is audio webrtcvad calls non-speech.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.audio.format import CHUNK_SAMPLES
from heymusic.errors import UserError
from heymusic.speech.vad import SpeechDetector

CONTEXT = 480
"""Samples before a chunk its melspectrogram also reads (openwakeword's 160 * 3)."""
EMB_OFFSET = 9
"""Chunk index of the first embedding: 76 mel frames need 9.5 chunks."""
MEL_WINDOW = 76
"""Mel frames per embedding."""
MEL_CHUNKS = EMB_OFFSET + 1
"""Chunks of audio behind one embedding's 76 mel frames (8 frames a chunk: 9.5, rounded up)."""
MEL_FRAMES_KEPT = 2 * 97
"""Mel frames kept (2 s): an 80 ms chunk's embedding reads the newest 76, a chunk of up to
1.5 s the newest 76 + 8 per extra 80 ms. openWakeWord keeps 10 s and copies them all on
every chunk."""


def openwakeword_resources() -> Path:
    """The wheel's bundled models (feature extractors and stock wake words)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or spec.origin is None:
        raise UserError("openwakeword is not installed; run `make run` or pip install heymusic")
    return Path(spec.origin).parent / "resources" / "models"


def cpu_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU with `threads` threads for one operator."""
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
        res = openwakeword_resources()
        self.mel = cpu_session(res / "melspectrogram.onnx", threads)
        self.emb = cpu_session(res / "embedding_model.onnx", threads)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n_chunks - EMB_OFFSET, 96) float32 embeddings of int16 audio (whole chunks)."""
        n = len(audio) // CHUNK_SAMPLES
        if n <= EMB_OFFSET:
            return np.zeros((0, 96), np.float32)
        samples = audio[: n * CHUNK_SAMPLES].astype(np.float32)
        x = np.concatenate([np.zeros(CONTEXT, np.float32), samples])
        rows = np.lib.stride_tricks.sliding_window_view(x, CHUNK_SAMPLES + CONTEXT)[
            ::CHUNK_SAMPLES
        ][:n]
        # One chunk per call, never batched: the melspectrogram model floors its output at
        # 80 dB below the loudest value of the whole input, so a batch would change the
        # features of quiet chunks (digital silence most of all) against the daemon's.
        mels = [
            self.mel.run(None, {"input": np.ascontiguousarray(row[None])})[0].reshape(-1, 32)
            for row in rows
        ]
        mel = np.concatenate(mels) / 10 + 2
        wins = np.lib.stride_tricks.sliding_window_view(mel, 76, axis=0)[4::8]  # (m, 32, 76)
        embs = []
        for i in range(0, len(wins), 512):
            batch = np.ascontiguousarray(wins[i : i + 512].transpose(0, 2, 1)[..., None])
            out = self.emb.run(None, {"input_1": batch.astype(np.float32)})[0]
            embs.append(out.reshape(-1, 96))
        return np.concatenate(embs)[: n - EMB_OFFSET]


def lean_features_class() -> type:
    """openWakeWord's `AudioFeatures` with the same numbers, fewer copies, and `defer`.

    Per 80 ms chunk, openwakeword 0.4.0 turns the chunk into Python ints, copies its whole
    raw-audio deque (10 s) into a list to read the newest 1760 samples back into an array,
    and stacks the newest mel frames under 10 s of old ones: ~0.6 ms of bookkeeping a chunk
    paced in real time here. The raw audio stays int16 here, and only what is read is kept.
    """
    from openwakeword.utils import AudioFeatures

    class LeanFeatures(AudioFeatures):
        melspectrogram_buffer: np.ndarray
        feature_buffer: np.ndarray

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.raw_tail = np.zeros(0, np.int16)
            self.melspectrogram_max_len = MEL_FRAMES_KEPT
            self.read_frames = 16
            """The most embeddings any reader takes from the end (set by the detector)."""
            self.deferred = 0
            """Chunks stored by `defer` whose features are not computed yet."""

        def _buffer_raw_data(self, x: Any) -> None:
            if len(x) < 400:  # openwakeword's own rule (a mel frame needs 25 ms)
                raise ValueError("The number of input frames must be at least 400 samples")
            chunk = np.asarray(x, np.int16)
            keep = self.accumulated_samples + len(chunk) + CONTEXT
            self.raw_tail = np.concatenate((self.raw_tail, chunk))[-keep:]

        def _streaming_melspectrogram(self, n_samples: int) -> None:
            self._add_mel(self.raw_tail[-n_samples - CONTEXT :])

        def _add_mel(self, audio: np.ndarray) -> None:
            buffer = np.vstack((self.melspectrogram_buffer, self._get_melspectrogram(audio)))
            self.melspectrogram_buffer = buffer[-self.melspectrogram_max_len :]

        def _streaming_features(self, x: Any) -> None:
            if self.deferred:
                self._catch_up()
            super()._streaming_features(x)

        def defer(self, chunk: np.ndarray) -> bool:
            """Store one 80 ms chunk instead of computing its features; False (nothing
            stored) when this chunk cannot be deferred and must be predicted on."""
            if len(chunk) != CHUNK_SAMPLES or self.accumulated_samples:
                return False
            replay = self.read_frames + MEL_CHUNKS
            self.deferred = min(self.deferred + 1, replay)
            audio = np.concatenate((self.raw_tail, np.asarray(chunk, np.int16)))
            self.raw_tail = audio[-(replay * CHUNK_SAMPLES + CONTEXT) :]
            return True

        def _catch_up(self) -> None:
            """The deferred chunks' mel frames, and the embeddings a reader can reach, as
            streaming them one by one would have made them."""
            count, self.deferred = self.deferred, 0
            end = len(self.raw_tail)
            for back in range(count - 1, -1, -1):  # oldest first
                stop = end - back * CHUNK_SAMPLES
                self._add_mel(self.raw_tail[max(0, stop - CHUNK_SAMPLES - CONTEXT) : stop])
                if back < self.read_frames:
                    window = self.melspectrogram_buffer[-MEL_WINDOW:]
                    x = window.astype(np.float32)[None, :, :, None]
                    emb = self.embedding_model.run(None, {"input_1": x})[0].squeeze()
                    buffer = np.vstack((self.feature_buffer, emb))
                    self.feature_buffer = buffer[-self.feature_buffer_max_len :]

    return LeanFeatures


class VoiceGate:
    """Whether a chunk's wake score can matter: webrtcvad (its most permissive mode) heard
    a voice in some 20 ms of the last `hold_chunks` chunks.

    On the evaluation's 750 held-out phrases (clean, noise, music, babble) the gate was open
    from each phrase's second chunk to 1 s after it; stationary room noise up to -40 dBFS
    keeps it shut ~80-100 % of the time (docs/wake-word.md)."""

    def __init__(self, hold_chunks: int) -> None:
        self._vad = SpeechDetector(aggressiveness=0)
        self._hold = hold_chunks
        self._quiet_chunks = 0

    def open(self, chunk: np.ndarray) -> bool:
        if len(chunk) != CHUNK_SAMPLES:
            return True
        voiced, _ = self._vad.voiced_frames(chunk)
        self._quiet_chunks = 0 if voiced else self._quiet_chunks + 1
        return self._quiet_chunks < self._hold
