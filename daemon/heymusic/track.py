"""The song as every stage sees it: the catalog makes them, the recommender ranks them,
the players play them (players know `Track`, not the catalog)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, eq=False, slots=True)
class Track:
    """One playable song. Audio features are absent (not zero) for local files."""

    track_id: str
    name: str
    artist: str
    album: str = ""
    genre: str = ""
    subgenre: str = ""
    tags: tuple[str, ...] = ()
    year: int | None = None
    popularity: float | None = None
    preview_url: str = ""
    path: str = ""
    """Local audio file, the best source when present."""
    features: Mapping[str, float] = field(default_factory=dict)
    """danceability, energy, valence, tempo, loudness, ... when known."""

    @property
    def uri(self) -> str:
        """Spotify URI, when the id is a Spotify track id."""
        return f"spotify:track:{self.track_id}" if len(self.track_id) == 22 else ""

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tags"] = list(self.tags)
        data["features"] = dict(self.features)
        return data
