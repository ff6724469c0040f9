"""Short cues made in code (no sound files to ship): "listening", "ok", "sorry"."""

from __future__ import annotations

import numpy as np

#: (frequency Hz, seconds) notes per cue: rising = listening, one ping = ok, falling = sorry.
_NOTES: dict[str, list[tuple[float, float]]] = {
    "listening": [(660.0, 0.07), (990.0, 0.09)],
    "ok": [(880.0, 0.09)],
    "sorry": [(494.0, 0.12), (370.0, 0.16)],
}
EARCON_NAMES = tuple(_NOTES)
_LEVEL = 0.3
_FADE_SECONDS = 0.01


def make_earcon(name: str, rate: int) -> np.ndarray:
    """The cue as float32 mono samples in [-1, 1] at `rate`.

    Raises:
        KeyError: an unknown cue name.
    """
    parts = []
    for freq, seconds in _NOTES[name]:
        t = np.arange(int(seconds * rate)) / rate
        tone = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
        fade = min(int(_FADE_SECONDS * rate), len(t) // 2)
        env = np.ones_like(t)
        env[:fade] = np.linspace(0.0, 1.0, fade)
        env[-fade:] = np.linspace(1.0, 0.0, fade)  # no clicks at note edges
        parts.append(tone * env)
    return (np.concatenate(parts) * _LEVEL / 1.25).astype(np.float32)
