"""Intent -> action: what the player is told to do for each kind of command, and the
events that say so (with the time since the speech ended)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from heymusic.events import Event, PlayerCommand, Results, TrackResult
from heymusic.players.base import Player
from heymusic.speech.intents import Intent
from heymusic.speech.second_listen import Heard
from heymusic.track import Track

_SIMPLE_ACTIONS = {
    "skip": ("next", lambda p: p.next()),
    "previous": ("previous", lambda p: p.previous()),
    "stop": ("stop", lambda p: p.stop()),
    "pause": ("pause", lambda p: p.pause()),
    "resume": ("resume", lambda p: p.resume()),
}


class Recommender(Protocol):
    """What the loop asks of the recommender (heymusic.music.recommender.Recommender)."""

    def recommend(self, text: str, *, heard: Heard | None = None) -> list[tuple[Track, float]]: ...

    def more_like(
        self, track: Track, *, exclude: Collection[str] = ()
    ) -> list[tuple[Track, float]]: ...


class Actions:
    """Carries out intents on a player, asking the recommender for songs."""

    def __init__(
        self, player: Player, recommender: Recommender, clock: Callable[[], float]
    ) -> None:
        self.player = player
        self.recommender = recommender
        self._clock = clock

    def act(
        self, intent: Intent, audio_s: float, spoken_at: float, heard: Heard | None = None
    ) -> list[Event]:
        """What the player was told for one command, as events.

        Args:
            audio_s: where the command's speech ended in the input.
            spoken_at: the clock's reading then (the events carry the time since).
            heard: how well other requests fit the command's audio (a weak title match is
                settled by it).
        """
        player = self.player

        def issued(action: str, detail: str | None = None) -> PlayerCommand:
            return PlayerCommand(audio_s, action, (self._clock() - spoken_at) * 1000.0, detail)

        if intent.name in _SIMPLE_ACTIONS:
            action, call = _SIMPLE_ACTIONS[intent.name]
            call(player)
            return [issued(action)]
        if intent.name == "volume":
            if isinstance(intent.value, str):
                player.change_volume(int(intent.value))
            elif isinstance(intent.value, int):
                player.set_volume(intent.value)
            return [issued("volume", str(intent.value))]
        if intent.name == "now_playing":
            track = player.now_playing()
            answer = f"This is {track.name} by {track.artist}." if track else "Nothing is playing."
            player.say(answer)
            return [issued("say", answer)]
        if intent.name == "play" and intent.query:
            found = self.recommender.recommend(intent.query, heard=heard)
            return self._play(found, audio_s, issued, "play")
        if intent.name == "more_like_this":
            current = player.now_playing()
            if current is None:
                player.say("Nothing is playing.")
                return [issued("say", "Nothing is playing.")]
            found = self.recommender.more_like(current, exclude=(current.track_id,))
            return self._play(found, audio_s, issued, "queue")
        if intent.name == "unknown":
            player.earcon("sorry")
        return []  # cancel: a false wake or a change of mind does nothing

    def _play(
        self,
        found: list[tuple[Track, float]],
        audio_s: float,
        issued: Callable[..., PlayerCommand],
        action: str,
    ) -> list[Event]:
        results = Results(audio_s, tuple(TrackResult.of(t, s) for t, s in found))
        if not found:
            self.player.say("I found nothing for that.")
            return [results, issued("say", "nothing found")]
        tracks = [t for t, _ in found]
        self.player.enqueue(tracks) if action == "queue" else self.player.play(tracks)
        return [results, issued(action, tracks[0].track_id)]
