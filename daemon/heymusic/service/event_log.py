"""Where the daemon's events go: JSON lines on stdout, or one readable log line each."""

from __future__ import annotations

import json
import logging
from typing import Any

from heymusic.events import Event

_LOGGER = logging.getLogger(__name__)

_PRIVATE_FIELDS = ("text", "query")
"""What a person said: left out of the daemon's own log unless log_transcripts is on."""


class EventLog:
    """Events out: JSON lines on stdout, or one readable log line each on stderr."""

    def __init__(self, as_json: bool, private: bool) -> None:
        self._json = as_json
        self._private = private

    def __call__(self, event: Event, room: str | None = None) -> None:
        """`room`: which room's pipeline it came from (rooms mode), a field of its own."""
        data = event.to_dict()
        if room is not None:
            data["room"] = room
        if self._private:
            for key in _PRIVATE_FIELDS:
                if data.get(key) is not None:
                    data[key] = "(not logged)"
        if self._json:
            print(_json_line(data), flush=True)
        else:
            details = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("type", "audio_s"))
            _LOGGER.info("%8.2fs %s %s", data["audio_s"], data["type"], details)


def _json_line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)
