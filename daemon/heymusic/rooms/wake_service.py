"""heymusic's wake word as a Wyoming wake service, for a satellite's `--wake-uri`.

The stock wyoming-openwakeword runs openWakeWord alone (stage 1; `.tflite` models only).
This one runs all three stages of heymusic.wake.detector on each connection's audio: the
wake model, the embedding (and personal) verifier, and Whisper hearing the phrase, with the
Whisper model the rooms share. A `detection` goes back when all three agree.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe, Info, WakeModel, WakeProgram
from wyoming.wake import Detect, Detection, NotDetected

from heymusic import __version__
from heymusic.audio.format import SAMPLE_RATE
from heymusic.audio.sources import Rechunker
from heymusic.config import Settings
from heymusic.events import Wake
from heymusic.rooms.conversation import ATTRIBUTION, LANGUAGES
from heymusic.rooms.satellite import pipeline_samples
from heymusic.rooms.wyoming_server import LimitedHandler, send
from heymusic.text import wake_phrases_from_models
from heymusic.wake.detector import WakeDetector

_LOGGER = logging.getLogger(__name__)


def wake_info(settings: Settings) -> Info:
    names = [Path(name).stem for name in settings.wake.models]
    models = [
        WakeModel(
            name=name,
            attribution=ATTRIBUTION,
            installed=True,
            description=f"{phrase} (wake model, verifier and Whisper check)",
            version=__version__,
            languages=LANGUAGES,
            phrase=phrase,
        )
        for name, phrase in zip(names, wake_phrases_from_models(names), strict=True)
    ]
    program = WakeProgram(
        name="heymusic",
        attribution=ATTRIBUTION,
        installed=True,
        description="heymusic's three-stage wake word",
        version=__version__,
        models=models,
    )
    return Info(wake=[program])


class WakeHandler(LimitedHandler):
    """One satellite's audio, scored by its own WakeDetector on a worker thread."""

    service = "wake service"

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        settings: Settings,
        whisper: Any,
        max_frame_bytes: int,
    ) -> None:
        super().__init__(reader, writer, max_frame_bytes)
        self._settings = settings
        self._whisper = whisper
        self._detector: WakeDetector | None = None
        self._rechunk = Rechunker()
        self._samples = 0
        self._detected = False

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await send(self, wake_info(self._settings).event())
        elif Detect.is_type(event.type) or AudioStart.is_type(event.type):
            self._detected = False
            if self._detector is not None:
                self._detector.reset()
        elif AudioChunk.is_type(event.type):
            samples = pipeline_samples(event)  # a bad frame: LimitedHandler.run drops the peer
            for wake in await asyncio.to_thread(self._score, samples):
                self._detected = True
                timestamp = round(wake.audio_s * 1000)
                await send(self, Detection(name=wake.model, timestamp=timestamp).event())
        elif AudioStop.is_type(event.type) and not self._detected:
            await send(self, NotDetected().event())
        return True

    def _score(self, samples: np.ndarray) -> list[Wake]:
        """The Wakes in these samples (worker thread: Whisper's check takes ~0.5 s)."""
        if self._detector is None:
            self._detector = WakeDetector(self._settings, self._whisper)
        wakes = []
        for chunk in self._rechunk.push(samples):
            self._samples += len(chunk)
            result = self._detector.process(chunk, self._samples / SAMPLE_RATE)
            if isinstance(result, Wake):
                wakes.append(result)
        return wakes
