"""Latency, idle CPU and memory of the daemon; prints one JSON object.

    .venv/bin/python bench/latency.py [--commands 24] [--idle-seconds 60] [--seed 0]

Speaks >= 20 commands with espeak-ng (phrase table + songs from the catalog source, several
voices, light noise), runs them through `heymusic simulate --json` and reports p50/p95 of
wake -> speech_end (audio seconds), ASR ms and end-of-speech -> player command (ms), plus the
simulate process's peak RSS; the same commands again with every second listen off
(`recheck_titles`, `recheck_controls`), with how often each ran and the time they add. Then feeds `heymusic run --input -` a quiet room (pink noise at
-55 dBFS, nobody speaking) in real time and measures its CPU use once READY, then as long of
someone talking (held-out synthetic speech without the wake word, bench/wake.py's minute),
against a baseline in the same run: the wake detector alone, back to back, over the quiet
room in this process. Targets (2-core machine) are in the output.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import soundfile as sf

from heymusic.audio.room import quiet_room
from heymusic.training.wake.data import build_stream

ROOT = Path(__file__).resolve().parents[1]
HEYMUSIC = ROOT / ".venv" / "bin" / "heymusic"
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m5", "en-029"]
FREE_TEXT = [
    "play something mellow for a rainy evening",
    "play some upbeat rock",
    "play sad songs from the nineties",
    "play some jazz",
]
TARGETS = {
    "speech_end_to_player_p50_ms": 800,
    "speech_end_to_player_p95_ms": 1200,
    "idle_cpu_percent": 5.0,
    "rss_mb": 350,
}


def _speak(text: str, voice: str, out: Path) -> np.ndarray:
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), "pad", "1", "3"],
        check=True,
    )
    data, _ = sf.read(str(out), dtype="int16")
    return np.asarray(data, dtype=np.int16)


def _commands(rng: random.Random, n: int, catalog_csv: str) -> list[str]:
    table = tomllib.loads((ROOT / "data" / "intents.toml").read_text())["intents"]
    control = [rng.choice(spec["phrases"]) for spec in table.values()]
    songs: list[str] = []
    if catalog_csv and Path(catalog_csv).is_file():
        with open(catalog_csv, encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("track_name", "").isascii()]
        songs = [f"play {r['track_name']} by {r['track_artist']}" for r in rng.sample(rows, 6)]
    pool = control + songs + FREE_TEXT
    return [pool[i % len(pool)] for i in rng.sample(range(max(n, len(pool))), n)]


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def bench_commands(args: argparse.Namespace, work: Path, wake_phrase: str) -> dict[str, object]:
    from heymusic.config import load_settings

    rng = random.Random(args.seed)
    settings = load_settings()
    commands = _commands(rng, args.commands, settings.catalog.source)
    clips = [
        _speak(f"{wake_phrase}, {text}", VOICES[i % len(VOICES)], work / f"c{i}.wav")
        for i, text in enumerate(commands)
    ]
    audio = np.concatenate(clips).astype(np.float64)
    audio += np.random.default_rng(args.seed).normal(0, 60, audio.shape)  # a quiet room
    wav = work / "commands.wav"
    sf.write(str(wav), np.clip(audio, -32768, 32767).astype(np.int16), 16000)
    from heymusic.config import dump_settings

    off = load_settings(
        overrides={"recommender": {"recheck_titles": False}, "asr": {"recheck_controls": False}}
    )
    off_config = work / "checks_off.toml"
    off_config.write_text(dump_settings(off))
    result = _simulate(wav, [], len(commands))
    result["second_listens_off"] = _simulate(wav, ["--config", str(off_config)], len(commands))
    on, off_ms = result.pop("player_ms"), result["second_listens_off"].pop("player_ms")
    checks = result["checks"]
    assert isinstance(on, list) and isinstance(off_ms, list) and isinstance(checks, dict)
    if len(on) == len(off_ms) and sum(checks.values()):
        extra = sum(on) - sum(off_ms)
        result["extra_ms_per_check"] = round(extra / sum(checks.values()), 1)
    return result


def _simulate(wav: Path, options: list[str], commands: int) -> dict[str, object]:
    """`heymusic simulate` on the commands: latencies, and how often each second listen ran
    (its log lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(
        [str(HEYMUSIC), *options, "simulate", str(wav), "--json", "--player", "log"],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    events = [json.loads(line) for line in out.stdout.splitlines()]
    wake_s, to_end, asr, player = None, [], [], []
    for e in events:
        if e["type"] == "wake":
            wake_s = e["audio_s"]
        elif e["type"] == "speech_end" and wake_s is not None:
            to_end.append((e["audio_s"] - wake_s) * 1000.0)
        elif e["type"] == "transcript":
            asr.append(e["asr_ms"])
        elif e["type"] == "player":
            player.append(e["latency_ms"])
    return {
        "commands": commands,
        "wakes": sum(e["type"] == "wake" for e in events),
        "player_commands": len(player),
        "errors": [e["message"] for e in events if e["type"] == "error"],
        "wake_to_speech_end_ms": {"p50": _pct(to_end, 50), "p95": _pct(to_end, 95)},
        "asr_ms": {"p50": _pct(asr, 50), "p95": _pct(asr, 95)},
        "speech_end_to_player_ms": {"p50": _pct(player, 50), "p95": _pct(player, 95)},
        "checks": {
            "titles": out.stderr.count("title checked against the audio"),
            "controls": out.stderr.count("command checked against the audio"),
        },
        "player_ms": player,
        "simulate_peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mb(pid: int, key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def bench_idle(seconds: float, work: Path) -> dict[str, object]:
    notify = work / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(300)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify))
    proc = subprocess.Popen(
        [str(HEYMUSIC), "run", "--input", "-", "--player", "log"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None

    def drain() -> None:  # like systemd: keep reading, or the queue fills and pings drop
        with contextlib.suppress(OSError):
            while sock.recv(4096):
                pass

    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        threading.Thread(target=drain, daemon=True).start()
        room = quiet_room(seconds)
        talk = build_stream("speech", "eval", seconds, seed=12345).audio
        idle_percent, wall = _feed_in_real_time(proc, room)
        talking_percent, _ = _feed_in_real_time(proc, talk)
        rss, peak = _status_mb(proc.pid, "VmRSS"), _status_mb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        sock.close()
    return {
        "idle_cpu_percent": idle_percent,
        "talking_cpu_percent": talking_percent,
        "run_rss_mb": rss,
        "run_peak_rss_mb": peak,
        "idle_seconds": round(wall, 1),
    }


def _feed_in_real_time(proc: subprocess.Popen[bytes], audio: np.ndarray) -> tuple[float, float]:
    """Write 80 ms chunks to the daemon's stdin as a microphone would: (% of one core, s)."""
    assert proc.stdin is not None
    cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
    for n in range(len(audio) // 1280):
        proc.stdin.write(audio[n * 1280 : (n + 1) * 1280].tobytes())
        proc.stdin.flush()
        time.sleep(max(0.0, t0 + (n + 1) * 0.08 - time.monotonic()))
    cpu = _cpu_seconds(proc.pid) - cpu0
    wall = time.monotonic() - t0
    return round(100 * cpu / wall, 2), wall


def bench_wake_only(seconds: float) -> dict[str, object]:
    """Baseline: the wake detector alone on the same quiet room, in this process."""
    from heymusic.config import load_settings
    from heymusic.wake.detector import WakeDetector

    detector = WakeDetector(load_settings())
    room = quiet_room(seconds)
    start = time.process_time()
    n = int(seconds / 0.08)
    for i in range(n):
        detector.process(room[i * 1280 : (i + 1) * 1280], (i + 1) * 0.08)
    cpu = time.process_time() - start
    return {"wake_only_cpu_percent_of_realtime": round(100 * cpu / seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=24)
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="0: commands only, no idle CPU part"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wake", help="wake phrase to speak (default: from the wake model name)")
    args = parser.parse_args()
    from heymusic.config import load_settings
    from heymusic.text import wake_phrases_from_models

    models = [Path(m).stem for m in load_settings().wake.models]
    wake_phrase = args.wake or wake_phrases_from_models(models)[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result: dict[str, object] = {
            "wake_phrase": wake_phrase,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        result.update(bench_commands(args, work, wake_phrase))
        if args.idle_seconds > 0:
            result.update(bench_idle(args.idle_seconds, work))
            result["baseline"] = bench_wake_only(args.idle_seconds)
    latency = result["speech_end_to_player_ms"]
    assert isinstance(latency, dict)
    result["targets"] = TARGETS
    result["meets_targets"] = {
        "speech_end_to_player_p50": (latency["p50"] or 1e9)
        <= TARGETS["speech_end_to_player_p50_ms"],
        "speech_end_to_player_p95": (latency["p95"] or 1e9)
        <= TARGETS["speech_end_to_player_p95_ms"],
    }
    if args.idle_seconds > 0:
        result["meets_targets"].update(  # type: ignore[attr-defined]
            {
                "idle_cpu": float(result["idle_cpu_percent"]) <= TARGETS["idle_cpu_percent"],  # type: ignore[arg-type]
                "talking_cpu": float(result["talking_cpu_percent"])  # type: ignore[arg-type]
                <= TARGETS["idle_cpu_percent"],
                "run_rss": float(result["run_rss_mb"]) <= TARGETS["rss_mb"],  # type: ignore[arg-type]
            }
        )
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
