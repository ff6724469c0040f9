"""What was listened to, as history events: the loop shows it the player each chunk, the
actions tell it the commands, and it records plays, how each song ended (finished, skipped,
stopped, with the seconds heard), replays and what was said about a song.

Watching `now_playing` works the same for every player (local, Spotify, log) and keeps the
players untouched; seconds are counted on the loop's audio clock while the player plays.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from heymusic.history.store import HOUSEHOLD, HistoryEvent, HistoryStore, read_events, reading
from heymusic.history.taste import Taste, Tastes, event_weight
from heymusic.players.base import Player, PlayerState, describe
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)

MIN_HEARD_SECONDS = 1.0
"""A song that changed by itself sooner was not heard (it could not be played)."""
REASON_SECONDS = 5.0
"""A command's reason ("skip") is forgotten when the song has not changed this long after."""
SUMMARY_DAYS = 7


class Listening:
    """Records one household's listening into `store`, under the current profile."""

    def __init__(
        self,
        store: HistoryStore,
        tastes: Tastes,
        lookup: Callable[[str], Track | None],
        profile: str = HOUSEHOLD,
    ) -> None:
        self.store = store
        self.tastes = tastes
        self.profile = profile
        self._lookup = lookup
        self._current: Track | None = None
        self._heard_s = 0.0
        self._last_s: float | None = None
        self._reason: tuple[str, float] | None = None
        """How the current song is about to end ("skip", "stop") and when that was said."""
        self._replay = False
        store.subscribe(tastes.add)

    def for_another_room(self) -> Listening:
        """A recorder for another room's player: the same history and tastes (their update
        already subscribed once), its own idea of what plays there."""
        other = Listening.__new__(Listening)
        other.__dict__.update(self.__dict__)
        other._current, other._heard_s, other._last_s = None, 0.0, None
        other._reason, other._replay = None, False
        return other

    def use(self, person: str | None) -> Taste:
        """The person who woke it (None: nobody identified, the household) owns what follows,
        until the next wake; their taste, for the recommender."""
        self.profile = person or HOUSEHOLD
        return self.tastes.get(self.profile)

    def record(self, track: Track, kind: str, seconds: float | None = None) -> None:
        self.store.record(HistoryEvent(track.track_id, kind, self.profile, seconds))

    # --- told by the actions ---------------------------------------------------------------
    def ending(self, how: str, audio_s: float) -> None:
        """The current song is about to end because of a command ("skip" or "stop")."""
        self._reason = (how, audio_s)

    def replaying(self, audio_s: float) -> None:
        """ "previous": the song that comes back was asked for again."""
        self._reason = ("stop", audio_s)
        self._replay = True

    # --- shown the player by the loop ------------------------------------------------------
    def observe(self, player: Player, audio_s: float) -> None:
        playing = player.state is PlayerState.PLAYING
        if self._last_s is not None and playing and self._current is not None:
            self._heard_s += max(0.0, audio_s - self._last_s)
        self._last_s = audio_s
        now = player.now_playing()
        if (now and now.track_id) != (self._current and self._current.track_id):
            self._changed(now, audio_s)
        elif self._reason is not None and audio_s - self._reason[1] > REASON_SECONDS:
            self._reason = None

    def _changed(self, now: Track | None, audio_s: float) -> None:
        previous = self._current
        how = self._reason[0] if self._reason is not None else "finish"
        if previous is not None and (
            self._reason is not None or self._heard_s >= MIN_HEARD_SECONDS
        ):
            self.record(previous, how, round(self._heard_s, 1))
        if now is not None:
            self.record(now, "replay" if self._replay else "play")
        self._current, self._heard_s, self._reason, self._replay = now, 0.0, None, False

    # --- "what have I been listening to" ---------------------------------------------------
    def summary(self, days: float = SUMMARY_DAYS) -> str:
        """A few spoken sentences about this profile's recent listening."""
        self.store.flush(timeout=2.0)
        since = time.time() - days * 86400
        try:
            with reading(self.store.path) as conn:
                events = [e for e in read_events(conn, self.profile) if e.at >= since]
        except Exception as err:  # a locked or broken file: say so, keep going
            _LOGGER.warning("cannot read the listening history: %s", err)
            return "I cannot read the listening history right now."
        return summarize(events, self._lookup)


def summarize(events: list[HistoryEvent], lookup: Callable[[str], Track | None]) -> str:
    """ "This week you played 12 songs, mostly rock and pop. You liked ... ." """
    played = [lookup(e.track_id) for e in events if e.kind in ("play", "replay")]
    songs = [t for t in played if t is not None]
    if not songs:
        return "You have not listened to anything here this week."
    genres = [g for g, _ in Counter(t.genre for t in songs if t.genre).most_common(2)]
    parts = [f"This week you played {len(songs)} song{'s' if len(songs) != 1 else ''}"]
    if genres:
        parts[0] += ", mostly " + " and ".join(genres)
    net: dict[str, float] = {}
    for event in events:
        net[event.track_id] = net.get(event.track_id, 0.0) + event_weight(event)
    best = sorted(net.items(), key=lambda kv: -kv[1])[:2]
    liked = [t for tid, w in best if w > 0 and (t := lookup(tid)) is not None]
    if liked:
        parts.append("you liked " + " and ".join(describe(t) for t in liked))
    skips = sum(1 for e in events if e.kind == "skip")
    if skips:
        parts.append(f"you skipped {skips}")
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."
