"""The audio front end: WebRTC noise suppression, high-pass and gain, per listening path.

It sits between the source (after the echo canceller) and the stages. Each path (the
wake detector, the VAD, Whisper) gets its own settings because the same processing helps
one and hurts another: on other voices noise suppression in front of the wake word halved
its misses across a room, while in front of Whisper it lost named songs; on ours it made
the wake word miss more, and quiet commands never begin (docs/far-field.md).
Paths with equal settings share one processor, so the audio is processed once for them.
We use webrtc-noise-gain (WebRTC's audio processing module, as wyoming-satellite does)
rather than a filter of our own: it is stateful, adaptive and costs ~0.2 % of a core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from heymusic.audio.format import CHUNK_SAMPLES
from heymusic.config import FrontEndSettings

FRAME_SAMPLES = 160
"""WebRTC's processing takes 10 ms frames at 16 kHz; an 80 ms chunk holds eight."""
PATHS = ("wake", "vad", "asr")


@dataclass(frozen=True)
class PathSettings:
    """One path's processing; all off = the audio passes untouched."""

    noise_suppression: int = 0
    auto_gain_dbfs: int = 0
    high_pass: bool = False

    @property
    def processed(self) -> bool:
        return bool(self.noise_suppression or self.auto_gain_dbfs or self.high_pass)


def path_settings(settings: FrontEndSettings, path: str) -> PathSettings:
    """The `[front_end]` keys of one path (`wake`, `vad` or `asr`)."""
    return PathSettings(
        getattr(settings, f"{path}_noise_suppression"),
        getattr(settings, f"{path}_auto_gain_dbfs"),
        getattr(settings, f"{path}_high_pass"),
    )


class _Process(Protocol):
    def __call__(self, chunk: np.ndarray) -> np.ndarray: ...


class WebRtcProcessor:
    """One stateful WebRTC processor over a stream of int16 chunks.

    A trailing part shorter than 10 ms (only a file's last chunk has one) passes untouched."""

    def __init__(self, settings: PathSettings) -> None:
        from webrtc_noise_gain import AudioProcessor

        self._apm = AudioProcessor(settings.auto_gain_dbfs, settings.noise_suppression)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        whole = len(chunk) - len(chunk) % FRAME_SAMPLES
        data = np.ascontiguousarray(chunk[:whole], dtype="<i2").tobytes()
        step = FRAME_SAMPLES * 2
        out = b"".join(
            self._apm.Process10ms(data[i : i + step]).audio for i in range(0, len(data), step)
        )
        return np.concatenate([np.frombuffer(out, np.int16), chunk[whole:].astype(np.int16)])


def _untouched(chunk: np.ndarray) -> np.ndarray:
    return chunk


@dataclass(frozen=True)
class PathAudio:
    """One chunk as each path hears it (the same array where the settings are equal)."""

    wake: np.ndarray
    vad: np.ndarray
    asr: np.ndarray


class FrontEnd:
    """Turns each chunk from the source into what the wake detector, VAD and Whisper hear."""

    def __init__(self, settings: FrontEndSettings | None = None) -> None:
        """`settings` None: every path hears the source untouched."""
        chosen = {
            path: path_settings(settings, path) if settings else PathSettings() for path in PATHS
        }
        processors: dict[PathSettings, _Process] = {}
        for choice in chosen.values():
            if choice not in processors:
                processors[choice] = WebRtcProcessor(choice) if choice.processed else _untouched
        self._paths = {path: processors[choice] for path, choice in chosen.items()}
        self._processors = list(processors.items())

    @property
    def active(self) -> bool:
        """Whether any path processes the audio."""
        return any(choice.processed for choice, _ in self._processors)

    def process(self, chunk: np.ndarray) -> PathAudio:
        heard = {id(process): process(chunk) for _, process in self._processors}
        return PathAudio(*(heard[id(self._paths[path])] for path in PATHS))

    def process_all(self, audio: np.ndarray, path: str) -> np.ndarray:
        """A whole recording as `path` hears it, in 80 ms chunks as the daemon streams it
        (for evaluation; the processors keep their state, so use a fresh FrontEnd)."""
        process = self._paths[path]
        return np.concatenate(
            [process(audio[i : i + CHUNK_SAMPLES]) for i in range(0, len(audio), CHUNK_SAMPLES)]
        )
