"""The default player: for each request the best source the tracks have.

Tracks with a local file or a preview clip play through the speaker; when none
of them has one, the user's Spotify device plays them (when logged in); when
neither works, one line says how to fix it. Earcons and spoken replies always
come from the speaker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from heymusic.players.base import MessageCallback, MoreLike, Player, PlayerState, describe
from heymusic.players.preview import NOTHING_PLAYABLE, PreviewPlayer, local_source
from heymusic.privacy import Private
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)


class AutoPlayer:
    name = "auto"

    def __init__(
        self,
        speaker: PreviewPlayer,
        spotify: Player | None = None,
        on_message: MessageCallback | None = None,
    ) -> None:
        self._speaker = speaker
        self._spotify = spotify
        self._on_message = on_message
        self._active: Player = speaker

    def can_play(self, track: Track) -> bool:
        """Whether this player can play `track`: from a file or preview, or on Spotify."""
        return local_source(track) or (self._spotify is not None and bool(track.uri))

    def _route(self, tracks: Sequence[Track]) -> Player | None:
        if any(local_source(t) for t in tracks):
            skipped = [describe(t) for t in tracks if not local_source(t)]
            if skipped:
                _LOGGER.info(
                    "no local file or preview for %s: skipped", Private(", ".join(skipped))
                )
            return self._speaker
        if self._spotify is not None and any(t.uri for t in tracks):
            return self._spotify
        return None

    def set_message_callback(self, callback: MessageCallback | None) -> None:
        self._on_message = callback
        for player in (self._speaker, self._spotify):
            setter = getattr(player, "set_message_callback", None)
            if setter is not None:
                setter(callback)

    def set_more_like(self, more_like: MoreLike | None) -> None:
        for player in (self._speaker, self._spotify):
            setter = getattr(player, "set_more_like", None)
            if setter is not None:
                setter(more_like)

    def play(self, tracks: Sequence[Track]) -> None:
        target = self._route(tracks)
        if target is None:
            _LOGGER.warning("%s", NOTHING_PLAYABLE)
            if self._on_message is not None:
                self._on_message(NOTHING_PLAYABLE)
            self._speaker.say(NOTHING_PLAYABLE)
            return
        if target is not self._active:
            self._active.stop()  # one source at a time
            self._active = target
        target.play(tracks)

    def enqueue(self, tracks: Sequence[Track]) -> None:
        self._active.enqueue(tracks)

    def next(self) -> None:
        self._active.next()

    def previous(self) -> None:
        self._active.previous()

    def restart(self) -> None:
        self._active.restart()

    def pause(self) -> None:
        self._active.pause()

    def resume(self) -> None:
        self._active.resume()

    def stop(self) -> None:
        self._active.stop()

    def stop_after(self) -> None:
        self._active.stop_after()

    def repeat(self, on: bool) -> None:
        self._active.repeat(on)

    def pause_in(self, seconds: float | None) -> None:
        self._active.pause_in(seconds)

    def set_volume(self, percent: int) -> None:
        self._active.set_volume(percent)

    def change_volume(self, delta: int) -> None:
        self._active.change_volume(delta)

    def duck(self) -> None:
        self._active.duck()

    def unduck(self) -> None:
        self._active.unduck()

    def earcon(self, name: str) -> None:
        self._speaker.earcon(name)

    def say(self, text: str) -> None:
        self._speaker.say(text)

    def now_playing(self) -> Track | None:
        return self._active.now_playing()

    def up_next(self) -> Track | None:
        return self._active.up_next()

    @property
    def state(self) -> PlayerState:
        return self._active.state

    @property
    def can_resume(self) -> bool:
        return self._active.can_resume

    def close(self) -> None:
        if self._spotify is not None:
            self._spotify.close()
        self._speaker.close()
