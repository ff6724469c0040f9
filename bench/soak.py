"""Soak: the daemon's loop over hours of generated audio, faster than real time; JSON out.

The stream is made on the fly (never stored): quiet room noise, music (Debian
hyperrogue-music), speech without the wake word (espeak-ng reading fortunes), and a
"<wake word>, <command>" every few minutes. It goes through the real `Pipeline` (wake
model on every chunk, VAD, Whisper on the commands, intents, recommender, player) and
samples RSS, open file descriptors and threads as it goes. Pass/fail (in the JSON):
RSS growth after warm-up <= 10 MB, no fd or thread growth, every woken command answered.

    nice -n 10 .venv/bin/python bench/soak.py --hours 8 > soak.json
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
CHUNK = 1280
MUSIC_DIR = Path("/usr/share/hyperrogue/music")
FORTUNES = Path("/usr/share/games/fortunes/computers")
SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "spotify_songs.csv"
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f4"]
CONTROL = ["skip this song", "pause", "resume the music", "volume up", "what's playing", "stop"]
MOODS = ["something mellow", "some upbeat dance music", "rock from the eighties"]


def espeak(text: str, voice: str, out_dir: Path) -> np.ndarray:
    """`text` spoken by espeak-ng at 16 kHz mono int16 (sox resamples)."""
    raw, wav = out_dir / "raw.wav", out_dir / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav)], check=True
    )
    from heymusic.audio.sources import FileSource

    source = FileSource(wav)
    try:
        return np.concatenate(list(source.chunks()))
    finally:
        source.close()


def decode(path: Path, seconds: float) -> np.ndarray:
    """The first `seconds` of an audio file at 16 kHz mono."""
    from heymusic.audio.sources import FileSource

    source = FileSource(path)
    out: list[np.ndarray] = []
    try:
        for chunk in source.chunks():
            out.append(chunk)
            if len(out) * CHUNK >= seconds * RATE:
                break
    finally:
        source.close()
    return np.concatenate(out)


def small_catalog(path: Path, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """A random `n`-song slice of the shared table (temp file); returns (title, artist) pairs."""
    with SHARED_CSV.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if len(r) == len(header)]
    picked = rng.sample(rows, n)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(picked)
    name, artist = header.index("track_name"), header.index("track_artist")
    return [(r[name], r[artist]) for r in picked if r[name].isascii() and len(r[name]) < 30]


@dataclass
class Pools:
    music: list[np.ndarray]
    speech: list[np.ndarray]
    commands: list[tuple[str, np.ndarray]]


def make_pools(wake: str, songs: list[tuple[str, str]], rng: random.Random, tmp: Path) -> Pools:
    music = [decode(p, 40.0) for p in sorted(MUSIC_DIR.glob("*.ogg"))[:4]]
    lines = [
        " ".join(line.split())
        for line in FORTUNES.read_text(errors="replace").split("\n%\n")
        if 40 < len(line) < 200
    ]
    speech = [espeak(text, rng.choice(VOICES), tmp) for text in rng.sample(lines, 10)]
    texts = CONTROL + [f"play {m}" for m in MOODS]
    texts += [f"play {title} by {artist}" for title, artist in rng.sample(songs, 3)]
    commands = [(t, espeak(f"{wake}, {t}", rng.choice(VOICES[:2]), tmp)) for t in texts]
    return Pools(music, speech, commands)


@dataclass
class Planned:
    text: str
    start_s: float
    end_s: float


@dataclass
class Stream:
    """Generates the audio lazily and remembers where it put each command."""

    pools: Pools
    seconds: float
    command_every_s: float
    rng: random.Random
    commands: list[Planned] = field(default_factory=list)
    noise_rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def _noise(self, seconds: float, level: float) -> np.ndarray:
        return self.noise_rng.normal(0, level, int(seconds * RATE)).astype(np.int16)

    def _filler(self) -> np.ndarray:
        kind = self.rng.choice(["silence", "music", "speech", "speech_over_music"])
        if kind == "silence":
            return self._noise(self.rng.uniform(5, 30), 30)
        music = self.rng.choice(self.pools.music)
        start = self.rng.randrange(0, max(1, len(music) - 20 * RATE))
        slice_ = music[start : start + int(self.rng.uniform(10, 20) * RATE)].astype(np.float32)
        if kind == "music":
            return (slice_ * self.rng.uniform(0.2, 0.8)).astype(np.int16)
        speech = self.rng.choice(self.pools.speech).astype(np.float32)
        if kind == "speech":
            return np.concatenate([speech, self._noise(1.0, 30)]).astype(np.int16)
        under = np.resize(slice_, len(speech)) * 0.15
        return np.clip(speech + under, -32768, 32767).astype(np.int16)

    def chunks(self) -> Iterator[np.ndarray]:
        made = 0
        pending = np.zeros(0, dtype=np.int16)
        next_command_s = self.command_every_s
        while made < self.seconds * RATE:
            now_s = (made + len(pending)) / RATE
            if now_s >= next_command_s:
                text, clip = self.rng.choice(self.pools.commands)
                # Quiet room before and after: the command gets its end of speech.
                piece = np.concatenate([self._noise(1.0, 30), clip, self._noise(3.0, 30)])
                self.commands.append(Planned(text, now_s + 1.0, now_s + len(piece) / RATE))
                next_command_s += self.command_every_s
            else:
                piece = self._filler()
                piece = piece[: max(CHUNK, int((next_command_s - now_s) * RATE))]
            pending = np.concatenate([pending, piece])
            whole = len(pending) // CHUNK * CHUNK
            for start in range(0, whole, CHUNK):
                yield pending[start : start + CHUNK]
            made += whole
            pending = pending[whole:].copy()


class FeedTimes:
    """Per-chunk loop times as a fixed histogram (0.1 ms bins up to 10 s): a list of
    hundreds of thousands of floats would itself grow RSS by ~11 MB over 8 h."""

    BIN_MS = 0.1

    def __init__(self) -> None:
        self.counts = np.zeros(100_000, dtype=np.int64)
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[min(int(ms / self.BIN_MS), len(self.counts) - 1)] += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        cum = np.cumsum(self.counts)
        return float(np.searchsorted(cum, q / 100 * cum[-1]) * self.BIN_MS)


def process_sample() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(fields["Threads"]),
        "py_threads": threading.active_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="audio to generate")
    parser.add_argument("--command-every-minutes", type=float, default=3.0)
    parser.add_argument("--warmup-minutes", type=float, default=30.0)
    parser.add_argument("--sample-minutes", type=float, default=5.0)
    parser.add_argument("--player", default="preview", choices=["preview", "log"])
    parser.add_argument("--catalog-size", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="heymusic-soak-"))
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        os.environ[var] = str(tmp / var.lower())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rng = random.Random(args.seed)
    songs = small_catalog(tmp / "songs.csv", args.catalog_size, rng)

    from heymusic.config import load_settings
    from heymusic.service.assembly import build
    from heymusic.text import wake_phrases_from_models

    settings = load_settings(
        overrides={"catalog": {"source": str(tmp / "songs.csv")}, "player": {"tts": False}}
    )
    out = "null" if args.player == "preview" else None
    pipeline = build(settings, args.player, out)
    wake = wake_phrases_from_models(pipeline.wake.model_names)[0]
    stream = Stream(
        make_pools(wake, songs, rng, tmp), args.hours * 3600, args.command_every_minutes * 60, rng
    )

    events: list[dict] = []
    samples: list[dict[str, float]] = []
    feed_ms = FeedTimes()
    next_sample_s = 0.0
    started = time.perf_counter()
    for chunk in stream.chunks():
        t0 = time.perf_counter()
        for event in pipeline.feed(chunk):
            if event.type != "notice":
                events.append(_brief(event.to_dict()))
        feed_ms.add((time.perf_counter() - t0) * 1000.0)
        if pipeline.audio_s >= next_sample_s:
            samples.append({"audio_s": round(pipeline.audio_s, 1), **process_sample()})
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)  # progress
            next_sample_s += args.sample_minutes * 60
    events.extend(_brief(e.to_dict()) for e in pipeline.finish())
    wall_s = time.perf_counter() - started
    samples.append({"audio_s": round(pipeline.audio_s, 1), **process_sample()})
    pipeline.player.close()

    report = summarize(stream.commands, events, samples, feed_ms, args.warmup_minutes * 60)
    report.update(
        hours=round(pipeline.audio_s / 3600, 3),
        wall_s=round(wall_s, 1),
        x_realtime=round(pipeline.audio_s / wall_s, 1),
        player=args.player,
        wake_models=pipeline.wake.model_names,
        seed=args.seed,
    )
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _brief(event: dict) -> dict:
    """Only what the summary needs: keeping whole results events would grow RSS itself."""
    return {k: v for k, v in event.items() if k in ("type", "audio_s", "name", "message")}


def summarize(
    planned: list[Planned],
    events: list[dict],
    samples: list[dict[str, float]],
    feed_ms: FeedTimes,
    warmup_s: float,
) -> dict:
    """Which commands woke the pipeline and got an answer; resource growth after warm-up."""
    woke = answered = 0
    unanswered: list[str] = []
    late_s: list[float] = []
    """Seconds from the end of a command's speech to its answer, when over 2 s."""
    windows = [(p.start_s - 0.5, p.end_s + 1.0) for p in planned]
    for plan, (lo, hi) in zip(planned, windows, strict=True):
        # Up to 12 s after the wake: the recorder's 10 s cap ends even a command it misjudged.
        mine = [e for e in events if lo <= e["audio_s"] <= hi + 12.0]
        if not any(e["type"] == "wake" for e in mine):
            continue
        woke += 1
        answers = [e for e in mine if e["type"] in ("player", "error")] + [
            e for e in mine if e["type"] == "intent" and e["name"] in ("cancel", "unknown")
        ]
        if answers:
            answered += 1
            spoken_end_s = plan.end_s - 3.0  # the clip is followed by 3 s of quiet room
            if answers[0]["audio_s"] - spoken_end_s > 2.0:
                late_s.append(round(answers[0]["audio_s"] - spoken_end_s, 1))
        else:  # what the pipeline did instead, e.g. a timeout when the wake came late
            unanswered.append(f"{plan.text}: {[e['type'] for e in mine]}")
    false_wakes = sum(
        1
        for e in events
        if e["type"] == "wake" and not any(lo <= e["audio_s"] <= hi for lo, hi in windows)
    )
    after = [s for s in samples if s["audio_s"] >= warmup_s] or samples[-1:]
    base = after[0]
    rss_growth = max(s["rss_mb"] for s in after) - base["rss_mb"]
    # Worker threads (player, TTS, onnxruntime) come and go: growth is the later half's
    # peak over the earlier half's, not a transient one at a sample.
    half = max(1, len(after) // 2)
    fd_growth = max(s["fds"] for s in after[half:] or after) - max(s["fds"] for s in after[:half])
    thread_growth = max(s["threads"] for s in after[half:] or after) - max(
        s["threads"] for s in after[:half]
    )
    return {
        "ok": rss_growth <= 10.0 and fd_growth <= 0 and thread_growth <= 0 and answered == woke,
        "commands": len(planned),
        "woke": woke,
        "answered": answered,
        "unanswered": unanswered,
        "answered_late_s": late_s,
        "false_wakes": false_wakes,
        "errors": [e.get("message") for e in events if e["type"] == "error"][:10],
        "rss_mb": {
            "start": round(samples[0]["rss_mb"], 1),
            "after_warmup": round(base["rss_mb"], 1),
            "max_after_warmup": round(max(s["rss_mb"] for s in after), 1),
            "end": round(samples[-1]["rss_mb"], 1),
            "growth_after_warmup": round(rss_growth, 2),
        },
        "fds": {
            "after_warmup": base["fds"],
            "max_after_warmup": max(s["fds"] for s in after),
            "growth": fd_growth,
        },
        "threads": {
            "after_warmup": base["threads"],
            "max_after_warmup": max(s["threads"] for s in after),
            "growth": thread_growth,
        },
        "feed_ms": {
            "p50": round(feed_ms.percentile(50), 2),
            "p99": round(feed_ms.percentile(99), 2),
            "max": round(feed_ms.max_ms, 1),
        },
        "rss_series_mb": [round(s["rss_mb"], 1) for s in samples],
    }


if __name__ == "__main__":
    sys.exit(main())
