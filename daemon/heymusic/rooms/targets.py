"""Commands that name rooms: "play jazz in the kitchen", "stop the music everywhere".

The room comes at the end of a command, the way people say it; what is left is the command
itself, answered in the rooms named as if said there. Room names are the config's
(`[rooms] satellites`, `default_room`), matched loosely ("living_room" is "the living room";
Whisper's "kitchens" is the kitchen). A phrase that names no configured room is left alone:
"play Summer in the City" is a title.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from rapidfuzz import fuzz

ROOM_MATCH = 85.0
"""How close (rapidfuzz ratio, 0-100) a said name must be to a configured room's."""
_EVERYWHERE = re.compile(
    r"[\s,]+(?:everywhere|in (?:every|each) room|in all (?:the )?rooms|all over the house|"
    r"(?:all )?(?:around|through(?:out)?) the house)(?:\s+please)?[\s.!?]*$",
    re.IGNORECASE,
)
_IN_ROOM = re.compile(
    r"^(?P<command>.*)[\s,]+(?:in|on|to|through|at)\s+(?:the\s+)?(?P<room>[\w' -]+?)"
    r"(?:\s+please)?[\s.!?]*$",
    re.IGNORECASE | re.DOTALL,
)
"""The last "in/on/to/at (the) <name>" of a command (greedy `command`: "play music in the
morning in the kitchen" names the kitchen)."""


def spoken_name(room: str) -> str:
    """A room's name as said: "living_room" -> "living room"."""
    return " ".join(re.split(r"[\s_-]+", room.lower())).strip()


def named_rooms(text: str, rooms: Collection[str]) -> tuple[str, list[str]] | None:
    """(the command without its rooms, the rooms it names) or None when it names none.

    `rooms`: the configured room names, in order ("everywhere" names all of them).
    """
    if (everywhere := _EVERYWHERE.search(text)) is not None:
        return text[: everywhere.start()], list(rooms)
    found = _IN_ROOM.search(text)
    if found is None:
        return None
    said = spoken_name(found.group("room"))
    best = max(rooms, key=lambda room: fuzz.ratio(said, spoken_name(room)), default=None)
    if best is None or fuzz.ratio(said, spoken_name(best)) < ROOM_MATCH:
        return None
    return found.group("command"), [best]
