"""What a command did, in one sentence for whoever asked by text (Home Assistant speaks it)."""

from __future__ import annotations

from heymusic.events import Event, IntentEvent, PlayerCommand, Results, StageError
from heymusic.rooms.targets import spoken_name

NOT_MUSIC = "Sorry, I only do music: ask for a song, an artist, a genre or a mood."
_SIMPLE = {
    "next": "Skipping.",
    "previous": "Going back.",
    "restart": "From the top.",
    "stop": "Stopped.",
    "stop_after": "I'll stop after this song.",
    "pause": "Paused.",
    "resume": "Resuming.",
}


def reply(events: list[Event]) -> tuple[bool, str]:
    """(handled, the sentence) for the events one text command caused."""
    errors = [e for e in events if isinstance(e, StageError)]
    if errors:
        return False, f"Sorry, that failed: {errors[0].message}"
    intent = next((e for e in events if isinstance(e, IntentEvent)), None)
    sent = next(
        (e for e in events if isinstance(e, PlayerCommand) and e.action == "elsewhere"), None
    )
    if intent is None and sent is not None:
        rooms = [f"the {spoken_name(name)}" for name in (sent.detail or "").split(", ")]
        return True, f"OK, in {' and '.join(rooms)}."
    if intent is None or intent.name == "unknown":
        return False, NOT_MUSIC
    if intent.name == "cancel":
        return True, "OK."
    results = next((e for e in events if isinstance(e, Results)), None)
    for command in (e for e in events if isinstance(e, PlayerCommand)):
        if command.action in _SIMPLE:
            return True, _SIMPLE[command.action]
        if command.action == "volume":
            return True, _volume(command.detail or "")
        if command.action == "repeat":
            return True, "Repeat off." if command.detail == "off" else "On repeat."
        if command.action in ("play", "queue") and results and results.tracks:
            first = results.tracks[0]
            verb = "Playing" if command.action == "play" else "Adding songs like"
            return True, f"{verb} {first.name} by {first.artist}."
        if command.action == "say" and command.detail == "nothing found":
            return False, "I found nothing for that."
        if command.action == "say":
            return True, command.detail or ""
    return False, NOT_MUSIC


def _volume(detail: str) -> str:
    if detail.startswith("+"):
        return "Louder."
    if detail.startswith("-"):
        return "Quieter."
    return f"Volume {detail} percent."
