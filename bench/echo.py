"""Echo cancellation benchmark, JSON on stdout: the wake word over our own playback.

Held-out voices say "hey music" (wake-eval's positive stream: a phrase every few seconds,
half of them followed by a command) while the player plays eval music (tracks and MIDI, a
new piece and a new speaker, room and latency every 30 s). The echo reaches the mic at
10, 0 and -10 dB against the voices. The mic runs through the daemon's PlaybackReference
and EchoCanceller, with the speaker's and the mic's threads interleaved on jittery clocks,
then through the daemon's WakeDetector at the shipped defaults (Whisper's check included;
told that music plays, so `verifier_threshold_playing` applies, as in the daemon).
The baseline in the same run is the same mic without the canceller.

--negative-minutes also plays held-out speech, confusables and music with speech on top as
our own playback with nobody talking, and counts the false wakes with and without it.

--room says the phrases across held-out simulated rooms (wake-eval's far-field condition:
RT60 0.2-1 s, 0.5-5 m, the room's own noise under them) over the same playback.

--drift-ppm puts the speaker and the mic on two clocks this far apart (two devices).
--clocks only measures the echo removed from 180 s of MIDI on one fixed path, with the
clocks apart by 0-1000 ppm and with late callbacks (no wake word, ~3 min).

    .venv/bin/python bench/echo.py [--phrases 150] [--negative-minutes 30] [--drift-ppm 100] [--room]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import numpy as np
import soxr
from scipy.signal import butter, sosfilt
from tqdm import tqdm

from heymusic.audio.echo import EchoCanceller, PlaybackReference
from heymusic.config import Settings
from heymusic.events import Wake
from heymusic.speech.asr import Transcriber
from heymusic.training.wake import data as wake_data
from heymusic.training.wake import evaluate as wake_eval
from heymusic.training.wake.train import STREAM_SECONDS
from heymusic.wake.detector import WakeDetector

SR = 16000
CHUNK = 1280
DEVICE_RATE = 44100
PULL_S = 0.02
SEGMENT_S = 30.0


def echo_path(played: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the mic hears of `played`: a small speaker (no bass, soft clipping), a room,
    and 30-150 ms of device and air delay, through a cheap mic."""
    sos = butter(2, rng.uniform(120, 250), btype="highpass", fs=SR, output="sos")
    y = sosfilt(sos, played / 32768.0)
    drive = rng.uniform(1.0, 3.0)
    y = wake_data.reverb((np.tanh(drive * y) / drive).astype(np.float32), rng)
    delay = round(rng.uniform(0.03, 0.15) * SR)
    y = np.concatenate([np.zeros(delay, np.float32), y[: len(y) - delay]])
    return wake_data.mic_colour(y, rng)


def heard(played: np.ndarray, ppm: float) -> np.ndarray:
    """`played` as it sounds from a speaker clock `ppm` fast (as long as `played`)."""
    if not ppm:
        return played
    fast = soxr.resample(played.astype(np.float32), SR * (1 + ppm * 1e-6), SR)
    return np.concatenate([fast, np.zeros(len(played) - len(fast), np.float32)])


def echoes(played: np.ndarray, seed: int, ppm: float) -> np.ndarray:
    """`echo_path` of `heard` with a new speaker, room and latency every SEGMENT_S."""
    played = heard(played, ppm)
    step = round(SEGMENT_S * SR)
    return np.concatenate(
        [
            echo_path(played[a : a + step], np.random.default_rng([seed, a]))
            for a in range(0, len(played), step)
        ]
    )


def cancel(
    mic: np.ndarray, played: np.ndarray, rng: np.random.Generator, ppm: float, late: float = 0.0
) -> tuple[Any, float]:
    """`mic` through the daemon's canceller, `played` reaching it as the speaker thread
    hands it over (44.1 kHz stereo pulls every 20 ms of a clock `ppm` fast against the
    mic's). A `late` share of the speaker's pulls come 30-100 ms late (those after them
    catch up), of the mic's chunks 30-150 ms late. Returns (audio, CPU seconds)."""
    loud = soxr.resample(played.astype(np.float32), SR, DEVICE_RATE)
    stereo = np.stack([loud, loud], axis=1).clip(-32768, 32767).astype(np.int16)
    step = round(PULL_S * DEVICE_RATE)
    speaker_rate = DEVICE_RATE * (1 + ppm * 1e-6)
    ref = PlaybackReference()
    canceller = EchoCanceller(ref)
    t0, pulled, busy, out, when = 1000.0, 0, 0.0, [], 0.0
    for at in range(0, len(mic) - CHUNK + 1, CHUNK):
        arrived = t0 + (at + CHUNK) / SR + rng.uniform(0.0, 0.01)
        arrived += rng.uniform(0.03, 0.15) if rng.random() < late else 0.0
        while pulled < len(stereo) and t0 + pulled / speaker_rate <= arrived:
            delay = rng.uniform(0.03, 0.1) if rng.random() < late else 0.0
            when = max(when, t0 + pulled / speaker_rate + rng.uniform(0.0, 0.003) + delay)
            ref.played(stereo[pulled : pulled + step], DEVICE_RATE, when)
            pulled += step
        start = time.process_time()
        out.append(canceller.process(mic[at : at + CHUNK], arrived))
        busy += time.process_time() - start
    canceller.close()
    return np.concatenate(out), busy


def clocks(seed: int) -> dict[str, Any]:
    """Echo removed (dB) on one fixed path of MIDI music, in the first minute (after 8 s)
    and the last, for speaker and mic on one clock or two, with late callbacks."""
    rows: dict[str, Any] = {}
    cases = [("one clock", 0.0, 0.0), ("30 ppm apart", 30.0, 0.0), ("100 ppm apart", 100.0, 0.0)]
    cases += [("1000 ppm apart", 1000.0, 0.0), ("one clock, 1 % late callbacks", 0.0, 0.01)]
    cases += [("one clock, 5 % late callbacks", 0.0, 0.05)]
    rng = np.random.default_rng(seed)
    music = wake_data.midi_music(180.0, rng)
    music = music / (wake_data.rms(music) + 1e-9) * 3000
    for name, ppm, late in tqdm(cases, desc="clock cases", unit="case"):
        echo = echo_path(heard(music, ppm), np.random.default_rng(seed + 1))
        echo *= 3000 / (wake_data.rms(echo) + 1e-9)
        mic = echo.clip(-32768, 32767).astype(np.int16)
        cleaned, _ = cancel(mic, music, np.random.default_rng(seed + 2), ppm, late)
        per_s = [
            rms_db(mic[a : a + SR]) - rms_db(cleaned[a : a + SR])
            for a in range(0, len(cleaned) - SR + 1, SR)
        ]
        rows[name] = {
            "first_minute_db": round(float(np.mean(per_s[8:60])), 1),
            "last_minute_db": round(float(np.mean(per_s[-60:])), 1),
        }
    return rows


def wakes(settings: Settings, whisper: Any, audio: np.ndarray, playing: bool = True) -> np.ndarray:
    """Wake times; `playing`: told our music plays, as the daemon tells it while it does."""
    det = WakeDetector(settings, whisper)
    det.music_playing = playing
    return np.asarray([e.audio_s for e in det.events(audio) if isinstance(e, Wake)])


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x.astype(np.float64))) + 1e-9))


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    step = round(SEGMENT_S * SR)
    parts = [
        wake_data.background("music", "eval", min(step, n - a), rng) for a in range(0, n, step)
    ]
    out = np.concatenate(parts)
    return out / (wake_data.rms(out) + 1e-9) * 3000  # what the player writes


def positives(args: argparse.Namespace, settings: Settings, whisper: Any) -> dict[str, Any]:
    condition = wake_eval.FAR_FIELD if args.room else "clean"
    speech = wake_eval.positive_stream(condition, args.phrases, 90_000 + args.seed)
    voice = speech.audio.astype(np.float32)
    level = np.sqrt(
        np.mean(
            [np.mean(np.square(voice[round(a * SR) : round(b * SR)])) for a, b in speech.phrases]
        )
    )
    rng = np.random.default_rng(args.seed)
    played = music(len(voice), rng)
    echo = echoes(played, args.seed, args.drift_ppm)
    echo /= wake_data.rms(echo) + 1e-9
    rows: dict[str, Any] = {}
    cpu = audio_s = 0.0
    for snr in tqdm(args.snr, desc="playback levels", unit="level"):
        mic = (voice + level / 10 ** (snr / 20) * echo).clip(-32768, 32767).astype(np.int16)
        cleaned, busy = cancel(mic, played, rng, args.drift_ppm)
        cpu, audio_s = cpu + busy, audio_s + len(mic) / SR
        row = {}
        for name, audio in (("without", mic), ("with_canceller", cleaned)):
            stream = wake_eval.EvalStream(name, "pos", audio, speech.phrases)
            hits, false = wake_eval.count_hits(stream, wakes(settings, whisper, audio))
            row[f"misses_{name}"] = round(1 - hits / len(speech.phrases), 3)
            row[f"false_wakes_{name}"] = false
        quiet = np.abs(voice[: len(cleaned)]) < 1  # nobody speaking, after 5 s to adapt
        quiet[: 5 * SR] = False
        row["echo_reduction_db"] = round(
            rms_db(mic[: len(quiet)][quiet]) - rms_db(cleaned[quiet]), 1
        )
        rows[f"playback_{snr:g}db"] = row
    return {
        "phrases": args.phrases,
        "voices": condition,
        "misses_without_playback": round(
            1
            - wake_eval.count_hits(speech, wakes(settings, whisper, speech.audio, False))[0]
            / args.phrases,
            3,
        ),
        **rows,
        "canceller_cpu_percent_of_one_core": round(100 * cpu / audio_s, 2),
    }


def negatives(args: argparse.Namespace, settings: Settings, whisper: Any) -> dict[str, Any]:
    """Our own playback says things (podcasts, songs with talk, near-misses); nobody speaks."""
    counts = {"without": 0, "with_canceller": 0}
    by_kind: dict[str, dict[str, int]] = {}
    n = max(1, round(args.negative_minutes * 60 / STREAM_SECONDS / 3))
    seconds = 0.0
    rng = np.random.default_rng(args.seed + 1)
    for kind in tqdm(("speech", "confusable", "music_speech"), desc="playback kinds", unit="kind"):
        for i in range(n):
            seed = 70_000 + 1000 * args.seed + i
            played = wake_data.build_stream(kind, "eval", STREAM_SECONDS, seed).audio
            played = (
                played.astype(np.float32) / (wake_data.rms(played.astype(np.float32)) + 1e-9) * 3000
            )
            echo = echoes(played, seed, args.drift_ppm)
            echo *= 10 ** (-24 / 20) * 32768 / (wake_data.rms(echo) + 1e-9)  # talking level
            mic = (echo + rng.normal(0, 3, len(echo))).clip(-32768, 32767).astype(np.int16)
            cleaned, _ = cancel(mic, played, rng, args.drift_ppm)
            woke = {
                "without": len(wakes(settings, whisper, mic)),
                "with_canceller": len(wakes(settings, whisper, cleaned)),
            }
            for k, v in woke.items():
                counts[k] += v
                by_kind.setdefault(kind, dict.fromkeys(counts, 0))[k] += v
            seconds += len(mic) / SR
    hours = seconds / 3600
    return {
        "hours": round(hours, 2),
        **{f"false_wakes_per_hour_{k}": round(v / hours, 2) for k, v in counts.items()},
        **{f"false_wakes_{k}": v for k, v in counts.items()},
        "false_wakes_by_kind": by_kind,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phrases", type=int, default=150)
    parser.add_argument("--snr", type=float, nargs="+", default=[10.0, 0.0, -10.0])
    parser.add_argument("--negative-minutes", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--drift-ppm", type=float, default=0.0, help="speaker clock this fast against the mic's"
    )
    parser.add_argument(
        "--clocks", action="store_true", help="only the clock cases (drift, late callbacks)"
    )
    parser.add_argument(
        "--room",
        action="store_true",
        help="the voices across held-out simulated rooms, as wake-eval's far-field condition",
    )
    parser.add_argument(
        "--verifier-threshold-playing",
        type=float,
        help="the verifier's bar while our music plays (default: the config's)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.clocks:
        print(json.dumps({"echo_removed_by_clocks": clocks(args.seed)}, indent=1))
        return
    wake: dict[str, Any] = {"models": ["hey_music.onnx"]}
    if args.verifier_threshold_playing is not None:
        wake["verifier_threshold_playing"] = args.verifier_threshold_playing
    settings = Settings.model_validate({"wake": wake})
    whisper = Transcriber(settings).model
    out: dict[str, Any] = {"positives": positives(args, settings, whisper)}
    if args.negative_minutes > 0:
        out["our_playback_alone"] = negatives(args, settings, whisper)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
