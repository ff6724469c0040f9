"""Across the room: the wake word and the endpointer near the mic and in simulated rooms,
behind each front-end setting, in one run. JSON on stdout.

- Wake: held-out speakers say "hey music" (half with a command) near the mic ("clean") and
  across held-out simulated rooms ("room": RT60 0.2-1.0 s, 0.5-5 m, room noise 20-25 dB
  under the voice; heymusic.training.wake.rooms); false wakes on held-out speech,
  near-miss phrases and music. Every front-end setting hears the same audio, through the
  daemon's own WakeDetector (three stages) behind a fresh front end per stream.
- Endpointing: commands said near and across rooms; how long after the voice really
  stopped the recorder ends the command (a room's echo is "speech" to a VAD), behind each
  VAD front-end setting.
- CPU of one front-end path, per second of audio.

    .venv/bin/python bench/far_field.py [--phrases 60] [--negative-minutes 15] [--seed 0] [--models A,B]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from heymusic.audio.format import CHUNK_SAMPLES, SAMPLE_RATE
from heymusic.audio.front_end import FrontEnd
from heymusic.config import FrontEndSettings, Settings, VadSettings
from heymusic.events import SpeechEnd
from heymusic.speech.asr import Transcriber
from heymusic.speech.vad import CommandRecorder
from heymusic.training.wake import data as wake_data
from heymusic.training.wake import evaluate as wake_eval
from heymusic.training.wake import rooms
from heymusic.training.wake import train as wake_train
from heymusic.training.wake.levels import active_span

OFF = {"wake_noise_suppression": 0, "wake_high_pass": False}
WAKE_SETTINGS = {
    "off": OFF,
    "high_pass": {**OFF, "wake_high_pass": True},
    "ns2": {"wake_noise_suppression": 2},
    "ns3": {"wake_noise_suppression": 3},
    "ns4": {"wake_noise_suppression": 4},
    "ns3_gain3": {"wake_noise_suppression": 3, "wake_auto_gain_dbfs": 3},
}
VAD_SETTINGS = {"off": {}, "ns3": {"vad_noise_suppression": 3}}
NEGATIVE_KINDS = ("speech", "confusable", "music")


def wake_streams(
    conditions: list[str],
    phrases: int,
    negative_minutes: float,
    seed: int,
    voice: Callable[[str, Any], np.ndarray] | None = None,
) -> list[wake_eval.EvalStream]:
    """`voice(text, rng)`: who says the phrases (None: wake-eval's held-out espeak/piper)."""
    positives = [
        wake_eval.positive_stream(condition, phrases, 70_000 + seed * 5 + i, voice)
        for i, condition in enumerate(tqdm(conditions, desc="phrases", unit="condition"))
    ]
    per_kind = max(1, round(negative_minutes * 60 / wake_train.STREAM_SECONDS / 3))
    negatives = []
    for kind in tqdm(NEGATIVE_KINDS, desc="negatives", unit="kind"):
        for i in range(per_kind):
            made = wake_data.build_stream(
                kind,
                "eval",
                wake_train.STREAM_SECONDS,
                wake_train.stream_seed("eval", kind, i, seed + 17),
            )
            phrases_s = np.asarray(made.phrases, float).reshape(-1, 2)
            negatives.append(wake_eval.EvalStream(f"{kind}_{i}", kind, made.audio, phrases_s))
    return positives + negatives


def wake_report(
    streams: list[wake_eval.EvalStream], base: Settings, whisper: Any, chosen: list[str]
) -> dict[str, Any]:
    out = {}
    for name in chosen:
        keys = WAKE_SETTINGS[name]
        settings = base.model_copy(update={"front_end": FrontEndSettings(**keys)})
        heard = wake_eval.through_front_end(streams, settings.front_end)
        result = wake_eval.run_detector(heard, settings, whisper)
        out[name] = {
            "missed": result["frr"],
            "missed_ci95": result["frr_ci95"],
            "false_wakes_per_hour_by_kind": result["fa_per_hour_by_kind"],
            "false_wakes_per_hour": result["fa_per_hour"],
        }
    return out


def endpoint_delays(
    commands: int, seed: int, vad: VadSettings, front_end: dict[str, int]
) -> dict[str, Any]:
    """Seconds from the true end of a command's voice to the recorder ending it, near the
    mic and across rooms (the same speakers and commands)."""
    rng = np.random.default_rng(seed)
    delays: dict[str, list[float]] = {"near": [], "room": []}
    never = {"near": 0, "room": 0}
    cut = {"near": 0, "room": 0}
    for _ in tqdm(range(commands), desc="endpointing", unit="command"):
        spk = wake_data.speakers("eval", rng)
        text = wake_data.COMMANDS[rng.integers(len(wake_data.COMMANDS))]
        dry = wake_data.say(text, spk, rng)
        dry = wake_data.at_dbfs(dry, rng.uniform(-30, -18))
        room = rooms.draw_room("eval", rng)
        for where, voice in (("near", dry), ("room", rooms.reverberate(dry, room))):
            lead = np.zeros(SAMPLE_RATE // 2, np.float32)
            audio = np.concatenate([lead, voice, np.zeros(3 * SAMPLE_RATE, np.float32)])
            audio = audio + rooms.room_tone(len(audio), wake_data.rms(dry), rng)
            voice_end_s = (len(lead) + active_span(dry)[1]) / SAMPLE_RATE
            ended = _ended_at(wake_data.to_int16(audio), vad, front_end)
            if ended is None:
                never[where] += 1
            else:
                delays[where].append(ended - voice_end_s)
                cut[where] += ended < voice_end_s  # the recording stopped before the voice did
    return {
        where: {
            "p50_s": round(float(np.percentile(d, 50)), 3) if d else None,
            "p95_s": round(float(np.percentile(d, 95)), 3) if d else None,
            "not_ended": never[where],
            "cut_off": cut[where],
        }
        for where, d in delays.items()
    }


def _ended_at(audio: np.ndarray, vad: VadSettings, front_end: dict[str, int]) -> float | None:
    """When the recorder ends a command that starts with `audio` (the wake already heard)."""
    recorder = CommandRecorder(vad)
    paths = FrontEnd(FrontEndSettings(**OFF, **front_end))
    recorder.start(0.0)
    for start in range(0, len(audio) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES):
        heard = paths.process(audio[start : start + CHUNK_SAMPLES])
        end_s = (start + CHUNK_SAMPLES) / SAMPLE_RATE
        result = recorder.process(heard.asr, end_s, vad_chunk=heard.vad)
        if isinstance(result, SpeechEnd):
            return end_s
        if result is not None:
            return None
    return None


def front_end_cpu(seconds: float = 60.0) -> dict[str, float]:
    """Percent of one core for one path at each setting, on a minute of speech."""
    audio = wake_data.build_stream("speech", "eval", seconds, seed=4242).audio
    out = {}
    for name, keys in WAKE_SETTINGS.items():
        if name == "off":
            continue
        front_end = FrontEnd(FrontEndSettings(**keys))
        t0 = time.process_time()
        front_end.process_all(audio, "wake")
        out[name] = round(100 * (time.process_time() - t0) / seconds, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phrases", type=int, default=60, help="wake phrases per condition")
    parser.add_argument("--negative-minutes", type=float, default=15.0)
    parser.add_argument("--commands", type=int, default=60, help="commands for endpointing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        default="hey_music.onnx",
        help="wake models, comma-separated (each with its verifier beside it): a candidate "
        "next to the shipped one, on the same audio",
    )
    parser.add_argument(
        "--conditions",
        default="clean,room",
        help="wake conditions, comma-separated: clean, room, or wake-eval's (noise_10db, ...)",
    )
    parser.add_argument(
        "--front-ends", default=",".join(WAKE_SETTINGS), help="wake front-end settings to run"
    )
    parser.add_argument(
        "--voices",
        choices=("default", "kokoro"),
        default="default",
        help="kokoro: held-out neural voices say the phrases (a new one per phrase)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    voice = None
    if args.voices == "kokoro":
        from heymusic.training.wake import kokoro

        tts = kokoro.Kokoro()

        def voice(text: str, rng: Any) -> np.ndarray:
            return tts.say(text, kokoro.draw_heldout_voice(rng)[1])

    wake_data.seed_piper(args.seed)
    models = args.models.split(",")
    base = Settings.model_validate({"wake": {"models": [models[0]]}})
    whisper = Transcriber(base).model
    streams = wake_streams(
        args.conditions.split(","), args.phrases, args.negative_minutes, args.seed, voice
    )
    out = {
        "phrases_per_condition": args.phrases,
        "negative_hours": round(
            sum(len(s.audio) for s in streams if s.kind != "pos") / SAMPLE_RATE / 3600, 3
        ),
        "wake": {
            model: wake_report(
                streams,
                base.model_copy(update={"wake": base.wake.model_copy(update={"models": [model]})}),
                whisper,
                args.front_ends.split(","),
            )
            for model in models
        },
        "endpointing": {
            name: endpoint_delays(args.commands, args.seed, base.vad, keys)
            for name, keys in VAD_SETTINGS.items()
        }
        if args.commands
        else {},
        "front_end_cpu_percent_of_one_core": front_end_cpu(),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
