"""Where the preview player's samples go: the sound card, nowhere, a WAV file, or a test recorder.

Every sink takes int16 blocks shaped (frames, channels) at its own `rate` and
paces the writer in real time, so the player thread behaves the same whether a
speaker or a file is listening. A speaker that cannot be opened or stops
taking samples is reported once; the sink keeps pacing (music silently "plays")
and tries to reopen it, so listening never stops because of the speaker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import wave
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from heymusic.audio.echo import PlaybackReference
from heymusic.errors import UserError

_LOGGER = logging.getLogger(__name__)

#: Rate and layout of the speaker and of recorded WAV files.
DEVICE_RATE = 44100
DEVICE_CHANNELS = 2
#: How far ahead of real time a writer may run (a speaker's buffer).
LEAD_SECONDS = 0.1
#: Reopening a lost speaker backs off from [audio] reconnect_seconds up to this.
MAX_RECONNECT_SECONDS = 30.0
#: A healthy device frees queue space within ~100 ms; this long without it = the speaker is gone.
STALL_SECONDS = 0.5


class AudioSink(Protocol):
    rate: int
    channels: int

    def write(self, block: np.ndarray) -> None:
        """Queue one int16 (frames, channels) block; returns about when it is due to sound."""

    def close(self) -> None: ...


class Pacer:
    """Sleeps so that writes run at most `LEAD_SECONDS` ahead of real time × `speed`."""

    def __init__(self, rate: int, speed: float = 1.0) -> None:
        self.rate, self.speed = rate, speed
        self._start = 0.0
        self._frames = 0

    def wait(self, frames: int) -> None:
        now = time.monotonic()
        due = self._start + self._frames / self.rate / self.speed
        if self._frames == 0 or now > due + LEAD_SECONDS:
            # First block, or the writer paused/fell behind: restart the clock (an underrun).
            self._start, self._frames = now, 0
        elif due - now > LEAD_SECONDS:
            time.sleep(due - now - LEAD_SECONDS)
        self._frames += frames


class NullSink:
    """Discards samples in real time (`--audio-out null`)."""

    def __init__(self, rate: int = DEVICE_RATE, channels: int = DEVICE_CHANNELS) -> None:
        self.rate, self.channels = rate, channels
        self._pacer = Pacer(rate)

    def write(self, block: np.ndarray) -> None:
        self._pacer.wait(len(block))

    def close(self) -> None:
        pass


class WavSink:
    """Records what the speaker would play into a WAV file (`--audio-out FILE.wav`)."""

    def __init__(
        self, path: Path, rate: int = DEVICE_RATE, channels: int = DEVICE_CHANNELS
    ) -> None:
        self.rate, self.channels = rate, channels
        self._pacer = Pacer(rate)
        try:
            self._file = path.open("wb")
        except OSError as err:
            raise UserError(
                f"cannot write audio to {path} ({err.strerror}); pick a writable --audio-out path"
            ) from err
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._lock = threading.Lock()

    def write(self, block: np.ndarray) -> None:
        self._pacer.wait(len(block))
        with self._lock:
            self._wav.writeframes(np.ascontiguousarray(block, dtype="<i2").tobytes())

    def close(self) -> None:
        with self._lock:
            self._wav.close()
            self._file.close()


class RecordingSink:
    """Keeps every block with the time it was written; tests and the benchmark read it."""

    def __init__(self, rate: int = 16000, channels: int = 1, speed: float = 1.0) -> None:
        self.rate, self.channels = rate, channels
        self._pacer = Pacer(rate, speed)
        self._lock = threading.Lock()
        self.blocks: list[tuple[float, np.ndarray]] = []

    def write(self, block: np.ndarray) -> None:
        self._pacer.wait(len(block))
        with self._lock:
            self.blocks.append((time.monotonic(), block.copy()))

    def samples(self) -> np.ndarray:
        """All samples written so far, (frames, channels) int16."""
        with self._lock:
            parts = [b for _, b in self.blocks]
        return np.concatenate(parts) if parts else np.zeros((0, self.channels), np.int16)

    def first_sound_time(self, after: float = 0.0, level: int = 64) -> float | None:
        """Monotonic time of the first block written after `after` with a sample above `level`."""
        with self._lock:
            blocks = list(self.blocks)
        for stamp, block in blocks:
            if stamp >= after and block.size and int(np.abs(block).max()) > level:
                return stamp
        return None

    def close(self) -> None:
        pass


def _find_device(devices: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    if wanted.isdigit() and int(wanted) < len(devices):
        return devices[int(wanted)]
    for dev in devices:
        if wanted.lower() in str(dev["name"]).lower():
            return dev
    names = ", ".join(f"{i}: {d['name']}" for i, d in enumerate(devices)) or "none"
    raise UserError(
        f"speaker '{wanted}' not found (available: {names}); "
        'set [audio] output_device to one of them or to "" for the default'
    )


class DeviceSink:
    """The sound card through miniaudio; reopens it when it vanishes.

    The device pulls from a short queue on its own thread; `write` blocks while
    the queue is full, which paces the player. When the device stops pulling
    (unplugged) or cannot be opened, `on_message` hears about it once and
    samples are paced and dropped until a reopen succeeds.
    """

    BLOCKS_QUEUED = 4

    def __init__(
        self,
        device: str = "",
        on_message: Callable[[str], None] | None = None,
        reconnect_seconds: float = 2.0,
        backends: list[Any] | None = None,
        reference: PlaybackReference | None = None,
    ) -> None:
        self.rate, self.channels = DEVICE_RATE, DEVICE_CHANNELS
        self._reference = reference
        """Told every block the device takes, for the mic's echo canceller."""
        self._wanted = device
        self._backends = backends
        """miniaudio backends to try (None = its default order); tests use its null backend."""
        self._on_message = on_message or (lambda line: None)
        self._reconnect_seconds = reconnect_seconds
        self._queue: queue.Queue[bytes] = queue.Queue(self.BLOCKS_QUEUED)
        self._device: Any = None
        self._fallback = Pacer(self.rate)
        self._next_try = 0.0
        self._retry_seconds = reconnect_seconds
        self._reported = False
        self._pulled = threading.Event()
        """Set by the device thread: the open device really takes samples."""
        self._open()

    def _open(self) -> None:
        import miniaudio  # lazy: only a real speaker needs the device backend

        self._next_try = time.monotonic() + self._retry_seconds
        self._retry_seconds = min(2 * self._retry_seconds, MAX_RECONNECT_SECONDS)
        self._pulled.clear()
        try:
            device_id = None
            if self._wanted:
                devices = miniaudio.Devices(self._backends).get_playbacks()
                device_id = _find_device(devices, self._wanted)["id"]
            dev = miniaudio.PlaybackDevice(
                output_format=miniaudio.SampleFormat.SIGNED16,
                nchannels=self.channels,
                sample_rate=self.rate,
                buffersize_msec=60,
                device_id=device_id,
                backends=self._backends,
                app_name="heymusic",
            )
            pull = self._pull()
            next(pull)  # miniaudio sends frame counts into a started generator
            dev.start(pull)
        except UserError as err:
            self._fail(f"{err}; music is silent until then")
            return
        except miniaudio.MiniaudioError as err:
            why = err.args[0] if err.args else type(err).__name__
            self._fail(
                f"cannot open the speaker ({why}): check that a sound card is connected "
                "and [audio] output_device; music is silent until it works"
            )
            return
        self._device = dev

    def _fail(self, line: str) -> None:
        _LOGGER.warning("%s", line)
        if not self._reported:
            self._on_message(line)
            self._reported = True

    def _pull(self) -> Generator[bytes, int, None]:
        bytes_per_frame = 2 * self.channels
        pending = b""
        frames = yield b""
        while True:
            self._pulled.set()
            want = frames * bytes_per_frame
            while len(pending) < want:
                try:
                    pending += self._queue.get_nowait()
                except queue.Empty:
                    break
            out, pending = pending[:want], pending[want:]
            out += b"\0" * (want - len(out))
            if self._reference is not None:
                self._tell(self._reference, out)
            frames = yield out

    def _tell(self, reference: PlaybackReference, out: bytes) -> None:
        """The echo canceller hears what plays; a failure there must not stop the music."""
        block = np.frombuffer(out, "<i2").reshape(-1, self.channels)
        try:
            reference.played(block, self.rate, time.monotonic())
        except Exception:
            _LOGGER.exception("echo reference failed; music plays on without echo cancellation")
            self._reference = None

    def write(self, block: np.ndarray) -> None:
        if self._device is None:
            self._fallback.wait(len(block))
            if time.monotonic() >= self._next_try:
                self._open()
            return
        data = np.ascontiguousarray(block, dtype="<i2").tobytes()
        try:
            self._queue.put(data, timeout=STALL_SECONDS)
        except queue.Full:
            self._fail("speaker stopped taking sound (unplugged?); music is silent until it works")
            self._close_device()
            return
        if self._pulled.is_set():
            self._retry_seconds = self._reconnect_seconds
            if self._reported:
                self._on_message("speaker is back")
                self._reported = False

    def _close_device(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def close(self) -> None:
        self._close_device()


def make_sink(
    audio_out: str | None,
    device: str = "",
    on_message: Callable[[str], None] | None = None,
    reconnect_seconds: float = 2.0,
    reference: PlaybackReference | None = None,
) -> AudioSink:
    """`None`/"" = the speaker ([audio] output_device), "null" = discard, "*.wav" = record.

    `reference` hears what the speaker plays (the other sinks play nothing aloud)."""
    if not audio_out:
        return DeviceSink(device, on_message, reconnect_seconds, reference=reference)
    if audio_out == "null":
        return NullSink()
    if audio_out.lower().endswith(".wav"):
        return WavSink(Path(audio_out).expanduser())
    raise UserError(
        f"--audio-out '{audio_out}' not understood: use 'null' or a path ending in .wav"
    )
