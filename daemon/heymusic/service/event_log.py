"""Where the daemon's events go: JSON lines on stdout, one log line each (`run`), or one
line per command for a person (`simulate`); and the run's verdict at the end."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from heymusic.events import Event
from heymusic.privacy import REDACTED
from heymusic.service.narration import Narrator
from heymusic.service.verdict import Verdict

_LOGGER = logging.getLogger(__name__)

_PRIVATE_FIELDS = ("text", "query")
"""What a person said: left out of the daemon's own log unless log_transcripts is on."""

_PUBLIC_DETAILS = ("volume",)
"""Player actions whose detail tells nothing of the request (a play's is its first song)."""


def _redact(data: dict[str, Any]) -> None:
    """Leave out what the request can be read from: the words, and the songs found."""
    for key in _PRIVATE_FIELDS:
        if data.get(key) is not None:
            data[key] = REDACTED
    if data.get("detail") is not None and data.get("action") not in _PUBLIC_DETAILS:
        data["detail"] = REDACTED
    if "tracks" in data:
        data["tracks"] = [
            {k: v if k == "score" else REDACTED for k, v in track.items()}
            for track in data["tracks"]
        ]


def _log_value(key: str, value: Any) -> Any:
    """A field as a log line shows it: songs by name, not as a list of dicts."""
    if key == "tracks":
        if any(t["name"] == REDACTED for t in value):
            return f"{len(value)} songs {REDACTED}"
        return "; ".join(f"{t['name']} by {t['artist']}" for t in value) or "none"
    return value


class EventLog:
    """Events out: JSON lines on stdout, one line per command on stdout (`narrate`), or
    one log line each on stderr."""

    def __init__(self, as_json: bool, private: bool, narrate: bool = False) -> None:
        self._json = as_json
        self._private = private
        self._narrator = Narrator() if narrate and not as_json else None
        self.verdict = Verdict()

    def __call__(self, event: Event, room: str | None = None) -> None:
        """`room`: which room's pipeline it came from (rooms mode), a field of its own."""
        self.verdict.add(event)
        if self._narrator is not None:
            for line in self._narrator.add(event):
                print(line, flush=True)
            return
        data = event.to_dict()
        if room is not None:
            data["room"] = room
        if self._private:
            _redact(data)
        if self._json:
            print(_json_line(data), flush=True)
        else:
            details = " ".join(
                f"{k}={_log_value(k, v)}" for k, v in data.items() if k not in ("type", "audio_s")
            )
            _LOGGER.info("%8.2fs %s %s", data["audio_s"], data["type"], details)

    def close(self) -> None:
        """The run's verdict, one line: printed last, on stderr beside JSON lines, or logged."""
        if self._narrator is not None:
            for line in [*self._narrator.flush(), self.verdict.line()]:
                print(line, flush=True)
        elif self._json:
            print(self.verdict.line(), file=sys.stderr, flush=True)
        else:
            _LOGGER.info("%s", self.verdict.line())


def _json_line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)
