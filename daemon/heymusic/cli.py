"""heymusic: an always-on, offline voice assistant for music.

Say "hey music, play something mellow for a rainy evening": it wakes, transcribes
the request on this machine, finds the songs that fit, and plays them here or on
your Spotify device. Start with `heymusic doctor`, then `heymusic run`.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heymusic import __version__
from heymusic.commands import daemon, demo, doctor, music, setup, training
from heymusic.config import ConfigError, Settings, load_settings
from heymusic.errors import UserError

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Settings], int]


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """--config and --debug, accepted before the command and after it (`default`
    SUPPRESS there, so an option given before is not reset)."""
    parser.add_argument(
        "--config", type=Path, default=default, help="config TOML (default: XDG config dir)"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="verbose logs and tracebacks",
    )


_COMMON = argparse.ArgumentParser(add_help=False)
_global_options(_COMMON, argparse.SUPPRESS)


def _add(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, parents=[_COMMON]
    )
    parser.set_defaults(handler=handler)
    return parser


def _at_least_one(value: str) -> int:
    """A count of 1 or more (argparse type)."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} is less than 1")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heymusic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"heymusic {__version__}")
    _global_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def player_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--player", choices=["auto", "preview", "spotify", "log"], help="override [player] kind"
        )
        p.add_argument(
            "--audio-out",
            metavar="null|FILE.wav",
            help="preview player output: 'null' discards, a .wav path records",
        )

    p = _add(sub, "run", daemon.run, "the always-on daemon (default microphone)")
    p.add_argument("--input", metavar="FILE|-", help="read audio from a file or raw PCM on stdin")
    p.add_argument("--json", action="store_true", help="log events as JSON lines")
    player_flags(p)

    p = _add(
        sub,
        "simulate",
        daemon.simulate,
        "run the daemon's loop over an audio file as fast as possible, then exit",
    )
    p.add_argument("file", help="WAV/FLAC/OGG file, or - for 16 kHz mono s16le on stdin")
    p.add_argument("--json", action="store_true", help="print events as JSON lines on stdout")
    player_flags(p)

    p = _add(sub, "demo", demo.demo, "speak a request with our TTS and play the answer (no mic)")
    p.add_argument("request", nargs="?", help="what to ask for (default: a random description)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long the answer plays")
    p.add_argument("--audio-out", metavar="null|FILE.wav", help="'null' discards, a .wav records")

    p = _add(sub, "transcribe", daemon.transcribe, "transcribe an audio file")
    p.add_argument("file")

    _add(
        sub,
        "doctor",
        doctor.doctor,
        "check models, audio devices, catalog and Spotify, and say what to fix",
    )
    _add(sub, "config", setup.config, "print the effective config")

    p = _add(sub, "ask", music.ask, "recommend songs for a request")
    p.add_argument("text")
    p.add_argument(
        "-k", type=_at_least_one, default=None, help="how many songs (default [recommender] k)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", help="re-rank by this listening profile's taste (household, ...)")
    p.add_argument(
        "--explain", action="store_true", help="show each song's request and taste scores"
    )

    p = _add(sub, "history", music.history, "show, export or forget the listening history")
    p.add_argument("--profile", help="one profile only (default: all)")
    p.add_argument("--json", action="store_true", help="every event as JSON lines")
    p.add_argument("--forget", action="store_true", help="delete the history (of --profile)")

    p = _add(sub, "catalog", music.catalog, "import or inspect the catalog")
    csub = p.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    imp = csub.add_parser(
        "import", help="import a CSV (Spotify songs / seed schema) or a folder", parents=[_COMMON]
    )
    imp.add_argument("path")
    csub.add_parser("info", help="show what the catalog holds", parents=[_COMMON])
    csub.add_parser(
        "demo", help="import the demo music library when nothing can play here", parents=[_COMMON]
    )

    p = _add(
        sub,
        "train",
        training.train_recommender,
        "train the two-tower recommender (needs the [train] extra)",
    )
    p.add_argument("--data", help="Spotify songs CSV (default [catalog] source)")
    p.add_argument("--out", type=Path, help="checkpoint dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=25.0)
    p.add_argument("--max-steps", type=int, default=None)

    p = _add(
        sub,
        "eval",
        training.eval_recommender,
        "evaluate the recommender against baselines on held-out playlists",
    )
    p.add_argument("--data", help="Spotify songs CSV (default [catalog] source)")
    p.add_argument("--json", action="store_true")

    p = _add(
        sub,
        "train-wake",
        training.train_wake,
        "generate speech and train the 'hey music' wake model",
    )
    p.add_argument("--work-dir", type=Path, help="cache for generated audio and features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, help="nets averaged per stage (1: a single net)")
    p.add_argument(
        "--conv-members",
        type=int,
        help="temporal-conv nets averaged in beside them (default 2, as shipped; 0: MLPs only)",
    )
    p.add_argument(
        "--verifier-frames",
        type=int,
        help="embeddings (80 ms each) the verifier reads back from a candidate (default 32)",
    )
    p.add_argument("--out", type=Path, help="write the models here (default: the models dir)")

    p = _add(
        sub,
        "wake-blend",
        training.wake_blend,
        "average several trained wake models, stage by stage, into one",
    )
    p.add_argument("sources", type=Path, nargs="+", help="dirs holding both stages' ONNX files")
    p.add_argument("--out", type=Path, help="write the blend here (default: the models dir)")

    p = _add(
        sub,
        "wake-speech",
        training.wake_speech,
        "synthesize Kokoro voices' speech for train-wake and wake-eval (cached, resumable)",
    )
    p.add_argument("--sentences", type=int, default=4000, help="clips to have (default 4000)")
    p.add_argument("--workers", type=int, default=2, help="processes (one thread each)")
    p.add_argument("--seed", type=int, default=0)

    p = _add(
        sub,
        "enroll",
        setup.enroll,
        "record your voice saying the wake phrase (first [wake] models entry): fewer false wakes",
    )
    p.add_argument("--input", metavar="FILE|-", help="read the takes from a file or stdin")
    p.add_argument("--takes", type=int, default=6, help="wake phrase takes (default 6)")
    p.add_argument("--wake-wav", nargs="+", default=[], metavar="WAV", help="recorded wake takes")
    p.add_argument(
        "--other-wav", nargs="+", default=[], metavar="WAV", help="recorded other speech"
    )
    p.add_argument(
        "--name", help="whose voice this is (a listening profile of their own); default: none"
    )
    p.add_argument("--remove", action="store_true", help="forget the recordings and verifier")

    p = _add(
        sub,
        "wake-eval",
        training.eval_wake,
        "false rejects / false accepts per hour of the wake model",
    )
    p.add_argument("--work-dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--enroll", action="store_true", help="measure what `heymusic enroll` buys instead"
    )
    p.add_argument(
        "--negative-hours",
        type=float,
        metavar="H",
        help="hours of held-out negative audio for false wakes (default ~1.45; more = narrower "
        "intervals, ~6 min of audio and scoring per extra hour)",
    )
    p.add_argument(
        "--room",
        action="store_true",
        help="add the far-field condition: the phrases said across held-out simulated rooms",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="the offline sweep only: skip streaming the daemon's detector over every stream "
        "(its latency and CPU; hours with --negative-hours 6)",
    )

    p = _add(
        sub,
        "spotify",
        setup.spotify,
        "log in to Spotify (headless PKCE) or check the login",
    )
    ssub = p.add_subparsers(dest="spotify_command", required=True, metavar="ACTION")
    ssub.add_parser(
        "login", help="print the authorize URL, then paste the redirect URL", parents=[_COMMON]
    )
    ssub.add_parser("status", help="who is logged in, which devices are there", parents=[_COMMON])
    ssub.add_parser("logout", help="remove the token cache", parents=[_COMMON])
    seed = ssub.add_parser(
        "seed", help="seed a listening profile from saved and top tracks", parents=[_COMMON]
    )
    seed.add_argument("--profile", default="household", help="whose profile (default household)")
    seed.add_argument("--max", type=int, default=200, help="tracks read of each kind")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # `kill -USR1 <pid>`: where every thread is, on stderr, for a run that seems stuck
    with contextlib.suppress(io.UnsupportedOperation):  # stderr without a file: in-process
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings(args.config)
        handler: Handler = args.handler
        return handler(args, settings)
    except (ConfigError, UserError) as err:
        print(f"heymusic: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the clear-error rule: one line unless --debug
        if args.debug:
            raise
        print(
            f"heymusic: unexpected error: {type(err).__name__}: {err} "
            "(run with --debug for details)",
            file=sys.stderr,
        )
        return 1
