"""Text helpers shared by the stages: the words of a name, the phrase of a wake model, the
size a request may have."""

from __future__ import annotations

import re

from heymusic.errors import UserError

MAX_REQUEST_CHARS = 300
"""Longest request taken: above the longest "play <title> by <artist>" in the shipped
catalog (142 characters) and above what fits in the daemon's longest command (10 s,
`[vad] max_seconds`, at a fast 4 words a second: ~40 words, ~250 characters). Longer
text is not a spoken request (a 20 kB one took 57 s in the title search)."""

_WORD = re.compile(r"[a-z0-9][a-z0-9'&+]*")


def words(text: str) -> list[str]:
    """Lower-case words of a name (playlist, title), apostrophes kept."""
    return _WORD.findall(text.lower())


def wake_phrases_from_models(model_names: list[str]) -> list[str]:
    """ "hey_jarvis_v0.1" -> "hey jarvis": what the transcript starts with for each wake model."""
    return [re.sub(r"_v\d.*$", "", name).replace("_", " ").strip() for name in model_names]


def check_request(text: str) -> str:
    """`text`, if it is no longer than MAX_REQUEST_CHARS; else one line saying so."""
    if len(text) > MAX_REQUEST_CHARS:
        raise UserError(
            f"the request is {len(text)} characters long; requests are at most "
            f"{MAX_REQUEST_CHARS} (more than a 10 s command holds): shorten it"
        )
    return text
