"""heymusic's Whisper as a Wyoming ASR service, for Home Assistant or any satellite server.

A request is `transcribe` (optional), `audio-start`, chunks, `audio-stop`; the answer is
one `transcript`. The model is the one the rooms share; one pass at a time per model.
A request over MAX_SECONDS of audio (Whisper reads 30 s at most) is answered with an error
and one log line; its audio is read and dropped as it comes, never kept.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Describe, Info

from heymusic import __version__
from heymusic.audio.format import SAMPLE_RATE
from heymusic.rooms.conversation import ATTRIBUTION, LANGUAGES
from heymusic.rooms.satellite import pipeline_samples
from heymusic.rooms.wyoming_server import LimitedHandler, send
from heymusic.speech.asr import Transcriber

_LOGGER = logging.getLogger(__name__)

MAX_SECONDS = 30.0


def asr_info() -> Info:
    model = AsrModel(
        name="whisper-base-int8",
        attribution=ATTRIBUTION,
        installed=True,
        description="Whisper base (int8), prompted for music requests",
        version=__version__,
        languages=LANGUAGES,
    )
    program = AsrProgram(
        name="heymusic",
        attribution=ATTRIBUTION,
        installed=True,
        description="heymusic's speech recognition",
        version=__version__,
        models=[model],
    )
    return Info(asr=[program])


class AsrHandler(LimitedHandler):
    """One connection's requests, transcribed on a worker thread."""

    service = "ASR service"

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        transcriber: Transcriber,
        max_frame_bytes: int,
    ) -> None:
        super().__init__(reader, writer, max_frame_bytes)
        self._transcriber = transcriber
        self._parts: list[np.ndarray] = []
        self._samples = 0

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await send(self, asr_info().event())
        elif AudioStart.is_type(event.type):
            self._parts, self._samples = [], 0
        elif AudioChunk.is_type(event.type):
            samples = pipeline_samples(event)  # a bad frame: LimitedHandler.run drops the peer
            self._samples += len(samples)
            if self._samples <= MAX_SECONDS * SAMPLE_RATE:
                self._parts.append(samples)
            elif self._parts:  # the rest of the request is read and dropped, not kept
                self._parts = []
                _LOGGER.warning(
                    "%s: refused a request from %s: over %.0f s of audio",
                    self.service,
                    self.peer,
                    MAX_SECONDS,
                )
        elif AudioStop.is_type(event.type):
            too_long = self._samples > MAX_SECONDS * SAMPLE_RATE
            audio = np.concatenate(self._parts) if self._parts else np.zeros(0, np.int16)
            self._parts, self._samples = [], 0
            if too_long:
                line = f"over {MAX_SECONDS:.0f} s of audio: send one command at a time"
                await send(self, Error(line, "too-long").event())
            else:
                text = await asyncio.to_thread(self._transcriber.transcribe, audio)
                await send(self, Transcript(text, language="en").event())
        return True
