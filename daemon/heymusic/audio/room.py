"""A quiet room as a microphone hears it: the background the wake stages expect before
someone speaks (a file or a pipe may start straight with speech), and the idle input of
the benches."""

from __future__ import annotations

import numpy as np

from heymusic.audio.format import SAMPLE_RATE

QUIET_ROOM_DBFS = -55.0
"""Pink noise at this RMS: a quiet room through a USB microphone."""


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise of unit RMS."""
    white = rng.standard_normal(n)
    if kind == "white":
        out = white
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1] if n > 1 else 1.0
        spec /= np.sqrt(f) if kind == "pink" else f
        out = np.fft.irfft(spec, n)
    return (out / (np.std(out) + 1e-9)).astype(np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio (full scale 1.0) as int16 samples, clipped."""
    return np.clip(audio * 32768, -32768, 32767).astype(np.int16)


def quiet_room(seconds: float, seed: int = 0) -> np.ndarray:
    """Nobody speaking, as int16: pink noise at QUIET_ROOM_DBFS."""
    hiss = colored_noise("pink", int(seconds * SAMPLE_RATE), np.random.default_rng(seed))
    return to_int16(hiss * 10 ** (QUIET_ROOM_DBFS / 20))
