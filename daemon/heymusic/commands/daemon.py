"""Listening: `run` (the always-on daemon), `simulate` (its loop over a file) and
`transcribe` (Whisper alone)."""

from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING

from heymusic.config import Settings

if TYPE_CHECKING:
    from heymusic.service.runner import RunOptions

_LOGGER = logging.getLogger(__name__)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic run [--input FILE|-] [--json] [--player K] [--audio-out X]`; with a
    [rooms] section (and no --input), every room's satellite instead of the microphone."""
    from heymusic.service import runner

    if settings.rooms.enabled and not args.input:
        from heymusic.rooms.run import run_rooms

        return run_rooms(settings, _options(args, None))
    return runner.run(settings, _options(args, args.input))


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic simulate FILE|- [--json] [--player K] [--audio-out X]`."""
    from heymusic.service import runner

    return runner.simulate(settings, _options(args, args.file))


def _options(args: argparse.Namespace, audio_in: str | None) -> RunOptions:
    from heymusic.service.runner import RunOptions

    return RunOptions(
        config=args.config,
        input=audio_in,
        as_json=args.json,
        player=args.player,
        audio_out=args.audio_out,
    )


def transcribe(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic transcribe FILE`: the text of a whole file, with how long it took and how
    sure Whisper was on stderr."""
    import numpy as np

    from heymusic.audio.format import SAMPLE_RATE
    from heymusic.audio.sources import open_input
    from heymusic.speech.asr import Transcriber

    source = open_input(args.file)
    try:
        audio = np.concatenate(list(source.chunks()))
    finally:
        source.close()
    transcriber = Transcriber(settings)
    start = time.perf_counter()
    heard = transcriber.hear(audio)
    took_ms = (time.perf_counter() - start) * 1000.0
    _LOGGER.info(
        "transcribed %.1f s of audio in %.0f ms (clarity %.2f; under [asr] min_clarity %.2f a "
        "command gets the 'sorry' sound)",
        audio.size / SAMPLE_RATE,
        took_ms,
        heard.clarity,
        settings.asr.min_clarity,
    )
    print(heard.text)
    return 0
