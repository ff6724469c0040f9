"""How often the wake word fires on a near-miss said on its own, JSON on stdout.

`heymusic wake-eval` sets near-misses among other speech, in 60 s streams. Said alone
after a quiet room ("music" across the room, "hey muse"), the verifier is far surer of
them: it scored "music" alone 0.9987 from one held-out voice. So this says each of the
training generator's near-misses and other wake words (`CONFUSABLES + OTHER_WAKE_WORDS`,
none of them "hey music") by `--speakers` held-out speakers drawn at random, between
1.5 s of quiet room noise, through the daemon's WakeDetector at the config's settings
(Whisper included), and "hey music" itself by as many speakers per text, for the misses
that the same settings cost. ~6 min here.

    .venv/bin/python bench/wake_confusables.py [--speakers 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from typing import Any

import numpy as np

from heymusic.config import load_settings
from heymusic.events import Wake, WakeCandidate
from heymusic.speech.asr import Transcriber
from heymusic.training.wake import data as wake_data
from heymusic.wake.detector import WakeDetector

CHUNK = 1280
SR = 16000
QUIET_S = 1.5
SPEECH_DBFS = -20.0
ROOM_DBFS = -60.0


def alone(text: str, spk: wake_data.Speaker, rng: np.random.Generator) -> np.ndarray:
    """`text` by `spk` between two stretches of quiet pink room noise, int16."""
    speech = wake_data.say(text, spk, rng)
    speech = wake_data.at_dbfs(speech, SPEECH_DBFS)
    pad = np.zeros(round(QUIET_S * SR), np.float32)
    audio = np.concatenate([pad, speech, pad])
    room = wake_data.colored_noise("pink", len(audio), rng)
    audio = audio + wake_data.at_dbfs(room, ROOM_DBFS)
    return wake_data.to_int16(audio)


def heard(detector: WakeDetector, audio: np.ndarray) -> tuple[bool, bool]:
    """(woke, reached Whisper) for one utterance through a fresh detector."""
    events = detector.events(audio)
    woke = any(isinstance(e, Wake) for e in events)
    asked = woke or any(isinstance(e, WakeCandidate) and e.asr_score is not None for e in events)
    return woke, asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=4, help="held-out speakers per text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(None)
    whisper = Transcriber(settings).model
    rng = np.random.default_rng(70_000 + args.seed)
    wake_data.seed_piper(70_000 + args.seed)  # piper samples its noise: reproducible runs
    texts = sorted(set(wake_data.CONFUSABLES + wake_data.OTHER_WAKE_WORDS))
    wakes: Counter[str] = Counter()
    asked = 0
    by_speaker: Counter[str] = Counter()
    for text in texts:
        for _ in range(args.speakers):
            spk = wake_data.speakers("eval", rng)
            woke, reached = heard(WakeDetector(settings, whisper), alone(text, spk, rng))
            wakes[text] += woke
            asked += reached
            by_speaker[spk.name] += woke
    said = len(texts) * args.speakers
    missed = 0
    for _ in range(said):
        spk = wake_data.speakers("eval", rng)
        woke, _ = heard(WakeDetector(settings, whisper), alone("hey music", spk, rng))
        missed += not woke
    report: dict[str, Any] = {
        "texts": len(texts),
        "speakers_per_text": args.speakers,
        "near_misses_said": said,
        "near_misses_woke": sum(wakes.values()),
        "near_misses_reaching_whisper": asked,
        "hey_music_said": said,
        "hey_music_missed": missed,
        "woke_by_text": {t: f"{n}/{args.speakers}" for t, n in wakes.most_common() if n},
        "woke_by_speaker": dict(by_speaker.most_common(8)),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
