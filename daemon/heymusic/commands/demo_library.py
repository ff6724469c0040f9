"""Music that plays on day one: a small library of freely licensed recordings from Debian.

Without Spotify, the shipped catalog (the Spotify songs table) has nothing this machine can
play. `make run` then imports the soundtrack of Endgame: Singularity (Debian's
`singularity-music`, 15 pieces, 51 MB, CC BY-SA 3.0) as a local music folder, analysed
like any other (tempo, loudness), so "play something calm" plays something. A catalog the
user imported is never replaced; `heymusic catalog import DIR` replaces the demo library.
"""

from __future__ import annotations

from pathlib import Path

from heymusic.config import Settings, default_catalog_source
from heymusic.errors import UserError
from heymusic.music.catalog import (
    Catalog,
    OlderCatalog,
    catalog_path,
    import_catalog,
    read_catalog,
)
from heymusic.players.preview import local_source

DEMO_PACKAGE = "singularity-music"
DEMO_FOLDER = Path("/usr/share/games/singularity/music")
CREDIT = (
    "the Endgame: Singularity soundtrack by Max McCracken (CC BY-SA 3.0), "
    f"from the Debian package {DEMO_PACKAGE}"
)
OWN_FOLDER = "`heymusic catalog import ~/Music` plays your own folder instead"


def is_demo_library(catalog: Catalog) -> bool:
    return bool(catalog.source) and Path(catalog.source) == DEMO_FOLDER


def playable_songs(catalog: Catalog) -> int:
    """Songs with a local file or a preview clip: what plays here without Spotify."""
    return sum(1 for t in catalog.tracks if local_source(t))


def setup_demo_library(settings: Settings, spotify: bool) -> str:
    """Import the demo library when nothing could play (one line saying what was done).

    Args:
        spotify: whether a Spotify login can play the catalog's songs.
    """
    default = default_catalog_source()
    try:
        catalog = read_catalog()
    except OlderCatalog as err:
        if err.source != default:
            return f"music: {err.source} is imported again on first use (a new catalog format)"
        catalog = None  # the shipped table in an older format: nothing of the user's
    except UserError as err:
        return f"music: no demo library set up, the catalog is left as it is: {err}"
    configured = settings.catalog.source
    if catalog is None and configured and configured != default:
        return f"music: {configured} is imported on first use"
    if catalog is not None and (is_demo_library(catalog) or playable_songs(catalog)):
        return f"music: {playable_songs(catalog)} songs play here ({catalog.source})"
    if spotify:
        return "music: Spotify plays the catalog's songs"
    if catalog is not None and catalog.source != default:
        return (
            f"music: nothing in {catalog.source} plays here and it is yours, so it stays; "
            f"log in to Spotify or {OWN_FOLDER}"
        )
    if not DEMO_FOLDER.is_dir():
        return (
            f"music: nothing plays here; install the Debian package {DEMO_PACKAGE} for a demo "
            f"library, or {OWN_FOLDER}"
        )
    imported, report = import_catalog(DEMO_FOLDER)
    from heymusic.music.recommender import build_index

    build_index(settings, imported)
    return f"music: demo library imported ({report.summary()}) -> {catalog_path()}: {CREDIT}"


def music_source_line(catalog: Catalog) -> str:
    """Where the catalog's playable music comes from, for `heymusic doctor`."""
    if is_demo_library(catalog):
        line = f"music: the demo library, {len(catalog)} pieces: {CREDIT}; {OWN_FOLDER}"
        table = default_catalog_source()
        if table:  # what the demo library replaced
            line += f" (with Spotify: `heymusic catalog import {table}`)"
        return line
    playable = playable_songs(catalog)
    line = f"music: {playable} of {len(catalog)} songs play here from local files or previews"
    return line if playable else f"{line}; {OWN_FOLDER}"
