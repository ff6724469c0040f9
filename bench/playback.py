"""Player command -> first audio sample out of the preview player, over a local HTTP server.

Prints JSON: p50/p95 in ms for "play" (a 30 s mp3 preview and a wav), "next" (skip
to the next preview) and a local file, measured where the player hands the first
sample to its sink, and "play_mp3_device": until a real miniaudio device thread
(null backend) takes it, i.e. including the device's buffering. Compared with a
baseline that only downloads and decodes the first block, and the 300 ms target.

    .venv/bin/python bench/playback.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import miniaudio
import numpy as np
import requests

from heymusic.audio.sink import DEVICE_CHANNELS, DEVICE_RATE, DeviceSink, RecordingSink
from heymusic.config import Settings, load_settings
from heymusic.players.preview import PreviewPlayer
from heymusic.track import Track

TARGET_MS = 300.0


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _make_clips(root: Path) -> None:
    """30 s preview-like clips: a chord with some noise, mp3 at 44.1 kHz stereo and wav."""
    synth = ["synth", "30", "sine", "220", "sine", "277", "sine", "330", "pinknoise"]
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", str(root / "clip.wav"), *synth, "vol", "0.3"],
        check=True,
    )
    subprocess.run(["sox", str(root / "clip.wav"), "-C", "128", str(root / "clip.mp3")], check=True)


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "runs": len(ms),
    }


def _wait_sound(sink: RecordingSink, after: float, timeout: float = 5.0) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        stamp = sink.first_sound_time(after=after)
        if stamp is not None:
            return (stamp - after) * 1000
        time.sleep(0.002)
    raise RuntimeError("no sound within 5 s")


class _TimedDevice(DeviceSink):
    """The real device sink (miniaudio's null backend here: no sound card needed) noting when
    the device thread first takes a non-silent sample: what a speaker would start playing."""

    def __init__(self) -> None:
        self.first_sound: float | None = None
        super().__init__("", backends=[miniaudio.Backend.NULL])

    def _pull(self) -> Generator[bytes, int, None]:
        inner = super()._pull()
        frames = yield next(inner)
        while True:
            out = inner.send(frames)
            if self.first_sound is None and any(out):
                self.first_sound = time.monotonic()
            frames = yield out


def _baseline(url: str) -> float:
    start = time.monotonic()
    data = requests.get(url, timeout=5).content
    next(
        miniaudio.stream_memory(
            data, miniaudio.SampleFormat.SIGNED16, DEVICE_CHANNELS, DEVICE_RATE, DEVICE_RATE // 50
        )
    )
    return (time.monotonic() - start) * 1000


def _device_runs(settings: Settings, track: Track, runs: int) -> list[float]:
    """Command -> the device thread taking the first sample (includes its buffering)."""
    ms = []
    for _ in range(runs):
        sink = _TimedDevice()
        player = PreviewPlayer(settings, sink)
        time.sleep(0.2)
        start = time.monotonic()
        player.play([track])
        end = start + 5
        while sink.first_sound is None and time.monotonic() < end:
            time.sleep(0.002)
        player.close()
        if sink.first_sound is None:
            raise RuntimeError("the device took no sound within 5 s")
        ms.append((sink.first_sound - start) * 1000)
    return ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(root / "state")  # never touch the user's state
        _make_clips(root)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=tmp))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_address[1]}/"
        settings = load_settings(
            Path(tmp) / "absent.toml", overrides={"player": {"tts": False, "radio": False}}
        )
        sink = RecordingSink(DEVICE_RATE, DEVICE_CHANNELS)
        player = PreviewPlayer(settings, sink)
        results: dict[str, list[float]] = {
            "play_mp3": [],
            "play_wav": [],
            "next_mp3": [],
            "play_local_file": [],
            "baseline_mp3": [],
        }
        mp3 = Track("mp3", "Clip", "Bench", preview_url=base + "clip.mp3")
        wav = Track("wav", "Clip", "Bench", preview_url=base + "clip.wav")
        local = Track("local", "Clip", "Bench", path=str(root / "clip.mp3"))
        for _ in range(args.runs):
            for key, tracks in (
                ("play_mp3", [mp3]),
                ("play_wav", [wav]),
                ("play_local_file", [local]),
            ):
                player.stop()
                time.sleep(0.15)
                start = time.monotonic()
                player.play(tracks)
                results[key].append(_wait_sound(sink, start))
            player.play([wav, mp3])
            _wait_sound(sink, time.monotonic())
            time.sleep(0.2)
            start = time.monotonic()
            player.next()
            results["next_mp3"].append(_wait_sound(sink, start))
            results["baseline_mp3"].append(_baseline(mp3.preview_url))
        player.close()
        results["play_mp3_device"] = _device_runs(settings, mp3, args.runs)
        httpd.shutdown()
    report = {name: _percentiles(ms) for name, ms in results.items()}
    worst = max(v["p95"] for k, v in report.items() if not k.startswith("baseline"))
    out = {
        "benchmark": "playback_first_sample_ms",
        "target_ms": TARGET_MS,
        **report,
        "worst_p95_ms": worst,
        "meets_target": worst <= TARGET_MS,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
