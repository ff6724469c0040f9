"""Wake-word benchmark, JSON on stdout.

Default: CPU cost of the daemon's WakeDetector with the shipped "hey music" model
(and its verifier) in real time, against openWakeWord's stock "hey jarvis" model
on the same minute of synthetic speech, plus the cost of one verifier call.
--accuracy also runs the full `heymusic wake-eval` (misses per condition, false
accepts per hour, DET points; ~10-20 min the first time, audio is cached).

    .venv/bin/python bench/wake.py [--accuracy] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from heymusic.config import Settings
from heymusic.wake import WakeDetector
from heymusic.wake_data import build_stream

CHUNK = 1280
SR = 16000


def cpu_cost(settings: Settings, audio: np.ndarray) -> dict[str, float]:
    """Process-time per 80 ms chunk over a stream fed chunk by chunk."""
    det = WakeDetector(settings)
    n = len(audio) // CHUNK
    t0 = time.process_time()
    for k in range(n):
        det.process(audio[k * CHUNK : (k + 1) * CHUNK], (k + 1) * CHUNK / SR)
    busy = time.process_time() - t0
    return {
        "ms_per_chunk": round(1000 * busy / n, 3),
        "cpu_percent_of_one_core": round(100 * busy / (n * CHUNK / SR), 2),
    }


def verifier_ms(settings: Settings, audio: np.ndarray) -> float | None:
    from heymusic.wake_verify import load_verifier

    verifier = load_verifier(settings)
    if verifier is None:
        return None
    window = audio[: int(verifier.window_seconds * SR)]
    t0 = time.perf_counter()
    for _ in range(20):
        verifier.score(window)
    return round(1000 * (time.perf_counter() - t0) / 20, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", action="store_true", help="also run the full wake-eval")
    parser.add_argument("--work-dir", type=Path, help="cache for evaluation audio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    audio = build_stream("speech", "eval", 60.0, seed=12345).audio
    ours = Settings.model_validate({"wake": {"models": ["hey_music.onnx"]}})
    stock = Settings.model_validate({"wake": {"models": ["hey_jarvis_v0.1.onnx"]}})
    out: dict[str, object] = {
        "audio_seconds": round(len(audio) / SR, 1),
        "hey_music": cpu_cost(ours, audio),
        "baseline_hey_jarvis": cpu_cost(stock, audio),
        "verifier_ms_per_candidate": verifier_ms(ours, audio),
    }
    if args.accuracy:
        from heymusic import wake_eval, wake_train

        report = wake_eval.evaluate(ours, args.work_dir or wake_train.default_work_dir())
        out["accuracy"] = {k: v for k, v in report.items() if k != "det_points"}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
