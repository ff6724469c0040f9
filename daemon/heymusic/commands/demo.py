"""`heymusic demo`: the whole loop without a microphone, in about two minutes.

A request is spoken by the reply voice (piper's joe, else espeak-ng) at run time, so nothing
recorded ships; the daemon's loop hears it as `simulate` would, and the auto player plays
the answer through the speaker (or `--audio-out`) for a while.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
from pathlib import Path

import numpy as np

from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.text import wake_phrases_from_models

_LOGGER = logging.getLogger(__name__)

#: What the demo asks for: descriptions any catalog answers (mood, tempo, loudness).
REQUESTS = (
    "play something calm",
    "play something fast",
    "play something quiet",
    "play something upbeat",
    "play something relaxing",
)
#: Silence around the request: the wake verifier needs audio before the phrase (a microphone
#: always has it, a file does not), and the end of a command is found by a pause.
LEAD_SECONDS = 1.0
TAIL_SECONDS = 2.0


def spoken_request(text: str, path: Path) -> str:
    """Speak `text` into a WAV file at `path`; the engine's name (piper or espeak-ng)."""
    import soundfile as sf

    from heymusic.players.voice import Voice

    voice = Voice()
    spoken = voice.synthesize(text)
    if spoken is None:
        raise UserError(
            "no text-to-speech to speak the demo request: install espeak-ng "
            "(`apt-get install espeak-ng`) or the voice extra (`pip install 'heymusic[voice]'`)"
        )
    audio, rate = spoken
    lead, tail = np.zeros(int(LEAD_SECONDS * rate)), np.zeros(int(TAIL_SECONDS * rate))
    sf.write(path, np.concatenate([lead, audio, tail]), rate)
    return voice.engine


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic demo [REQUEST] [--seconds S] [--audio-out null|FILE.wav]`: the demo library
    is set up first when nothing could play (as `make run` does)."""
    from heymusic.commands.demo_library import setup_demo_library
    from heymusic.players.spotify_auth import logged_in
    from heymusic.service import runner

    print(setup_demo_library(settings, spotify=logged_in(settings)), flush=True)
    wake = wake_phrases_from_models([Path(settings.wake.models[0]).stem])[0]
    request = args.request or random.choice(REQUESTS)
    text = f"{wake}, {request}"
    with tempfile.TemporaryDirectory(prefix="heymusic-demo-") as tmp:
        wav = Path(tmp) / "request.wav"
        engine = spoken_request(text, wav)
        print(f'demo: "{text}", spoken by {engine}; the daemon hears it:', flush=True)
        options = runner.RunOptions(
            config=args.config,
            input=str(wav),
            player="auto",
            audio_out=args.audio_out,
            play_seconds=args.seconds,
        )
        return runner.simulate(settings, options)
