"""Accuracy and speed of the folder import's audio analysis on fluidsynth renders.

For each drum style (`dance`: a kick on every beat; `offbeat hats`: kick and snare on
alternate beats with hi-hats between, the usual random_midi drums) N pieces at tempi drawn
from 80-160 BPM are rendered, measured, and measured again scaled by a drawn gain:
tempo within 4 %, halved/doubled (octave errors), other misses; loudness error against
the gain; seconds per minute of audio for one file in one process.

    nice -n 5 .venv/bin/python bench/audio_analysis.py --pieces 20 --out /tmp/analysis.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from heymusic.music.analysis import analyse_file
from heymusic.training.wake.data import random_midi, render_midi

RATE = 44100


def render(bpm: int, seconds: float, rng: np.random.Generator, dance: bool, tmp: Path) -> Path:
    midi = random_midi(seconds, rng, bpm=bpm, drums=True, dance_beat=dance)
    return render_midi(midi, tmp / "x.wav", RATE, gain=0.5)


def run(pieces: int, seconds: float, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {"pieces": pieces, "seconds": seconds, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        for style, dance in (("dance", True), ("offbeat hats", False)):
            within, octave, other, lu_errors, speed = 0, 0, [], [], []
            for bpm in rng.integers(80, 161, size=pieces):
                wav = render(int(bpm), seconds, rng, dance, Path(tmp))
                start = time.perf_counter()
                features = analyse_file(str(wav)).features
                speed.append((time.perf_counter() - start) / (seconds / 60))
                ratio = features.get("tempo", 0.0) / bpm
                if abs(ratio - 1) <= 0.04:
                    within += 1
                elif any(abs(ratio - r) <= 0.04 * r for r in (0.5, 2.0)):
                    octave += 1
                else:
                    other.append([int(bpm), round(features.get("tempo", 0.0), 1)])
                gain = float(rng.uniform(-30, -3))
                data, _ = sf.read(wav, always_2d=True)
                sf.write(wav, data * 10 ** (gain / 20), RATE)
                quieter = analyse_file(str(wav)).features["loudness"]
                lu_errors.append(abs(quieter - features["loudness"] - gain))
            out[style] = {
                "tempo_within_4pct": within,
                "tempo_halved_or_doubled": octave,
                "tempo_other_misses": other,
                "loudness_gain_error_max_lu": round(max(lu_errors), 3),
                "analysis_seconds_per_audio_minute_median": round(float(np.median(speed[1:])), 3),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args.pieces, args.seconds, args.seed)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
