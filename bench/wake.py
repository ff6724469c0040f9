"""Wake-word benchmark, JSON on stdout.

Default: CPU cost of the daemon's WakeDetector with the shipped "hey music" model
(its verifier and Whisper's check included) against openWakeWord's stock "hey jarvis"
model on the same minute of synthetic speech, fed back to back and then paced in real time
as a microphone feeds it (each chunk waits for its 80 ms, and the caches go cold between
chunks: ~1.5-2 ms a chunk more here), scored in groups as the daemon does and one chunk at
a time; paced in a quiet room (nobody speaking), with the wake models skipped while
webrtcvad hears no voice (the default) and without; plus the cost of one call of the
verifier, of a personal (enrolled) verifier and of Whisper's check (each run only on
candidates).
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
from typing import Any

import numpy as np

from heymusic.audio.room import quiet_room
from heymusic.config import Settings
from heymusic.speech.asr import Transcriber
from heymusic.training.wake.data import build_stream
from heymusic.wake.detector import WakeDetector

CHUNK = 1280
SR = 16000
PACED_SECONDS = 30
"""Of the minute, for the runs in real time."""


def cpu_cost(
    settings: Settings,
    audio: np.ndarray,
    whisper: Any = None,
    paced: bool = False,
    one_at_a_time: bool = False,
) -> dict[str, float]:
    """Process-time per 80 ms chunk over a stream fed chunk by chunk (all threads);
    `paced`: each chunk handed over when its 80 ms have passed, as from a microphone;
    `one_at_a_time`: each chunk scored as it comes, not in groups (heymusic.wake.detector)."""
    det = WakeDetector(settings, whisper)
    if one_at_a_time:
        det.group_chunks = 1
    n = len(audio) // CHUNK
    events = 0
    t0 = time.process_time()
    due = time.monotonic()
    for k in range(n):
        events += det.process(audio[k * CHUNK : (k + 1) * CHUNK], (k + 1) * CHUNK / SR) is not None
        if paced:
            due += CHUNK / SR
            time.sleep(max(0.0, due - time.monotonic()))
    events += len(det.finish())
    busy = time.process_time() - t0
    return {
        "ms_per_chunk": round(1000 * busy / n, 3),
        "cpu_percent_of_one_core": round(100 * busy / (n * CHUNK / SR), 2),
        "wakes_and_candidates": events,
    }


def asr_check_ms(whisper: Any, audio: np.ndarray) -> float:
    from heymusic.wake.asr_check import AsrCheck

    check = AsrCheck(whisper, "hey music")
    window = audio[: int(check.window_seconds * SR)]
    check.score(window)  # warm-up
    t0 = time.perf_counter()
    for _ in range(5):
        check.score(window)
    return round(1000 * (time.perf_counter() - t0) / 5, 1)


def verifier_ms(settings: Settings, audio: np.ndarray) -> float | None:
    from heymusic.wake.features import Features
    from heymusic.wake.verifier import load_verifier

    verifier = load_verifier(settings)
    if verifier is None:
        return None
    embeddings = Features().embed(audio[: 5 * SR])
    t0 = time.perf_counter()
    for _ in range(20):
        verifier.score(embeddings)
    return round(1000 * (time.perf_counter() - t0) / 20, 2)


def personal_verifier_ms(audio: np.ndarray) -> float:
    """One enrolled household's check (weights fitted on this audio: the cost, not the
    accuracy, is measured here; `heymusic wake-eval --enroll` measures that)."""
    from heymusic.training.wake.enroll import fit
    from heymusic.wake.features import Features
    from heymusic.wake.personal import FRAMES, PersonalVerifier

    emb = Features().embed(audio[: 10 * SR])
    windows = np.lib.stride_tricks.sliding_window_view(emb, FRAMES, axis=0).transpose(0, 2, 1)
    half = len(windows) // 2
    verifier = PersonalVerifier(fit(windows[:half], windows[half:]))
    t0 = time.perf_counter()
    for _ in range(200):
        verifier.score(emb)
    return round(1000 * (time.perf_counter() - t0) / 200, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accuracy", action="store_true", help="also run the full wake-eval")
    parser.add_argument("--work-dir", type=Path, help="cache for evaluation audio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    audio = build_stream("speech", "eval", 60.0, seed=12345).audio
    ours = Settings.model_validate({"wake": {"models": ["hey_music.onnx"]}})
    stock = Settings.model_validate({"wake": {"models": ["hey_jarvis_v0.1.onnx"]}})
    no_skip = Settings.model_validate(
        {"wake": {"models": ["hey_music.onnx"], "skip_silence": False}}
    )
    room = quiet_room(PACED_SECONDS)
    whisper = Transcriber(ours).model
    out: dict[str, object] = {
        "audio_seconds": round(len(audio) / SR, 1),
        "hey_music": cpu_cost(ours, audio, whisper),
        "baseline_hey_jarvis": cpu_cost(stock, audio),
        "hey_music_paced": cpu_cost(ours, audio[: PACED_SECONDS * SR], whisper, paced=True),
        "hey_music_paced_one_chunk_at_a_time": cpu_cost(
            ours, audio[: PACED_SECONDS * SR], whisper, paced=True, one_at_a_time=True
        ),
        "baseline_hey_jarvis_paced": cpu_cost(stock, audio[: PACED_SECONDS * SR], paced=True),
        "hey_music_paced_quiet_room": cpu_cost(ours, room, whisper, paced=True),
        "hey_music_paced_quiet_room_no_skip": cpu_cost(no_skip, room, whisper, paced=True),
        "verifier_ms_per_candidate": verifier_ms(ours, audio),
        "personal_verifier_ms_per_candidate": personal_verifier_ms(audio),
        "whisper_check_ms_per_candidate": asr_check_ms(whisper, audio),
    }
    if args.accuracy:
        from heymusic.training.wake import evaluate as wake_eval
        from heymusic.training.wake import train as wake_train

        report = wake_eval.evaluate(ours, args.work_dir or wake_train.default_work_dir())
        out["accuracy"] = {k: v for k, v in report.items() if k != "det_points"}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
