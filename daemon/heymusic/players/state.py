"""What the player remembers across restarts: volume and the last queue (atomic JSON)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heymusic.atomic import write_atomic
from heymusic.config import state_dir
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)
_TRACK_FIELDS = ("track_id", "name", "artist", "album", "genre", "year", "preview_url", "path")


def track_to_dict(track: Track) -> dict[str, Any]:
    return {name: getattr(track, name) for name in _TRACK_FIELDS}


def track_from_dict(data: dict[str, Any]) -> Track:
    return Track(**{k: data[k] for k in _TRACK_FIELDS if k in data})


@dataclass
class SavedState:
    volume: int = 50
    queue: list[Track] = field(default_factory=list)
    position: int = 0


def state_path() -> Path:
    return state_dir() / "player_state.json"


def load_state(path: Path | None = None) -> SavedState:
    """The saved state; defaults when absent or unreadable (logged, never fatal)."""
    path = path or state_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        queue = [track_from_dict(t) for t in raw.get("queue", [])]
        position = min(max(int(raw.get("position", 0)), 0), max(len(queue) - 1, 0))
        return SavedState(int(raw.get("volume", 50)), queue, position)
    except FileNotFoundError:
        return SavedState()
    except (OSError, ValueError, TypeError, AttributeError) as err:
        _LOGGER.warning("ignoring unreadable player state %s (%s)", path, err)
        return SavedState()


def save_state(state: SavedState, path: Path | None = None) -> None:
    data = {
        "volume": state.volume,
        "position": state.position,
        "queue": [track_to_dict(t) for t in state.queue],
    }
    try:
        write_atomic(path or state_path(), json.dumps(data, ensure_ascii=False))
    except OSError as err:
        _LOGGER.warning("could not save player state (%s)", err)
