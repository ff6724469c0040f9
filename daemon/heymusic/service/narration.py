"""`simulate`'s output for a person: one line per command, heard -> understood -> played
-> how long it took, printed once the command is answered (the player's own lines come
from the same events, so they cannot run ahead of the transcript)."""

from __future__ import annotations

from heymusic.events import (
    Event,
    IntentEvent,
    Notice,
    PlayerCommand,
    Results,
    StageError,
    Timeout,
    TrackResult,
    Transcript,
)
from heymusic.speech.intents import Intent

SHOWN_TRACKS = 3
"""Tracks named per line; the rest are counted."""

_DONE_WITHOUT_PLAYER = {"cancel": "nothing (cancelled)", "unknown": "the 'sorry' cue"}
"""Intents the player is told nothing about, and what the person hears instead."""


def _tracks(tracks: tuple[TrackResult, ...]) -> str:
    named = "; ".join(f"{t.name} by {t.artist}" for t in tracks[:SHOWN_TRACKS])
    more = len(tracks) - SHOWN_TRACKS
    return named + (f"; and {more} more" if more > 0 else "")


def _understood(intent: IntentEvent) -> str:
    if intent.name == "play":
        return f'play "{intent.query}"'
    if intent.name in ("volume", "repeat", "sleep_timer"):
        return f"{intent.name.replace('_', ' ')} {intent.value}"
    return {"unknown": "not understood"}.get(intent.name, intent.name.replace("_", " "))


_STEPS = {
    "next": "next track",
    "previous": "previous track",
    "restart": "this track from its beginning",
    "stop_after": "stops when this track ends",
}
"""Player actions in words, where the action's own name does not say it."""


def _played(player: PlayerCommand, results: Results | None) -> str:
    if player.action in ("play", "queue") and results is not None:
        return ("plays " if player.action == "play" else "queues ") + _tracks(results.tracks)
    if player.action == "say":
        return f'says "{player.detail}"'
    if player.action in ("volume", "repeat", "sleep_timer"):
        return Intent(player.action, None, player.detail).effect()
    return _STEPS.get(player.action, player.action)


class Narrator:
    """Turns events into lines; a command's line comes when its last event does."""

    def __init__(self) -> None:
        self._command: list[Event] = []

    def add(self, event: Event) -> list[str]:
        """The lines `event` completes (often none)."""
        if isinstance(event, Transcript):
            lines = self.flush()
            self._command = [event]
            return lines
        if self._command and isinstance(event, IntentEvent | Results | PlayerCommand | StageError):
            self._command.append(event)
            done = isinstance(event, PlayerCommand | StageError) or (
                isinstance(event, IntentEvent) and event.name in _DONE_WITHOUT_PLAYER
            )
            return self.flush() if done else []
        if isinstance(event, Timeout):
            return [*self.flush(), f"{event.audio_s:7.2f} s  woke, but no request followed"]
        if isinstance(event, Notice):
            return [*self.flush(), f"{event.audio_s:7.2f} s  note: {event.message}"]
        if isinstance(event, StageError):
            return [*self.flush(), f"{event.audio_s:7.2f} s  error: {event.message}"]
        return []  # wake, speech end, candidates: the command line and the verdict say them

    def flush(self) -> list[str]:
        """The line of a command still open (the input ended mid-command)."""
        if not self._command:
            return []
        events, self._command = self._command, []
        heard = events[0]
        assert isinstance(heard, Transcript)
        parts = [f'{heard.audio_s:7.2f} s  "{heard.text}"']
        took_ms = heard.asr_ms
        results = next((e for e in events if isinstance(e, Results)), None)
        for event in events[1:]:
            if isinstance(event, IntentEvent):
                parts.append(_understood(event))
                if event.name in _DONE_WITHOUT_PLAYER:
                    parts.append(_DONE_WITHOUT_PLAYER[event.name])
            elif isinstance(event, PlayerCommand):
                parts.append(_played(event, results))
                took_ms = event.latency_ms
            elif isinstance(event, StageError):
                parts.append(f"error: {event.message}")
        parts.append(f"took {took_ms / 1000:.1f} s")
        return [" → ".join(parts)]
