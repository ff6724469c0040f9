"""Intent -> action: what the player is told to do for each kind of command, and the
events that say so (with the time since the speech ended)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from heymusic.events import Event, PlayerCommand, Results, TrackResult
from heymusic.history.taste import Taste
from heymusic.players.base import Player, PlayerState
from heymusic.service.listening import Listening
from heymusic.speech.intents import Intent, spoken_duration
from heymusic.speech.second_listen import Heard
from heymusic.track import Track

_SIMPLE_ACTIONS = {
    "skip": ("next", lambda p: p.next()),
    "previous": ("previous", lambda p: p.previous()),
    "stop": ("stop", lambda p: p.stop()),
    "pause": ("pause", lambda p: p.pause()),
    "resume": ("resume", lambda p: p.resume()),
}
#: How a command ends the song that plays, for the history.
_ENDS = {"skip": "skip", "stop": "stop", "play": "stop", "favourites": "stop", "dislike": "skip"}
NOTHING_PLAYING = "Nothing is playing."
NOTHING_SAID = "I did not say anything."
HISTORY_OFF = "The listening history is off, so I cannot remember that."
ANY_MUSIC = "music"
"""The request "play music" makes when there is nothing to resume: nothing but music, so
the listening profile's taste alone chooses when there is one."""


class Recommender(Protocol):
    """What the loop asks of the recommender (heymusic.music.recommender.Recommender)."""

    taste: Taste | None
    """The profile that re-ranks what is not asked for by name."""

    def recommend(self, text: str, *, heard: Heard | None = None) -> list[tuple[Track, float]]: ...

    def more_like(
        self, track: Track, *, exclude: Collection[str] = ()
    ) -> list[tuple[Track, float]]: ...

    def favourites(self) -> list[tuple[Track, float]]: ...

    def describes(self, text: str) -> bool: ...

    def names_a_song(self, text: str) -> bool: ...

    def names(self, text: str, heard: Heard | None = None) -> bool: ...

    def title_score(self, text: str) -> float: ...


def verbless_song(intent: Intent, text: str, command: str, recommender: Recommender) -> Intent:
    """A transcript not understood that is "<title> by <artist>" of a catalog song asks for
    it (`Recommender.names_a_song`: people leave the verb out, Whisper mishears it); else
    `intent` as it was. `command`: the transcript after its wake phrase."""
    if intent.name == "unknown" and recommender.names_a_song(text):
        return Intent("play", command.strip(" ,.!?"), None)
    return intent


def unclear(intent: Intent, recommender: Recommender, heard: Heard | None) -> Intent:
    """What a transcript Whisper was unsure of (`[asr] min_clarity`) may still do: play a
    song or artist it names, by its words or its audio (`heard`); else nothing but the
    "sorry" sound. Garbled words answered by meaning had played songs nobody asked for, and
    garbled controls other controls; a control its audio clearly says is still found
    (heymusic.speech.control_listen settles the "unknown")."""
    if intent.name == "play" and intent.query and recommender.names(intent.query, heard):
        return intent
    return Intent("unknown")


class Actions:
    """Carries out intents on a player, asking the recommender for songs."""

    def __init__(
        self,
        player: Player,
        recommender: Recommender,
        clock: Callable[[], float],
        listening: Listening | None = None,
    ) -> None:
        """`listening`: records the history (None: `[history] record = false`)."""
        self.player = player
        self.recommender = recommender
        self._clock = clock
        self.listening = listening
        self._answered: str | None = None
        """What was said for the last command (None: a cue or nothing), for "say that again"."""

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

        answered, self._answered = self._answered, None
        if intent.name == "say_again":
            events = self._say(answered or NOTHING_SAID, issued)
            self._answered = answered  # asked again, said again: not "I did not say anything"
            return events
        if self.listening is not None and intent.name in _ENDS:
            self.listening.ending(_ENDS[intent.name], audio_s)
        if self.listening is not None and intent.name == "previous":
            self.listening.replaying(audio_s)
        if intent.name in ("like", "dislike", "history"):
            return self._feedback(intent.name, issued)
        resumable = player.state is PlayerState.PLAYING or player.can_resume
        if intent.name == "resume" and not resumable:  # a fresh start, or after "stop"
            found = self.recommender.favourites() or self.recommender.recommend(ANY_MUSIC)
            return self._play(found, audio_s, issued, "play")
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
        if intent.name in ("now_playing", "up_next"):
            answer = self._answer(intent.name)
            return self._say(answer, issued)
        if intent.name in ("restart", "stop_after", "repeat"):
            return self._this_song(intent, issued)
        if intent.name == "sleep_timer":
            return self._sleep_timer(intent.value, issued)
        if intent.name == "play" and intent.query:
            found = self.recommender.recommend(intent.query, heard=heard)
            return self._play(found, audio_s, issued, "play")
        if intent.name == "more_like_this":
            current = player.now_playing()
            if current is None:
                return self._say(NOTHING_PLAYING, issued)
            if self.listening is not None:
                self.listening.record(current, "more_like_this")
            found = self.recommender.more_like(current, exclude=(current.track_id,))
            return self._play(found, audio_s, issued, "queue")
        if intent.name == "favourites":
            found = self.recommender.favourites()
            if not found:
                return self._say("I do not know what you like yet.", issued, "no favourites yet")
            return self._play(found, audio_s, issued, "play")
        if intent.name == "unknown":
            player.earcon("sorry")
        return []  # cancel: a false wake or a change of mind does nothing

    def _say(
        self, answer: str, issued: Callable[..., PlayerCommand], detail: str | None = None
    ) -> list[Event]:
        """A spoken answer, and the event that says so (`detail`: the event's words for it
        when not the answer itself)."""
        self._speak(answer)
        return [issued("say", detail or answer)]

    def _speak(self, answer: str) -> None:
        """Says `answer`, kept for "say that again"."""
        self.player.say(answer)
        self._answered = answer

    def _sleep_timer(
        self, value: int | str | None, issued: Callable[..., PlayerCommand]
    ) -> list[Event]:
        """Pauses the music in `value` seconds ("off": no more), and says when."""
        seconds = None if value == "off" else int(str(value))
        self.player.pause_in(seconds)
        if seconds is None:
            answer = "The sleep timer is off."
        else:
            answer = f"The music stops in {spoken_duration(seconds)}."
        return [issued("sleep_timer", str(value)), *self._say(answer, issued)]

    def _this_song(self, intent: Intent, issued: Callable[..., PlayerCommand]) -> list[Event]:
        """What is done to the song that plays: from its beginning (a replay, for the
        history), on repeat or not, or a stop when it ends; nothing playing is said."""
        player = self.player
        track = player.now_playing()
        if track is None:
            return self._say(NOTHING_PLAYING, issued)
        if intent.name == "repeat":
            player.repeat(intent.value != "off")
            return [issued("repeat", str(intent.value))]
        if intent.name == "stop_after":
            player.stop_after()
        else:
            if self.listening is not None:
                self.listening.record(track, "replay")
            player.restart()
        return [issued(intent.name, track.track_id)]

    def _answer(self, question: str) -> str:
        """What plays ("now_playing") or comes after it ("up_next"), as a spoken sentence."""
        current = self.player.now_playing()
        if current is None:
            return NOTHING_PLAYING
        if question == "now_playing":
            return f"This is {current.name} by {current.artist}."
        following = self.player.up_next()
        if following is None:
            return "Nothing is queued after this song."
        return f"Next is {following.name} by {following.artist}."

    def _feedback(self, name: str, issued: Callable[..., PlayerCommand]) -> list[Event]:
        """Like, dislike (then skip) the song that plays; the spoken summary of the history."""
        player, listening = self.player, self.listening
        if name == "history":
            answer = listening.summary() if listening is not None else HISTORY_OFF
            return self._say(answer, issued)
        track = player.now_playing()
        if track is None:
            return self._say(NOTHING_PLAYING, issued)
        if listening is not None:
            listening.record(track, name)
        if name == "like":
            if listening is None:
                self._speak(HISTORY_OFF)
            else:
                player.earcon("ok")
            return [issued(name, track.track_id)]
        player.next()  # a dislike is a skip too
        return [issued(name, track.track_id)]

    def _play(
        self,
        found: list[tuple[Track, float]],
        audio_s: float,
        issued: Callable[..., PlayerCommand],
        action: str,
    ) -> list[Event]:
        results = Results(audio_s, tuple(TrackResult.of(t, s) for t, s in found))
        if not found:
            return [results, *self._say("I found nothing for that.", issued, "nothing found")]
        tracks = [t for t, _ in found]
        self.player.enqueue(tracks) if action == "queue" else self.player.play(tracks)
        return [results, issued(action, tracks[0].track_id)]
