"""Setting up: `config` (what is in force), `spotify` (login, status, logout) and `enroll`
(a personal wake verifier from your own voice)."""

from __future__ import annotations

import argparse
import importlib.util

from heymusic.config import Settings
from heymusic.errors import UserError

ENROLL_PACKAGES = ("sklearn", "scipy")
"""What fitting a personal verifier imports (the `[enroll]` extra), checked before recording."""


def config(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic config`: the effective config, and which file it came from."""
    from heymusic.config import default_config_path, dump_settings

    path = args.config or default_config_path()
    origin = str(path) if path.exists() else f"{path} (absent: defaults)"
    print(f"# effective config; file: {origin}")
    print(dump_settings(settings), end="")
    return 0


def spotify(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic spotify login|status|logout`."""
    from heymusic.players.spotify_auth import logged_in, login, require_client_id, token_path

    action = args.spotify_command
    if action == "seed":
        return _seed(args, settings)
    if action == "login":
        path = login(settings)
        print(f"logged in; token saved to {path} (mode 0600)")
        return 0
    if action == "logout":
        path = token_path()
        path.unlink(missing_ok=True)
        print(f"logged out; removed {path}")
        return 0
    if not logged_in(settings):
        require_client_id(settings)  # `login` would ask for it first
        print(f"not logged in (no token at {token_path()}): run 'heymusic spotify login'")
        return 1
    from heymusic.players.spotify import SpotifyApi

    api = SpotifyApi(settings)
    devices = api.devices()
    print(f"logged in; token at {token_path()}")
    if not devices:
        print(
            "no Spotify device is on: open Spotify on a phone or computer, or start "
            "raspotify/librespot"
        )
    for dev in devices:
        mark = " (active)" if dev.get("is_active") else ""
        print(f"device: {dev.get('name')} [{dev.get('type')}]{mark}")
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic spotify seed [--profile NAME] [--max N]`."""
    from heymusic.music.catalog import load_catalog
    from heymusic.players.spotify_auth import logged_in, token_path
    from heymusic.service.spotify_seed import seed_profile

    if not logged_in(settings):
        raise UserError(
            f"not logged in to Spotify (no token at {token_path()}): run 'heymusic spotify login'"
        )
    report = seed_profile(settings, load_catalog(settings), args.profile, args.max)
    print(
        f"{report.fetched} saved and top tracks on Spotify, {report.matched} in the catalog; "
        f"{report.recorded} new likes for profile {args.profile}"
    )
    return 0


def enroll(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic enroll [--takes N] [--input FILE|-] [--wake-wav ...] [--other-wav ...]
    [--remove]`."""
    from heymusic.training.wake import enroll as enrollment

    if args.remove:
        name = enrollment.forget(settings)
        print(f"removed the personal verifier and recordings for {name}")
        return 0
    missing = [name for name in ENROLL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"enrollment needs {', '.join(missing)}: run `make run`, "
            "or pip install 'heymusic[enroll]'"
        )
    if args.takes < enrollment.MIN_WAKE_CLIPS:
        raise UserError(
            f"--takes {args.takes} is too few; give at least {enrollment.MIN_WAKE_CLIPS}"
        )
    if args.name:
        enrollment.check_name(args.name)  # before anything is recorded
    if args.wake_wav or args.other_wav:
        takes = enrollment.read_takes(args.wake_wav, args.other_wav)
    else:
        takes = enrollment.record(settings, args.takes, args.input)
    report = enrollment.enroll(settings, takes, args.name)
    people = f"; tells apart {', '.join(report['people'])}" if report["people"] else ""
    print(
        f"personal verifier for {report['model']}: {report['wake_takes']} wake takes, "
        f"{report['other_takes']} other takes -> {report['path']}{people}\n"
        "The daemon uses it from its next start or reload (SIGHUP); "
        "`heymusic enroll --remove` forgets it."
    )
    return 0
