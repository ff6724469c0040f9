"""Audio sources: file, raw PCM on stdin, microphone; all yield 16 kHz mono int16 80 ms chunks.

A file source runs as fast as it is read (for `simulate`); the microphone runs in its
own thread feeding a bounded queue, so a slow consumer shows up as counted overruns
instead of a stalled sound card.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from heymusic.audio.echo import EchoCanceller
from heymusic.audio.format import CHUNK_SAMPLES, CHUNK_SECONDS, SAMPLE_RATE
from heymusic.errors import UserError

_LOGGER = logging.getLogger(__name__)

MIC_QUEUE_SECONDS = 15.0
"""Audio the mic thread holds while the loop is busy: Whisper checking a wake candidate
(0.3-0.7 s here on two threads, ~0.85 s on one, several times that on a small board) and a
command transcribed and acted on (Spotify calls get up to 3 s). What is said meanwhile,
the command after "hey music" or the next wake, waits instead of being dropped; 15 s is
480 kB, and the wake model reads the backlog at ~2 ms a chunk."""
_BLOCK_FRAMES = 16000
"""Frames read from a file at a time (any rate): bounded memory for long files."""


class AudioSource(Protocol):
    def chunks(self) -> Iterator[np.ndarray]:
        """Yield int16 arrays of CHUNK_SAMPLES until the input ends."""

    def close(self) -> None: ...


class Rechunker:
    """Cuts a stream of int16 arrays of any length into CHUNK_SAMPLES pieces."""

    def __init__(self) -> None:
        self._rest = np.zeros(0, dtype=np.int16)

    def push(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        buf = np.concatenate([self._rest, samples]) if self._rest.size else samples
        whole = len(buf) // CHUNK_SAMPLES * CHUNK_SAMPLES
        for start in range(0, whole, CHUNK_SAMPLES):
            yield buf[start : start + CHUNK_SAMPLES]
        self._rest = buf[whole:].copy()

    def flush(self) -> Iterator[np.ndarray]:
        """The last partial chunk, padded with silence so nothing said at the very end is lost."""
        if self._rest.size:
            yield np.pad(self._rest, (0, CHUNK_SAMPLES - self._rest.size))
            self._rest = np.zeros(0, dtype=np.int16)


def _to_int16(x: np.ndarray) -> np.ndarray:
    # soundfile reads int16 as i / 32768: scale back by the same factor (lossless for 16-bit).
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


class FileSource:
    """A WAV/FLAC/OGG file at any rate and channel count, mixed to mono and resampled with soxr."""

    def __init__(self, path: str | Path) -> None:
        import soundfile as sf

        self.path = Path(path)
        try:  # the OS's reason first: libsndfile says "System error" for a missing file
            self.path.open("rb").close()
        except OSError as err:
            raise UserError(
                f"cannot read audio file {self.path}: {err.strerror}; give the path of a WAV, "
                "FLAC or OGG file (or - for 16 kHz mono s16le on stdin)"
            ) from err
        try:
            with quiet_stderr():  # libsndfile's mpg123 prints "Note: ..." lines on garbage
                self._file = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            # libsndfile says "does not exist" for any file it cannot sniff a format from.
            reason = _reason(err)
            if self.path.is_file() and "not exist" in reason:
                reason = "unknown or damaged audio format"
            raise UserError(
                f"cannot read audio file {self.path}: {reason}; "
                "give a WAV, FLAC or OGG file (or - for 16 kHz mono s16le on stdin)"
            ) from err
        if self._file.frames == 0:
            self._file.close()
            raise UserError(f"audio file {self.path} holds no audio; record or pick another file")
        self.rate = int(self._file.samplerate)
        self.seconds = self._file.frames / self.rate

    def chunks(self) -> Iterator[np.ndarray]:
        import soundfile as sf
        import soxr

        resampler = (
            soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
            if self.rate != SAMPLE_RATE
            else None
        )
        rechunk = Rechunker()
        try:
            for block in self._file.blocks(_BLOCK_FRAMES, dtype="float32", always_2d=True):
                mono = block.mean(axis=1, dtype=np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono)
                yield from rechunk.push(_to_int16(mono))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise UserError(f"audio file {self.path} is damaged: {_reason(err)}") from err
        if resampler is not None:
            yield from rechunk.push(
                _to_int16(resampler.resample_chunk(np.zeros(0, "float32"), True))
            )
        yield from rechunk.flush()

    def close(self) -> None:
        self._file.close()


class StdinSource:
    """Raw 16 kHz mono s16le PCM from a pipe (e.g. `arecord -f S16_LE -r 16000 -c 1 -t raw`)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin.buffer

    def chunks(self) -> Iterator[np.ndarray]:
        rechunk = Rechunker()
        pending = b""
        while data := self._stream.read(CHUNK_SAMPLES * 2):
            data = pending + data
            cut = len(data) // 2 * 2
            pending = data[cut:]
            yield from rechunk.push(np.frombuffer(data[:cut], dtype="<i2").astype(np.int16))
        yield from rechunk.flush()

    def close(self) -> None:
        """Stdin belongs to the process; nothing to close."""


def open_input(spec: str) -> AudioSource:
    """`-` = raw PCM on stdin, anything else a file path."""
    return StdinSource() if spec == "-" else FileSource(spec)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr (ALSA/JACK probing noise from PortAudio) for a moment."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def open_pyaudio() -> Any:
    """PyAudio, imported lazily (the [mic] extra) and initialized without probe noise.

    Raises:
        UserError: PyAudio is not installed.
    """
    try:
        import pyaudio
    except ImportError as err:
        raise UserError(
            "microphone support is not installed (pip install 'heymusic[mic]', "
            "needs Debian portaudio19-dev); or use --input FILE|-"
        ) from err
    with quiet_stderr():
        return pyaudio.PyAudio()


def find_input_device(pa: object, device: str) -> int | None:
    """PyAudio input device by index or name substring; None = system default.

    Raises:
        UserError: no input device at all, or none matching `device`.
    """
    count = pa.get_device_count()  # type: ignore[attr-defined]
    inputs = []
    for index in range(count):
        info = pa.get_device_info_by_index(index)  # type: ignore[attr-defined]
        if int(info.get("maxInputChannels", 0)) > 0:
            inputs.append((index, str(info.get("name", ""))))
    if not inputs:
        raise UserError(
            "no microphone found; plug one in, or feed audio with "
            "`--input FILE.wav` or `--input -` (16 kHz mono s16le on stdin)"
        )
    if not device:
        return None
    if device.isdigit():
        if any(index == int(device) for index, _ in inputs):
            return int(device)
    else:
        for index, name in inputs:
            if device.lower() in name.lower():
                return index
    names = ", ".join(f"{i}: {n}" for i, n in inputs)
    raise UserError(
        f"no input device matches [audio] input_device = {device!r}; available: {names}"
    )


def check_microphone(device: str = "") -> None:
    """Raise the clear UserError now if there is no usable input device."""
    pa: Any = open_pyaudio()
    try:
        find_input_device(pa, device)
    finally:
        pa.terminate()


class MicSource:
    """The microphone via PyAudio, read in its own thread into a bounded queue.

    A full queue means the pipeline fell behind: the oldest chunk is dropped, counted in
    `overruns` and logged (never silently). A device that fails mid-stream ends the
    iteration with a UserError so the daemon can report it and reopen.
    """

    def __init__(
        self,
        device: str = "",
        queue_chunks: int = round(MIC_QUEUE_SECONDS / CHUNK_SECONDS),
        echo: EchoCanceller | None = None,
    ) -> None:
        self._echo = echo
        """Takes our own playback out of each chunk, on this thread: it needs capture times."""
        self._pa: Any = open_pyaudio()
        import pyaudio

        try:
            index = find_input_device(self._pa, device)
            self._stream = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=SAMPLE_RATE,
                input=True,
                input_device_index=index,
                frames_per_buffer=CHUNK_SAMPLES,
            )
        except OSError as err:
            self._pa.terminate()
            raise UserError(
                f"cannot open the microphone ({err}); check [audio] input_device and "
                "`heymusic doctor`, or use --input FILE|-"
            ) from err
        except UserError:
            self._pa.terminate()
            raise
        self._queue: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(queue_chunks)
        self._stop = threading.Event()
        self.overruns = 0
        self._thread = threading.Thread(target=self._capture, name="mic", daemon=True)
        self._thread.start()

    def _put(self, item: np.ndarray | BaseException | None) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.overruns += 1
                if self.overruns == 1 or self.overruns % 50 == 0:
                    _LOGGER.warning(
                        "audio overrun: pipeline behind, %d chunks dropped", self.overruns
                    )

    def _capture(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._stream.read(CHUNK_SAMPLES, exception_on_overflow=False)
                chunk = np.frombuffer(data, dtype="<i2").astype(np.int16)
                if self._echo is not None:
                    chunk = self._echo.process(chunk, time.monotonic())
                self._put(chunk)
        except OSError as err:
            self._put(UserError(f"microphone stopped: {err}"))
        finally:
            self._put(None)

    def chunks(self) -> Iterator[np.ndarray]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        try:
            self._stream.stop_stream()
            self._stream.close()
        finally:
            self._pa.terminate()
