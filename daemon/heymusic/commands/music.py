"""Songs: `ask` (what the recommender answers a request) and `catalog` (import, info)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from typing import TYPE_CHECKING

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.text import check_request

if TYPE_CHECKING:
    from heymusic.history.taste import Taste


def ask(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic ask "text" [-k 5] [--json]`."""
    # Bytes that are not UTF-8 reach argv as lone surrogates, which the tokenizer rejects.
    text = args.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if not text.strip():
        raise UserError('the request is empty: say what to play, e.g. heymusic ask "calm piano"')
    check_request(text)
    from heymusic.events import TrackResult
    from heymusic.music.song_features import describes_music
    from heymusic.speech.intents import IntentParser

    parser = IntentParser(
        volume_step=settings.player.volume_step, extra=settings.intents, describes=describes_music
    )
    intent = parser.parse(text, typed=True)
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
    if args.profile:
        recommender.taste = _profile_taste(args.profile)
    results = recommender.recommend(text, k=args.k)
    explained = recommender.explain(text, [t for t, _ in results]) if args.explain else None
    if args.json:
        tracks = [TrackResult.of(t, s).to_dict() for t, s in results]
        for fields, (request, taste) in zip(tracks, explained or [], strict=False):
            fields.update(request_score=round(request, 3), taste_score=_rounded(taste))
        print(json.dumps({"query": text, "tracks": tracks}, ensure_ascii=False))
        return 0
    if not results:
        print("no songs found")
        return 0
    print("    score  song")
    for n, (track, score) in enumerate(results, 1):
        year = f" ({track.year})" if track.year else ""
        genre = f" [{track.genre}]" if track.genre else ""
        why = ""
        if explained is not None:
            request, taste = explained[n - 1]
            why = f"  (request {request:.3f}, taste {'-' if taste is None else f'{taste:.3f}'})"
        print(f"{n:>2}. {score:5.3f}  {track.name} - {track.artist}{year}{genre}{why}")
    return 0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _profile_taste(profile: str) -> Taste:
    from heymusic.history.store import read_events, reading
    from heymusic.history.taste import Taste

    with reading() as conn:
        return Taste(profile, read_events(conn, profile))


def history(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic history [--profile NAME] [--json] [--forget]`."""
    from heymusic.history.store import forget, history_path, read_events, reading

    if not history_path().exists():
        print(f"no listening history yet ({history_path()})")
        return 0
    with reading() as conn:
        if args.forget:
            gone = forget(conn, args.profile)
            whose = f"profile {args.profile}" if args.profile else "every profile"
            print(f"forgot {gone} events of {whose} ({history_path()})")
            return 0
        events = read_events(conn, args.profile)
    if args.json:
        for event in events:
            print(json.dumps(dataclasses.asdict(event), ensure_ascii=False))
        return 0
    from heymusic.music.catalog import read_catalog

    catalog = read_catalog()
    print(f"{len(events)} events in {history_path()}")
    for event in events[-50:]:
        track = catalog.get(event.track_id) if catalog is not None else None
        song = f"{track.name} - {track.artist}" if track else event.track_id
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(event.at))
        seconds = f" {event.seconds:.0f} s" if event.seconds is not None else ""
        print(f"{when}  {event.profile:<10} {event.kind:<14} {song}{seconds}")
    if not settings.history.record:
        print("recording is off ([history] record = false)")
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
