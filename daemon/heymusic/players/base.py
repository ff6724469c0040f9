"""The player interface the pipeline drives.

Every method returns at once: a player that does I/O (audio device, Spotify
Web API) does it on its own worker thread, so the audio loop never blocks.
Problems are reported through `on_message` (spoken and logged by the daemon).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol

from heymusic.privacy import Private
from heymusic.track import Track


class PlayerState(enum.Enum):
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


#: recommender.more_like: (seed track, k, exclude ids) -> [(track, score), ...]
MoreLike = Callable[..., Sequence[tuple[Track, float]]]


def describe(track: Track) -> str:
    """How a log line or a spoken reply names a song: 'Title' by Artist (Private: it
    tells what was asked)."""
    return Private(f"'{track.name}' by {track.artist}" if track.artist else f"'{track.name}'")


#: Called with one user-facing line ("Spotify needs Premium to ..."); may come from a worker thread.
MessageCallback = Callable[[str], None]


class Player(Protocol):
    name: str

    def play(self, tracks: Sequence[Track]) -> None:
        """Replace the queue with `tracks` and start the first playable one."""

    def enqueue(self, tracks: Sequence[Track]) -> None:
        """Append to the queue without interrupting what plays."""

    def next(self) -> None: ...

    def previous(self) -> None: ...

    def restart(self) -> None:
        """The song that plays (or is paused) from its beginning."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None:
        """Stop and clear the queue."""

    def repeat(self, on: bool) -> None:
        """Play the song that plays again and again (until a skip, a stop or a new
        request), or play on through the queue."""

    def stop_after(self) -> None:
        """Stop when the song playing ends by itself, keeping the rest of the queue for
        `resume` ("stop after this song")."""

    def pause_in(self, seconds: float | None) -> None:
        """Pause `seconds` from now, whatever plays then (a sleep timer: the queue is kept
        for `resume`); None cancels it. A stop cancels it too."""

    def set_volume(self, percent: int) -> None:
        """Absolute volume 0-100 (capped by the configured maximum)."""

    def change_volume(self, delta: int) -> None: ...

    def duck(self) -> None:
        """Lower the music while the user speaks (wake until command done)."""

    def unduck(self) -> None: ...

    def earcon(self, name: str) -> None:
        """Short cue: "listening", "ok" or "sorry"."""

    def say(self, text: str) -> None:
        """Speak (or log) an answer."""

    def now_playing(self) -> Track | None: ...

    def up_next(self) -> Track | None:
        """The song the queue holds after the one playing; None at its end (radio may
        still add more then)."""

    @property
    def state(self) -> PlayerState: ...

    @property
    def can_resume(self) -> bool:
        """Whether `resume` has a song to go back to: one paused or stopped with its queue
        kept (a saved queue after a restart). "play music" starts something new without."""

    def close(self) -> None:
        """Stop workers, save state (volume, last queue)."""
