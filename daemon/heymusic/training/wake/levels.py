"""Where a clip's voice is and how loud it is: the training audio is levelled and cut by
its speech, not by the silence around it."""

from __future__ import annotations

import numpy as np


def active_span(audio: np.ndarray, rel: float = 0.03) -> tuple[int, int]:
    """(start, end) samples of the part louder than `rel` of the loudest 10 ms frame."""
    frame = 160
    n = len(audio) // frame
    if n == 0:
        return 0, len(audio)
    x = audio[: n * frame].astype(np.float32)
    rms = np.sqrt(np.mean(x.reshape(n, frame) ** 2, axis=1))
    active = np.nonzero(rms > rel * rms.max())[0]
    if not active.size:
        return 0, 0
    return int(active[0]) * frame, (int(active[-1]) + 1) * frame


def trim(audio: np.ndarray) -> np.ndarray:
    """Cut leading/trailing silence so phrase start/end times are exact."""
    start, end = active_span(audio)
    return audio[start:end]


def rms(x: np.ndarray) -> float:
    active = trim(x)
    return float(np.sqrt(np.mean(active**2))) if active.size else 0.0


def at_dbfs(clip: np.ndarray, dbfs: float) -> np.ndarray:
    """`clip` scaled so that its voice (the part `trim` keeps) is `dbfs` RMS."""
    return clip * (10 ** (dbfs / 20) / (rms(clip) + 1e-9))
