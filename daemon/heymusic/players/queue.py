"""What both real players share: the play queue, the commands they take, the worker thread
that runs those commands in order, and the radio's bookkeeping.

Every public method only posts a command and returns, so the audio loop never waits on a
device or the network. Urgent commands (play, next, previous, stop, close) also set
`_interrupt`, which cancels slow work in progress (a download).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from heymusic.config import Settings
from heymusic.players.base import MessageCallback, MoreLike, PlayerState, describe
from heymusic.players.state import SavedState, load_state, save_state
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)

_URGENT = frozenset({"play", "next", "previous", "restart", "stop", "close"})


class QueuedPlayer:
    """The queue, volume and state a player keeps, its one command worker, and how it tells
    the person and the daemon about a problem.

    A subclass says what each command does (`_handle`), how long the worker waits for the
    next one (`_wait_seconds`: None = until one comes), what it does when none came
    (`_idle`: play the next block, poll the device) and what it releases on close
    (`_closing`); it calls `_start_worker` once its own fields are set.
    """

    name: str

    def __init__(
        self,
        settings: Settings,
        on_message: MessageCallback | None,
        more_like: MoreLike | None,
        state_file: Path | None = None,
    ) -> None:
        self._player_cfg = settings.player
        self._on_message = on_message
        self._more_like = more_like
        self._state_file = state_file
        saved = load_state(state_file)
        self._volume = min(saved.volume, self._player_cfg.max_volume)
        self._queue: list[Track] = saved.queue
        """Replaced, never edited in place: `now_playing` reads it from other threads."""
        self._pos = saved.position
        self._last_song: Track | None = None
        """The song after which to stop ("stop after this song"); None: play on."""
        self._repeat = False
        """The song that plays comes again when it ends ("repeat this song")."""
        self._pause_at: float | None = None
        """When the sleep timer pauses the music (time.monotonic); None: no timer."""
        self._state = PlayerState.STOPPED
        self._commands: queue.Queue[tuple[str, Any, float]] = queue.Queue()
        """(command, argument, when it was asked: a budget can count from then)."""
        self._interrupt = threading.Event()
        self._thread: threading.Thread | None = None

    def _start_worker(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    # --- the Player interface: post and return -------------------------------------------
    def _post(self, name: str, arg: Any = None) -> None:
        self._commands.put((name, arg, time.monotonic()))
        if name in _URGENT:
            self._interrupt.set()

    def play(self, tracks: Sequence[Track]) -> None:
        self._post("play", list(tracks))

    def enqueue(self, tracks: Sequence[Track]) -> None:
        self._post("enqueue", list(tracks))

    def next(self) -> None:
        self._post("next")

    def previous(self) -> None:
        self._post("previous")

    def restart(self) -> None:
        self._post("restart")

    def pause(self) -> None:
        self._post("pause")

    def resume(self) -> None:
        self._post("resume")

    def stop(self) -> None:
        self._post("stop")

    def stop_after(self) -> None:
        self._post("stop_after")

    def pause_in(self, seconds: float | None) -> None:
        self._post("pause_in", seconds)

    def repeat(self, on: bool) -> None:
        self._post("repeat", on)

    def set_volume(self, percent: int) -> None:
        self._post("volume", percent)

    def change_volume(self, delta: int) -> None:
        self._post("volume_delta", delta)

    def duck(self) -> None:
        self._post("duck", True)

    def unduck(self) -> None:
        self._post("duck", False)

    def now_playing(self) -> Track | None:
        q, pos, state = self._queue, self._pos, self._state  # the worker replaces, never edits
        return None if state is PlayerState.STOPPED or pos >= len(q) else q[pos]

    def up_next(self) -> Track | None:
        q, pos = self._queue, self._pos
        return None if self._state is PlayerState.STOPPED or pos + 1 >= len(q) else q[pos + 1]

    @property
    def state(self) -> PlayerState:
        return self._state

    @property
    def can_resume(self) -> bool:
        return self._pos < len(self._queue)

    @property
    def volume(self) -> int:
        return self._volume

    def say(self, text: str) -> None:
        raise NotImplementedError

    def set_message_callback(self, callback: MessageCallback | None) -> None:
        """For a daemon that creates the player before it can take messages."""
        self._on_message = callback

    def set_more_like(self, more_like: MoreLike | None) -> None:
        """For a daemon that loads the recommender after the player (radio)."""
        self._more_like = more_like

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every command posted so far has run (tests and benches use it)."""
        done = threading.Event()
        self._post("mark", done)
        return done.wait(timeout)

    def _join(self, timeout: float) -> None:
        """Post "close" and give the worker `timeout` seconds to save and end."""
        self._post("close")
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    # --- the worker -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._interrupt.clear()
            if self._pause_at is not None and time.monotonic() >= self._pause_at:
                self._pause_at = None
                _LOGGER.info("%s player: the sleep timer pauses the music", self.name)
                self._run_command("pause", None, time.monotonic())
                continue
            try:
                name, arg, asked = self._commands.get(timeout=self._next_wait())
            except queue.Empty:
                self._idle()
                continue
            if name == "close":
                self._closing()
                self._save()
                return
            if name == "mark":
                arg.set()
                continue
            if name == "pause_in":
                self._pause_at = None if arg is None else asked + arg
                continue
            if name == "stop":
                self._pause_at = None  # the music the timer was set for has ended
            self._run_command(name, arg, asked)

    def _run_command(self, name: str, arg: Any, asked: float) -> None:
        try:
            self._handle(name, arg, asked)
        except Exception:  # a bug in one command must not silence the player
            _LOGGER.exception("%s player: command %s failed", self.name, name)

    def _handle(self, name: str, arg: Any, asked: float) -> None:
        raise NotImplementedError

    def _wait_seconds(self) -> float | None:
        return None

    def _next_wait(self) -> float | None:
        """The subclass's wait, cut short by the sleep timer."""
        wait = self._wait_seconds()
        if self._pause_at is None:
            return wait
        left = max(0.0, self._pause_at - time.monotonic())
        return left if wait is None else min(wait, left)

    def _idle(self) -> None:
        """Nothing was posted within `_wait_seconds`."""

    def _closing(self) -> None:
        """The worker is about to save and end."""

    # --- shared bookkeeping (worker thread) -----------------------------------------------
    def _apply_volume(self, name: str, arg: int) -> None:
        """ "volume" sets, "volume_delta" steps; capped by `[player] max_volume`; saved."""
        target = arg if name == "volume" else self._volume + arg
        self._volume = max(0, min(int(target), self._player_cfg.max_volume))
        self._save()

    def _radio_songs(
        self, seed: Track, playable: Callable[[Track], bool], seen: Iterable[Track]
    ) -> list[Track]:
        """Radio: songs like `seed` this player can play, none of `seen`; none when radio is
        off or the recommender fails (radio is a bonus: the music just ends)."""
        if not (self._player_cfg.radio and self._more_like is not None):
            return []
        exclude = {t.track_id for t in seen}
        try:
            more = [t for t, _ in self._more_like(seed, exclude=exclude) if playable(t)]
        except Exception:
            _LOGGER.exception("radio: could not get more songs")
            return []
        if more:
            _LOGGER.info("radio: %d more like %s", len(more), describe(seed))
        return more

    def _report(self, line: str) -> None:
        """A problem the person should hear about: spoken here, and passed to `on_message`
        (the daemon turns it into an event; it does not speak it again)."""
        _LOGGER.warning("%s", line)
        if self._on_message is not None:
            self._on_message(line)
        self.say(line)

    def _save(self) -> None:
        save_state(SavedState(self._volume, self._queue, self._pos), self._state_file)
