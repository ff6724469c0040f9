"""A stock wyoming-satellite, called the way Home Assistant calls one.

heymusic connects, asks `describe`, sends `run-satellite`, and reads what the satellite
streams: audio in any of its three modes (always, after its own VAD, after its own wake
word: then `run-pipeline` starts at the ASR stage). What the room's pipeline does goes
back as Wyoming events (detection, transcript, error), and what its player plays goes to
the satellite's speaker as audio-start/chunk/stop. A satellite that is off, drops or comes
back is called again with growing waits, logged once per change; one that sends garbage is
dropped with one line, and called again like one that dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import urlparse

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe, Info
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import RunSatellite
from wyoming.vad import VoiceStopped
from wyoming.wake import Detection

from heymusic.audio.format import SAMPLE_RATE
from heymusic.audio.sink import Pacer
from heymusic.events import Event as HeyEvent
from heymusic.events import SpeechEnd, StageError, Timeout, Wake
from heymusic.events import Transcript as HeyTranscript
from heymusic.rooms.frames import FrameError, read_frame

_LOGGER = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 30.0
CONNECT_SECONDS = 5.0
"""How long a connect or a describe may take before the satellite counts as not answering."""
SPEAKER_RATE = 22050
"""What the satellite's speaker is sent (its --snd-command-rate default); it converts."""
SPEAKER_IDLE_SECONDS = 0.3
"""No sound for this long ends a stream to the speaker (audio-stop)."""
_TO_PIPELINE = AudioChunkConverter(rate=SAMPLE_RATE, width=2, channels=1)


class SatelliteLink:
    """The connection to one satellite, kept up for as long as heymusic runs."""

    def __init__(
        self,
        room: str,
        uri: str,
        max_frame_bytes: int,
        retry_seconds: float,
    ) -> None:
        parsed = urlparse(uri)
        assert parsed.hostname and parsed.port, uri  # checked by the config
        self.room, self.uri = room, uri
        self._host, self._port = parsed.hostname, parsed.port
        self._max_frame_bytes = max_frame_bytes
        self._retry_seconds = retry_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[Event] | None = None
        self._speaking = False
        self._speaker_idle: asyncio.TimerHandle | None = None
        self._state = ""
        self._last_failure = ""
        self._flapping = False
        self.connected = asyncio.Event()
        # set by the hub before run(): where audio and wake news go
        self.on_audio: Callable[[np.ndarray], None] = lambda samples: None
        self.on_listen: Callable[[], None] = lambda: None
        self.on_stream_end: Callable[[], None] = lambda: None

    # --- from other threads ---------------------------------------------------------------
    def tell(self, events: list[HeyEvent]) -> None:
        """What the room's pipeline did, as Wyoming events to the satellite (thread-safe)."""
        for event in events:
            wyoming = _to_wyoming(event)
            if wyoming is not None:
                self._threadsafe(self._send, wyoming)

    def play(self, block: np.ndarray) -> None:
        """int16 mono samples at SPEAKER_RATE for the satellite's speaker (thread-safe)."""
        self._threadsafe(self._play, block.tobytes())

    def _threadsafe(self, call: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(call, *args)
            except RuntimeError:  # the loop closed meanwhile: heymusic is stopping
                pass

    # --- the event loop -------------------------------------------------------------------
    def _send(self, event: Event) -> None:
        if self._outbox is not None:  # connected; otherwise it is news nobody can hear
            self._outbox.put_nowait(event)

    def _play(self, audio: bytes) -> None:
        if not self._speaking:
            self._speaking = True
            self._send(AudioStart(SPEAKER_RATE, 2, 1).event())
        self._send(AudioChunk(SPEAKER_RATE, 2, 1, audio).event())
        if self._speaker_idle is not None:
            self._speaker_idle.cancel()
        assert self._loop is not None
        self._speaker_idle = self._loop.call_later(SPEAKER_IDLE_SECONDS, self._stop_speaking)

    def _stop_speaking(self) -> None:
        self._speaking = False
        self._send(AudioStop().event())

    async def run(self) -> None:
        """Connect, stream, and call again with growing waits, until cancelled."""
        self._loop = asyncio.get_running_loop()
        wait = self._retry_seconds
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), CONNECT_SECONDS
                )
            except (TimeoutError, OSError) as err:
                self._state_is("unreachable", f"does not answer at {self.uri} ({_why(err)})")
            else:
                started = time.monotonic()
                await self._session(reader, writer)
                if time.monotonic() - started > MAX_RETRY_SECONDS:
                    wait = self._retry_seconds  # it was up a good while: start over
                    self._last_failure = ""
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_RETRY_SECONDS)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._outbox = asyncio.Queue()
        sender = asyncio.create_task(self._sender(writer))
        try:
            await async_write_event(Describe().event(), writer)
            info = await asyncio.wait_for(self._read_info(reader), CONNECT_SECONDS)
            await async_write_event(RunSatellite().event(), writer)
            name = info.satellite.name if info.satellite else "?"
            self._state_is("connected", f"connected at {self.uri} ({name})")
            self.connected.set()
            while (event := await read_frame(reader, self._max_frame_bytes)) is not None:
                self._handle(event)
            self._state_is("dropped", "closed the connection; calling it again")
        except FrameError as err:
            self._state_is("garbage", f"dropped: it sent {err}; calling it again")
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as err:
            self._state_is("dropped", f"connection lost ({_why(err)}); calling it again")
        finally:
            self.connected.clear()
            self._outbox = None
            sender.cancel()
            writer.close()
            self.on_stream_end()  # a command cut off by the drop ends with what was heard

    async def _read_info(self, reader: asyncio.StreamReader) -> Info:
        while (event := await read_frame(reader, self._max_frame_bytes)) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
        raise ConnectionResetError("closed before it described itself")

    async def _sender(self, writer: asyncio.StreamWriter) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        try:
            while True:
                await async_write_event(await outbox.get(), writer)
        except (OSError, RuntimeError):
            writer.close()  # the reader sees the drop and reports it

    def _handle(self, event: Event) -> None:
        if AudioChunk.is_type(event.type):
            self.on_audio(pipeline_samples(event))
        elif RunPipeline.is_type(event.type):
            stage = event.data.get("start_stage")
            if stage == PipelineStage.ASR.value:  # it heard the wake word itself
                self.on_listen()
        elif AudioStop.is_type(event.type):
            self.on_stream_end()

    def _state_is(self, state: str, line: str) -> None:
        """Log a change of state once, not every retry: a satellite that fails the same
        way again on every call (connects, then sends garbage) is not logged again."""
        if state == "connected":
            if state != self._state and not self._flapping:
                _LOGGER.info("satellite %s: %s", self.room, line)
        elif line == self._last_failure:
            self._flapping = state != "unreachable"  # answers, then fails the same way
        else:
            self._last_failure, self._flapping = line, False
            _LOGGER.warning("satellite %s: %s", self.room, line)
        self._state = state


def pipeline_samples(event: Event) -> np.ndarray:
    """16 kHz mono int16 from a satellite's chunk, whatever its format.

    Raises:
        FrameError: a chunk that is not audio (no payload, odd sizes, a bad format).
    """
    try:
        chunk = AudioChunk.from_event(event)
        if not chunk.audio or len(chunk.audio) % (chunk.width * chunk.channels):
            raise ValueError("a partial sample")
        if chunk.width not in (1, 2, 4) or not 0 < chunk.channels <= 8:
            raise ValueError(f"width {chunk.width}, {chunk.channels} channels")
        if not 4000 <= chunk.rate <= 192000:
            raise ValueError(f"rate {chunk.rate}")
        audio = _TO_PIPELINE.convert(chunk).audio
    except (KeyError, TypeError, ValueError) as err:
        raise FrameError(f"an audio chunk that is not audio ({err})") from err
    return np.frombuffer(audio, dtype="<i2").astype(np.int16)


def _to_wyoming(event: HeyEvent) -> Event | None:
    """The pipeline's news a satellite acts on: its wake sound, back to waiting for the
    wake word after a transcript (an empty one after a timeout), its error command."""
    if isinstance(event, Wake):
        return Detection(name=event.model, timestamp=round(event.audio_s * 1000)).event()
    if isinstance(event, SpeechEnd):
        return VoiceStopped(timestamp=round(event.audio_s * 1000)).event()
    if isinstance(event, HeyTranscript):
        return Transcript(event.text).event()
    if isinstance(event, Timeout):
        return Transcript("").event()
    if isinstance(event, StageError):
        return Error(event.message, code="heymusic").event()
    return None


def _why(err: BaseException) -> str:
    return str(err) or type(err).__name__


class SatelliteSink:
    """The preview player's sink for a room: paced in real time, sent to the satellite."""

    rate = SPEAKER_RATE
    channels = 1

    def __init__(self, link: SatelliteLink) -> None:
        self._link = link
        self._pacer = Pacer(self.rate)

    def write(self, block: np.ndarray) -> None:
        self._pacer.wait(len(block))
        self._link.play(np.ascontiguousarray(block[:, 0], dtype=np.int16))

    def close(self) -> None:
        pass


async def probe(uri: str) -> str:
    """What a satellite says it is, for `heymusic doctor`.

    Raises:
        OSError, asyncio.TimeoutError: it does not answer.
    """
    parsed = urlparse(uri)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parsed.hostname, parsed.port), CONNECT_SECONDS
    )
    try:
        await async_write_event(Describe().event(), writer)
        while True:
            event = await asyncio.wait_for(read_frame(reader, 1 << 20), CONNECT_SECONDS)
            if event is None:
                raise ConnectionResetError("closed before it described itself")
            if Info.is_type(event.type):
                sat = Info.from_event(event).satellite
                if sat is None:
                    return "answers, but is not a satellite (no satellite in its info)"
                return f"answers: {sat.name}" + (f" in {sat.area}" if sat.area else "")
    finally:
        writer.close()
