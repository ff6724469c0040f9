"""The song catalog: one `Track` per song, loaded from the state dir.

Importers (Spotify songs table, seed schema, local music folder) and the
atomic on-disk format live here too; see the recommender issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
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
