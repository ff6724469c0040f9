"""A profile seeded from Spotify: the account's saved tracks (`/me/tracks`) and top tracks
(`/me/top/tracks`), matched to the catalog (by Spotify id, else by title and artist) and
recorded as likes, so the first "play something" already knows the person.

Needs the `user-library-read` and `user-top-read` scopes, which logins made before this
existed did not ask for: such a login is told in one line to log in again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.history.store import HistoryEvent, HistoryStore, read_events, reading
from heymusic.music.catalog import Catalog
from heymusic.players.spotify import SpotifyApi, SpotifyFailure
from heymusic.players.spotify_auth import TokenCache
from heymusic.track import Track

_LOGGER = logging.getLogger(__name__)

SEED_SCOPES = ("user-library-read", "user-top-read")
PAGE = 50
"""The most either endpoint gives per call."""


@dataclass(frozen=True)
class SeedReport:
    fetched: int
    matched: int
    recorded: int
    """Matched songs not already liked by the profile."""


def check_scopes() -> None:
    """A login made before seeding existed lacks its scopes: say how to grant them."""
    token = TokenCache().get_cached_token() or {}
    granted = set(str(token.get("scope", "")).split())
    missing = [s for s in SEED_SCOPES if s not in granted]
    if "scope" in token and missing:
        raise UserError(
            f"your Spotify login does not allow reading your library ({', '.join(missing)}): "
            "run 'heymusic spotify login' again and agree to the new permissions"
        )


def fetch_tracks(api: SpotifyApi, most: int) -> list[dict[str, Any]]:
    """Up to `most` saved tracks, then up to `most` top tracks (Spotify track objects)."""
    out: list[dict[str, Any]] = []
    for endpoint in ("saved", "top"):
        offset = 0
        while offset < most:
            limit = min(PAGE, most - offset)
            api.begin()
            page = api.call(_page(endpoint, offset, limit))
            page = page if isinstance(page, dict) else {}
            raw = page.get("items", [])
            items = [i.get("track") or {} for i in raw] if endpoint == "saved" else list(raw)
            out += [t for t in items if isinstance(t, dict) and t.get("id")]
            if len(items) < limit or offset + limit >= int(page.get("total", 0)):
                break
            offset += limit
    return out


def _page(endpoint: str, offset: int, limit: int) -> Callable[[Any], Any]:
    def saved(sp: Any) -> Any:
        return sp.current_user_saved_tracks(limit, offset)

    def top(sp: Any) -> Any:
        return sp.current_user_top_tracks(limit, offset, "medium_term")

    return saved if endpoint == "saved" else top


def match(catalog: Catalog, spotify_tracks: list[dict[str, Any]]) -> list[Track]:
    """The catalog's songs among `spotify_tracks` (by id, else exact title and artist)."""
    by_name = {(t.name.lower(), t.artist.lower()): t for t in catalog.tracks}
    found: dict[str, Track] = {}
    for item in spotify_tracks:
        track = catalog.get(str(item["id"]))
        if track is None:
            artists = item.get("artists") or [{}]
            key = (str(item.get("name", "")).lower(), str(artists[0].get("name", "")).lower())
            track = by_name.get(key)
        if track is not None:
            found.setdefault(track.track_id, track)
    return list(found.values())


def seed_profile(settings: Settings, catalog: Catalog, profile: str, most: int) -> SeedReport:
    """Record the account's saved and top tracks found in the catalog as `profile`'s likes.

    Raises:
        UserError: the login lacks the scopes, or Spotify cannot be reached.
    """
    check_scopes()
    try:
        fetched = fetch_tracks(SpotifyApi(settings), most)
    except SpotifyFailure as err:
        raise UserError(f"could not read your Spotify library: {err}") from err
    tracks = match(catalog, fetched)
    with reading() as conn:
        liked = {e.track_id for e in read_events(conn, profile) if e.kind == "like"}
    new = [t for t in tracks if t.track_id not in liked]
    store = HistoryStore()
    for track in new:
        store.record(HistoryEvent(track.track_id, "like", profile))
    store.close()
    return SeedReport(len(fetched), len(tracks), len(new))
