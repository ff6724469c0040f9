"""A player that only records and logs what it is told: runs anywhere, no sound."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from heymusic.players.base import PlayerState
from heymusic.privacy import Private
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)


class LogPlayer:
    """Keeps a queue and a position like a real player, so `now_playing` is meaningful."""

    name = "log"

    def __init__(self, max_volume: int = 100) -> None:
        self.commands: list[tuple[str, object]] = []
        self._queue: list[Track] = []
        self._pos = 0
        self._state = PlayerState.STOPPED
        self._max_volume = max_volume
        self.volume = min(50, max_volume)

    def _record(self, action: str, arg: object = None) -> None:
        self.commands.append((action, arg))
        # debug: the player events (in order, after the transcript they answer) say it
        _LOGGER.debug("player %s %s", action, "" if arg is None else Private(str(arg)))

    def play(self, tracks: Sequence[Track]) -> None:
        self._queue, self._pos = list(tracks), 0
        self._state = PlayerState.PLAYING if tracks else PlayerState.STOPPED
        self._record("play", [t.track_id for t in tracks])

    def enqueue(self, tracks: Sequence[Track]) -> None:
        self._queue.extend(tracks)
        self._record("queue", [t.track_id for t in tracks])

    def next(self) -> None:
        self._pos = min(self._pos + 1, len(self._queue))
        self._record("next")

    def previous(self) -> None:
        self._pos = max(self._pos - 1, 0)
        self._record("previous")

    def restart(self) -> None:
        self._record("restart")

    def pause(self) -> None:
        if self._state is PlayerState.PLAYING:
            self._state = PlayerState.PAUSED
        self._record("pause")

    def resume(self) -> None:
        if self._state is PlayerState.PAUSED:
            self._state = PlayerState.PLAYING
        self._record("resume")

    def stop(self) -> None:
        self._queue, self._pos, self._state = [], 0, PlayerState.STOPPED
        self._record("stop")

    def stop_after(self) -> None:
        self._record("stop_after")

    def repeat(self, on: bool) -> None:
        self._record("repeat", on)

    def pause_in(self, seconds: float | None) -> None:
        self._record("pause_in", seconds)

    def set_volume(self, percent: int) -> None:
        self.volume = max(0, min(percent, self._max_volume))
        self._record("volume", self.volume)

    def change_volume(self, delta: int) -> None:
        self.set_volume(self.volume + delta)

    def duck(self) -> None:
        self._record("duck")

    def unduck(self) -> None:
        self._record("unduck")

    def earcon(self, name: str) -> None:
        self._record("earcon", name)

    def say(self, text: str) -> None:
        self._record("say", text)

    def now_playing(self) -> Track | None:
        if self._state is PlayerState.STOPPED or self._pos >= len(self._queue):
            return None
        return self._queue[self._pos]

    def up_next(self) -> Track | None:
        if self._state is PlayerState.STOPPED or self._pos + 1 >= len(self._queue):
            return None
        return self._queue[self._pos + 1]

    @property
    def state(self) -> PlayerState:
        return self._state

    @property
    def can_resume(self) -> bool:
        return self._pos < len(self._queue)

    def close(self) -> None:
        self._record("close")
