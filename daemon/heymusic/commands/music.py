"""Songs: `ask` (what the recommender answers a request) and `catalog` (import, info)."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.text import check_request


def ask(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic ask "text" [-k 5] [--json]`."""
    # Bytes that are not UTF-8 reach argv as lone surrogates, which the tokenizer rejects.
    text = args.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if not text.strip():
        raise UserError('the request is empty: say what to play, e.g. heymusic ask "calm piano"')
    check_request(text)
    from heymusic.events import TrackResult
    from heymusic.speech.intents import IntentParser

    parser = IntentParser(volume_step=settings.player.volume_step, extra=settings.intents)
    intent = parser.parse(text)
    if intent.name not in ("play", "unknown"):  # a command to the player, not for songs
        command = {"name": intent.name, "effect": intent.effect()}
        if args.json:
            print(json.dumps({"query": text, "tracks": [], "command": command}, ensure_ascii=False))
        else:
            print(
                f"{text.strip()!r} is a command, not a request for songs: after the wake "
                f'phrase it {intent.effect()} (to find songs by name, ask "play {text.strip()}")'
            )
        return 0
    from heymusic.music.recommender import load_recommender

    recommender = load_recommender(settings)
    results = recommender.recommend(text, k=args.k)
    if args.json:
        tracks = [TrackResult.of(t, s).to_dict() for t, s in results]
        print(json.dumps({"query": text, "tracks": tracks}, ensure_ascii=False))
        return 0
    if not results:
        print("no songs found")
        return 0
    print("    score  song")
    for n, (track, score) in enumerate(results, 1):
        year = f" ({track.year})" if track.year else ""
        genre = f" [{track.genre}]" if track.genre else ""
        print(f"{n:>2}. {score:5.3f}  {track.name} - {track.artist}{year}{genre}")
    return 0


def catalog(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic catalog import PATH` / `heymusic catalog info` / `heymusic catalog demo`."""
    from heymusic.music.catalog import catalog_path, import_catalog, read_catalog

    if args.catalog_command == "demo":
        from heymusic.commands.demo_library import setup_demo_library
        from heymusic.players.spotify_auth import logged_in

        print(setup_demo_library(settings, spotify=logged_in(settings)))
        return 0
    if args.catalog_command == "import":
        imported, report = import_catalog(args.path)
        print(f"imported {report.summary()} -> {catalog_path()}")
        from heymusic.music.recommender import build_index

        build_index(settings, imported)
        return 0
    catalog = read_catalog()
    if catalog is None:
        print(
            f"no catalog yet ({catalog_path()}); it is imported on first use from "
            f"{settings.catalog.source or '(nothing configured)'}"
        )
        return 0
    genres = Counter(t.genre or "(none)" for t in catalog.tracks)
    years = [t.year for t in catalog.tracks if t.year]
    print(f"{len(catalog)} tracks from {catalog.source} ({catalog_path()})")
    print(
        f"artists: {len({t.artist for t in catalog.tracks})}; "
        f"years: {min(years, default='-')}-{max(years, default='-')}; "
        f"previews: {sum(1 for t in catalog.tracks if t.preview_url)}; "
        f"local files: {sum(1 for t in catalog.tracks if t.path)}"
    )
    print("genres: " + ", ".join(f"{g} {n}" for g, n in genres.most_common()))
    return 0
