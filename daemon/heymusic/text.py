"""Text helpers shared by the stages: the words of a name, the phrase of a wake model."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9][a-z0-9'&+]*")


def words(text: str) -> list[str]:
    """Lower-case words of a name (playlist, title), apostrophes kept."""
    return _WORD.findall(text.lower())


def wake_phrases_from_models(model_names: list[str]) -> list[str]:
    """ "hey_jarvis_v0.1" -> "hey jarvis": what the transcript starts with for each wake model."""
    return [re.sub(r"_v\d.*$", "", name).replace("_", " ").strip() for name in model_names]
