"""One room: a Pipeline with its own player, wake state and recorder, over the models every
room shares, run on its own thread.

Audio from a satellite and text from Home Assistant arrive on the asyncio thread; they are
queued here and the pipeline sees them in order on the room's thread, so one room's
Whisper pass never stalls the network or another room's audio.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from heymusic.audio.format import CHUNK_SECONDS
from heymusic.audio.sources import MIC_QUEUE_SECONDS, Rechunker
from heymusic.events import Event
from heymusic.service.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)

#: Called on the room's thread with the events each step caused.
EventsCallback = Callable[["Room", list[Event]], None]


@dataclass
class _Text:
    text: str
    done: Future[list[Event]] = field(default_factory=Future)


class _Listen:
    """The satellite heard the wake word itself: what follows is the command."""


class _StreamEnd:
    """The satellite stopped streaming: a command in progress ends as if silence followed."""


class _Close:
    pass


_Item = np.ndarray | _Text | _Listen | _StreamEnd | _Close


class Room:
    """Feed it audio (any length, 16 kHz mono int16) and text; it answers on its own thread."""

    def __init__(self, name: str, pipeline: Pipeline, on_events: EventsCallback) -> None:
        self.name = name
        self.pipeline = pipeline
        self._on_events = on_events
        self._inbox: queue.Queue[_Item] = queue.Queue(round(MIC_QUEUE_SECONDS / CHUNK_SECONDS))
        self._rechunk = Rechunker()
        self.overruns = 0
        """Chunks dropped because the room's pipeline fell behind (counted, logged)."""
        self._thread = threading.Thread(target=self._run, name=f"room-{name}", daemon=True)
        self._thread.start()

    # --- from the network thread: never blocks --------------------------------------------
    def feed(self, samples: np.ndarray) -> None:
        for chunk in self._rechunk.push(samples):
            self._put(chunk)

    def text(self, text: str) -> Future[list[Event]]:
        """A command as text; the future holds the events it caused."""
        item = _Text(text)
        self._put(item)
        return item.done

    def listen_now(self) -> None:
        self._put(_Listen())

    def end_stream(self) -> None:
        self._put(_StreamEnd())

    def close(self, timeout: float = 5.0) -> None:
        self._put(_Close())
        self._thread.join(timeout)
        self.pipeline.player.close()

    def _put(self, item: _Item) -> None:
        while True:
            try:
                self._inbox.put_nowait(item)
                return
            except queue.Full:
                try:
                    dropped = self._inbox.get_nowait()
                except queue.Empty:
                    continue
                if isinstance(dropped, _Text):  # a request is answered, never lost silently
                    dropped.done.set_exception(RuntimeError(f"room {self.name} is overloaded"))
                self.overruns += 1
                if self.overruns == 1 or self.overruns % 50 == 0:
                    _LOGGER.warning(
                        "room %s: pipeline behind, %d chunks dropped", self.name, self.overruns
                    )

    # --- the room's thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not isinstance(item := self._inbox.get(), _Close):
            try:
                events = self._step(item)
            except Exception:  # a bug for one room must not silence it for good
                _LOGGER.exception("room %s: failed", self.name)
                continue
            if events:
                self._on_events(self, events)

    def _step(self, item: _Item) -> list[Event]:
        if isinstance(item, np.ndarray):
            return self.pipeline.feed(item)
        if isinstance(item, _Text):
            events = self.pipeline.command_text(item.text)
            item.done.set_result(events)
            return events
        if isinstance(item, _Listen):
            self.pipeline.listen_now()
            return []
        return self.pipeline.finish() if self.pipeline.in_command else []
