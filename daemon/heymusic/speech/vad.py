"""Cutting the command after a wake: webrtcvad per 20 ms frame and a pure endpointer.

The recorder keeps a pre-roll while idle so the recognizer hears the whole
utterance from just before the wake word ("hey music play some jazz" in one
breath loses nothing; Whisper does better with the wake phrase in, see FINDINGS).
"""

from __future__ import annotations

import enum
from collections import deque

import numpy as np

from heymusic.audio.format import CHUNK_SAMPLES, SAMPLE_RATE
from heymusic.config import VadSettings
from heymusic.events import SpeechEnd, Timeout

FRAME_SAMPLES = 320
"""20 ms at 16 kHz: webrtcvad takes 10/20/30 ms frames; four fit an 80 ms chunk."""
MIN_SPEECH_SECONDS = 0.3
"""Speech needed after the wake before silence can end the command, so the tail of the
wake phrase followed by a pause does not end it with nothing said."""


class Endpoint(enum.Enum):
    END = "end"
    TIMEOUT = "timeout"


class Endpointer:
    """Decides when a command is over from `is_speech` flags and durations; no audio, no I/O."""

    def __init__(
        self, silence_seconds: float, max_seconds: float, no_speech_timeout_seconds: float
    ) -> None:
        self._silence_s = silence_seconds
        self._max_s = max_seconds
        self._timeout_s = no_speech_timeout_seconds
        self.reset()

    def reset(self) -> None:
        self.elapsed_s = 0.0
        self.speech_s = 0.0
        self.silence_run_s = 0.0
        self.last_speech_end_s = 0.0
        """Seconds since start at which the last voiced piece ended."""

    @property
    def started(self) -> bool:
        return self.speech_s >= MIN_SPEECH_SECONDS

    def process(self, is_speech: bool, seconds: float) -> Endpoint | None:
        self.elapsed_s += seconds
        if is_speech:
            self.speech_s += seconds
            self.silence_run_s = 0.0
            self.last_speech_end_s = self.elapsed_s
        else:
            self.silence_run_s += seconds
        if self.elapsed_s >= self._max_s:
            return Endpoint.END if self.started else Endpoint.TIMEOUT
        if self.started and self.silence_run_s >= self._silence_s:
            return Endpoint.END
        if not self.started and self.elapsed_s >= self._timeout_s:
            return Endpoint.TIMEOUT
        return None


MIN_SPEECH_RMS = 100.0
"""About -50 dBFS: quieter chunks are silence whatever webrtcvad says. After a loud voice it
adapts and calls a quiet room's hiss (-60 dBFS) speech for seconds, which kept commands open
until the 10 s cap (bench/soak.py: 39 of 39 answered 3-9 s late)."""


ECHO_TAIL_DB = 20.0
"""A voiced chunk this far under the command's loudest is a room's echo, not speech: across a
room webrtcvad hears a reverberant tail as voice for a good part of its RT60 (60 dB of decay),
which held the end of a command back (docs/far-field.md)."""


def chunk_rms(chunk: np.ndarray) -> float:
    return float(np.sqrt(np.mean(chunk.astype(np.float32) ** 2)))


class SpeechDetector:
    """webrtcvad over an 80 ms chunk: speech when at least half of its 20 ms frames are voiced."""

    def __init__(self, aggressiveness: int) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, chunk: np.ndarray) -> bool:
        if chunk_rms(chunk) < MIN_SPEECH_RMS:
            return False
        voiced, frames = self.voiced_frames(chunk)
        return voiced * 2 >= frames > 0

    def voiced_frames(self, chunk: np.ndarray) -> tuple[int, int]:
        """(voiced, all) 20 ms frames of the chunk; webrtcvad is asked about every one, as it
        adapts to each frame it sees."""
        data = chunk.astype("<i2").tobytes()
        step = FRAME_SAMPLES * 2
        frames = [data[i : i + step] for i in range(0, len(data) - step + 1, step)]
        return sum(self._vad.is_speech(f, SAMPLE_RATE) for f in frames), len(frames)


class CommandRecorder:
    """Pre-roll while idle; after a wake, records until the endpointer ends the command."""

    def __init__(self, settings: VadSettings) -> None:
        self._speech = SpeechDetector(settings.aggressiveness)
        self._endpointer = Endpointer(
            settings.silence_seconds, settings.max_seconds, settings.no_speech_timeout_seconds
        )
        self._preroll: deque[tuple[np.ndarray, np.ndarray]] = deque(
            maxlen=max(1, round(settings.preroll_seconds * SAMPLE_RATE / CHUNK_SAMPLES))
        )
        self._recording: list[np.ndarray] = []
        """What Whisper will hear; the VAD's own version of the audio is not kept."""
        self._start_s = 0.0
        self._loudest = 0.0
        """RMS of the command's loudest voiced chunk so far (the wake phrase's, to begin with)."""

    def idle(self, chunk: np.ndarray, vad_chunk: np.ndarray | None = None) -> None:
        """Remember recent audio: the wake phrase will be in it when the wake fires.

        `vad_chunk`: the same audio as the VAD hears it, when its front end differs."""
        self._preroll.append((chunk, chunk if vad_chunk is None else vad_chunk))

    def forget(self) -> None:
        """Drop the pre-roll: a command whose wake was heard elsewhere starts clean."""
        self._preroll.clear()

    def start(self, audio_s: float, replay_s: float = 0.0) -> None:
        """Begin a command at `audio_s` (the wake); the pre-roll becomes its start.

        `replay_s`: audio already heard since the wake (while Whisper confirmed it) goes
        through the endpointer now, so a short command said in that time still counts.
        """
        heard = list(self._preroll)
        self._recording = [chunk for chunk, _ in heard]
        self._preroll.clear()
        self._endpointer.reset()
        self._start_s = audio_s
        self._loudest = 0.0
        replay = round(replay_s * SAMPLE_RATE / CHUNK_SAMPLES)
        for _, vad_chunk in heard[len(heard) - replay :] if replay > 0 else []:
            self._endpointer.process(self._is_speech(vad_chunk), len(vad_chunk) / SAMPLE_RATE)

    def resume(self, audio_s: float) -> None:
        """Go on recording the same command from `audio_s` as if the wake had just fired:
        what ended was only the wake phrase (heymusic.service.pipeline)."""
        self._endpointer.reset()
        self._start_s = audio_s

    def process(
        self,
        chunk: np.ndarray,
        audio_s: float,
        muted: bool = False,
        vad_chunk: np.ndarray | None = None,
    ) -> SpeechEnd | Timeout | None:
        """Add one chunk ending at `audio_s`. `muted` (earcon playing) records silence instead;
        `vad_chunk`: the same audio as the VAD hears it, when its front end differs."""
        if muted:
            chunk = np.zeros_like(chunk)
        self._recording.append(chunk)
        seconds = len(chunk) / SAMPLE_RATE
        speech = not muted and self._is_speech(chunk if vad_chunk is None else vad_chunk)
        result = self._endpointer.process(speech, seconds)
        if result is Endpoint.END:
            return SpeechEnd(self._start_s + self._endpointer.last_speech_end_s)
        if result is Endpoint.TIMEOUT:
            return Timeout(audio_s)
        return None

    def _is_speech(self, chunk: np.ndarray) -> bool:
        """Voiced, and once the command has begun, not the echo of louder speech
        (ECHO_TAIL_DB): a short command's quieter syllables still count towards its start."""
        if not self._speech.is_speech(chunk):
            return False
        level = chunk_rms(chunk)
        echo = level < self._loudest * 10 ** (-ECHO_TAIL_DB / 20)
        if echo and self._endpointer.started:
            return False
        self._loudest = max(self._loudest, level)
        return True

    @property
    def quiet_s(self) -> float:
        """Silence since the command's last voiced chunk (since its start, when none was)."""
        return self._endpointer.silence_run_s

    @property
    def voiced_s(self) -> float:
        """Voice heard since the command's start (the replayed audio included)."""
        return self._endpointer.speech_s

    def utterance(self) -> np.ndarray:
        """The whole command, from the pre-roll to now."""
        return np.concatenate(self._recording) if self._recording else np.zeros(0, np.int16)
