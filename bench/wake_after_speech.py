""" "hey music" said right after someone else spoke, JSON on stdout.

At home the phrase often follows talk: another person's sentence, a short pause, then
"hey music". `heymusic wake-eval` reports that condition (`after_speech`) at every bar; this
bench says which stage lets the phrase down. Each draw is one held-out speaker's phrase and
command, said alone (the baseline, same speakers, same run) and after another held-out
speaker's sentence at a random level, `--gap` seconds before. Each is streamed through the
daemon's WakeDetector at the config's bars, and with one later stage switched off at a time.
~2 min for 60 draws here.

    .venv/bin/python bench/wake_after_speech.py [--draws 60] [--gap 0.2 1.0] [--seed 5] [--config X]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.audio.format import SAMPLE_RATE
from heymusic.config import Settings, load_settings
from heymusic.events import Wake
from heymusic.speech.asr import Transcriber
from heymusic.training.wake import data as wake_data
from heymusic.wake.detector import WakeDetector

STAGES = {
    "all stages": {},
    "without the verifier": {"verifier": False},
    "without Whisper's check": {"asr_check": False},
    "first stage alone": {"verifier": False, "asr_check": False},
}


def draw(rng: np.random.Generator, gap: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(the phrase alone, the same phrase after another speaker's sentence)."""
    other, speaker = wake_data.speakers("eval", rng), wake_data.speakers("eval", rng)
    level = rng.uniform(-30, -18)
    text = wake_data.POSITIVE_TEXTS[rng.integers(len(wake_data.POSITIVE_TEXTS))]
    command = wake_data.COMMANDS[rng.integers(len(wake_data.COMMANDS))]
    said = [
        wake_data.at_dbfs(wake_data.say(text, speaker, rng), level),
        np.zeros(int(0.2 * SAMPLE_RATE), np.float32),
        wake_data.at_dbfs(wake_data.say(command, speaker, rng), level),
        np.zeros(2 * SAMPLE_RATE, np.float32),
    ]
    before = [
        wake_data.at_dbfs(
            wake_data.say(wake_data.random_text("eval", rng), other, rng), rng.uniform(-30, -18)
        ),
        np.zeros(int(rng.uniform(*gap) * SAMPLE_RATE), np.float32),
    ]
    lead = np.zeros(3 * SAMPLE_RATE, np.float32)  # openWakeWord's buffer fills first
    alone = wake_data.to_int16(np.concatenate([lead, *said]))
    after = wake_data.to_int16(np.concatenate([lead, *before, *said]))
    return alone, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=60)
    parser.add_argument("--gap", type=float, nargs=2, default=(0.2, 1.0), metavar=("MIN", "MAX"))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--config", type=Path, help="config TOML (its [wake] models and bars)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(args.config) if args.config else Settings()
    whisper = Transcriber(settings).model
    variants = {
        name: settings.model_copy(update={"wake": settings.wake.model_copy(update=change)})
        for name, change in STAGES.items()
    }
    rng = np.random.default_rng(args.seed)
    woke: dict[str, dict[str, int]] = {"alone": dict.fromkeys(STAGES, 0)}
    woke["after speech"] = dict.fromkeys(STAGES, 0)
    for _ in range(args.draws):
        for where, audio in zip(woke, draw(rng, tuple(args.gap)), strict=True):
            for name, config in variants.items():
                events = WakeDetector(config, whisper).events(audio)
                woke[where][name] += any(isinstance(e, Wake) for e in events)
    report: dict[str, Any] = {
        "models": settings.wake.models,
        "draws": args.draws,
        "gap_seconds": list(args.gap),
        "missed_percent": {
            where: {name: round(100 * (1 - n / args.draws), 1) for name, n in counts.items()}
            for where, counts in woke.items()
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
