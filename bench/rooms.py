"""Rooms at scale: N simulated satellites against one heymusic; prints one JSON object.

    .venv/bin/python bench/rooms.py [--streaming 1,2,4] [--wake 4,8] [--seconds 75] [--seed 0]
                                    [--asr-workers 1,2]

Each simulated satellite is a Wyoming server like wyoming-satellite: heymusic calls it,
sends run-satellite, and it streams 16 kHz audio in real time: a quiet room, with spoken
commands ("hey music, <request>": phrase table, songs from the catalog, free text; several
espeak-ng voices) at random times, each room on its own schedule. In "streaming" mode the
satellite streams all the time and heymusic runs wake, VAD and ASR for every room; in
"wake" mode the satellite heard the wake word itself and streams only the command
(run-pipeline from the ASR stage, as with `--wake-uri`).

Per N: CPU of the heymusic process (percent of one core, over the run), its peak RSS,
end of speech -> player command (wall clock from the last spoken sample of the command sent,
not the synthesizer's silence after it, less the endpointer's silence_seconds, to the player event read from `heymusic run --json`:
so it includes waiting behind other rooms), p50/p95, and missed commands (no player event
for it by the end of the run; an event answers the command whose end is at its audio_s),
each with the events around it. A missed command that was transcribed is "misheard": Whisper
or the parser got it wrong, the commands' business, not the rooms'. One that was not is
played again alone in a room of its own: answered there, the load of the other rooms lost it,
and it counts as "dropped", which the targets want at zero. Also the player event's own latency_ms (speech end found -> command issued,
as bench/latency.py reports it: without the wait in the room's queue) and Whisper's asr_ms.
The first N of each mode is the baseline the others are read against; so is one command
transcribed in-process before and after the runs, and the load average of each run (other
work shares the cores: latency scales with it).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from wyoming.audio import AudioChunk, AudioStop
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, Satellite
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import RunSatellite
from wyoming.server import AsyncEventHandler, AsyncTcpServer

ROOT = Path(__file__).resolve().parents[1]
HEYMUSIC = ROOT / ".venv" / "bin" / "heymusic"
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3"]
FREE_TEXT = ["play something mellow", "play some upbeat rock", "play sad songs", "play some jazz"]
CHUNK = 1024  # samples per chunk, as wyoming-satellite sends them
SILENCE_S = 0.7  # [vad] silence_seconds: the endpointer waits this long by design
VOICED = 500
"""A sample louder than this (about -36 dBFS) is speech, not the synthesizer's silence."""
MATCH_S = 2.0
"""A player event answers the command whose speech ended this close to its audio_s."""
TARGETS = {
    "streaming": {"rooms": 4, "speech_end_to_player_p95_ms": 1500, "dropped": 0},
    "wake": {"rooms": 8, "dropped": 0},
}


def _speak(text: str, voice: str, out: Path) -> np.ndarray:
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True
    )
    data, _ = sf.read(str(out), dtype="int16")
    return np.asarray(data, dtype=np.int16)


def _requests(rng: random.Random, n: int) -> list[str]:
    table = tomllib.loads((ROOT / "data" / "intents.toml").read_text())["intents"]
    control = [rng.choice(table[k]["phrases"]) for k in ("skip", "pause", "resume", "volume_up")]
    with (ROOT.parent / "shared" / "data" / "spotify_songs.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["track_name"].isascii()]
    songs = [f"play {r['track_name']} by {r['track_artist']}" for r in rng.sample(rows, 8)]
    pool = control + songs + FREE_TEXT
    return [rng.choice(pool) for _ in range(n)]


@dataclass(frozen=True)
class Command:
    """One spoken command in a room's timeline: said `at` seconds into the stream."""

    at: float
    text: str
    voice: str
    samples: np.ndarray

    @property
    def tail_s(self) -> float:
        """Seconds of near-silence the synthesizer left after the last word: the speech
        ends that much before the clip does."""
        voiced = np.flatnonzero(np.abs(self.samples.astype(np.int32)) > VOICED)
        return (len(self.samples) - (voiced[-1] + 1 if voiced.size else 0)) / 16000


@dataclass(frozen=True)
class Missed:
    """A command that got no player event, and the room's events around it: what the
    daemon heard and did instead."""

    room: str
    command: Command
    events: list[str]
    transcribed: bool
    """Whisper wrote something for it: heard, then not understood (a recognition miss)."""


class SimSatellite:
    """One room's satellite: a timeline of quiet room and commands, streamed in real time."""

    def __init__(self, name: str, mode: str, clips: list[Command], seed: int):
        self.name, self.mode, self.clips = name, mode, clips
        self.noise = np.random.default_rng(seed)
        self.speech_ends: list[tuple[float, float]] = []
        """(wall-clock time, seconds streamed) when the last spoken sample of each command was
        sent, in the order of `clips`: the room's timeline counts what was streamed, so a player
        event's audio_s says which command it answers."""
        self.streamed = 0
        self.transcripts = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def handler(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AsyncEventHandler:
        sat = self

        class Handler(AsyncEventHandler):
            async def handle_event(self, event: Event) -> bool:
                if Describe.is_type(event.type):
                    info = Info(
                        satellite=Satellite(sat.name, Attribution("", ""), True, None, None)
                    )
                    await self.write_event(info.event())
                elif RunSatellite.is_type(event.type):
                    sat.task = asyncio.get_running_loop().create_task(sat.stream(self))
                elif event.type == "transcript":
                    sat.transcripts.set()
                return True

        return Handler(reader, writer)

    def _quiet(self, n: int) -> np.ndarray:
        return self.noise.normal(0, 30, n).astype(np.int16)

    async def stream(self, handler: AsyncEventHandler) -> None:
        try:
            await self._stream(handler)
        except ConnectionError:
            pass  # heymusic stopped: the run is over

    async def _stream(self, handler: AsyncEventHandler) -> None:
        start, sent = time.monotonic(), 0
        clips = list(self.clips)

        async def send(samples: np.ndarray) -> None:
            nonlocal sent
            for at in range(0, len(samples), CHUNK):
                block = samples[at : at + CHUNK]
                await handler.write_event(AudioChunk(16000, 2, 1, block.tobytes()).event())
                sent += len(block)
                self.streamed += len(block)
                await asyncio.sleep(max(0.0, start + sent / 16000 - time.monotonic()))

        if self.mode == "wake":
            await handler.write_event(RunPipeline(PipelineStage.WAKE, PipelineStage.TTS).event())
        while clips:
            if sent / 16000 < clips[0].at:
                if self.mode == "streaming":
                    await send(self._quiet(CHUNK))
                else:  # not streaming until the wake word: keep the clock
                    await asyncio.sleep(CHUNK / 16000)
                    sent += CHUNK
                continue
            command = clips.pop(0)
            if self.mode == "wake":
                self.transcripts.clear()
                await handler.write_event(RunPipeline(PipelineStage.ASR, PipelineStage.TTS).event())
            await send(command.samples)
            self.speech_ends.append(
                (time.monotonic() - command.tail_s, self.streamed / 16000 - command.tail_s)
            )
            if self.mode == "wake":  # stream until heymusic says the command is done
                deadline = time.monotonic() + 12
                while not self.transcripts.is_set() and time.monotonic() < deadline:
                    await send(self._quiet(CHUNK))
                await handler.write_event(AudioStop().event())
        while True:
            await send(self._quiet(CHUNK)) if self.mode == "streaming" else await asyncio.sleep(1)


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in ticks of 10 ms


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _brief(event: dict) -> str:
    """One event as a short line: its type, time and what it says."""
    said = {k: v for k, v in event.items() if k not in ("type", "audio_s", "room", "tracks")}
    return f"{event['audio_s']:.1f} {event['type']} {json.dumps(said, ensure_ascii=False)}"


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q))) if values else None


def run_rooms(
    mode: str, n: int, workers: int | None, args: argparse.Namespace, work: Path
) -> dict[str, object]:
    """One run of `n` rooms; `workers`: [asr] workers (None: heymusic's own choice).

    Each command missed here is played again afterwards in one room of its own, one at a
    time: one never transcribed here but answered alone was lost to the load of the other
    rooms ("dropped"); one transcribed and not acted on was misheard (the commands'
    business: alone it may be heard another way, as the stream is cut elsewhere)."""
    rng = random.Random(f"{args.seed}-{mode}-{n}")  # the same commands for every `workers`
    wake = "" if mode == "wake" else "hey music, "
    sats = []
    for i in range(n):
        times, t = [], rng.uniform(3, 10)
        while t < args.seconds - 15:  # a command every 15-25 s per room
            times.append(t)
            t += rng.uniform(15, 25)
        texts = _requests(rng, len(times))
        commands = []
        for k, (at, text) in enumerate(zip(times, texts, strict=True)):
            voice = rng.choice(VOICES)
            clip = _speak(wake + text, voice, work / f"{mode}{n}-{i}-{k}.wav")
            commands.append(Command(at, text, voice, clip))
        sats.append(SimSatellite(f"room{i}", mode, commands, seed=i))
    result, missed = _serve(mode, sats, workers, args.seconds, work / f"{mode}{n}-{workers}")
    alone_missed: list[Missed] = []
    if missed:
        alone = [
            Command(3.0 + 15.0 * k, m.command.text, m.command.voice, m.command.samples)
            for k, m in enumerate(missed)
        ]
        sat = SimSatellite("alone", mode, alone, seed=n)
        seconds = alone[-1].at + 15.0
        _, alone_missed = _serve(mode, [sat], workers, seconds, work / f"{mode}{n}-alone")
    answered_alone = {(m.command.text, m.command.voice) for m in missed} - {
        (m.command.text, m.command.voice) for m in alone_missed
    }
    report = [
        {
            "room": m.room,
            "said": m.command.text,
            "voice": m.command.voice,
            "events": m.events,
            "transcribed": m.transcribed,
            "answered_alone": (m.command.text, m.command.voice) in answered_alone,
        }
        for m in missed
    ]
    result["misheard"] = sum(bool(r["transcribed"]) for r in report)
    result["dropped"] = sum(not r["transcribed"] and bool(r["answered_alone"]) for r in report)
    result["missed_commands"] = report
    return result


def _serve(
    mode: str, sats: list[SimSatellite], workers: int | None, seconds: float, stem: Path
) -> tuple[dict[str, object], list[Missed]]:
    """Serve `sats` to one `heymusic run` for `seconds`: the run's figures, and the commands
    that got no player event."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    ports = []
    for sat in sats:
        server = AsyncTcpServer("127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(server.start(sat.handler), loop).result()
        assert server._server is not None
        ports.append(server._server.sockets[0].getsockname()[1])
    listed = ", ".join(f'"{s.name}=tcp://127.0.0.1:{p}"' for s, p in zip(sats, ports, strict=True))
    config = stem.with_suffix(".toml")
    asr = "" if workers is None else f"[asr]\nworkers = {workers}\n"
    config.write_text(
        f"log_transcripts = true\n[player]\ntts = false\n{asr}[rooms]\nsatellites = [{listed}]\n"
    )
    log_path = stem.with_suffix(".log")
    stderr = log_path.open("w")
    proc = subprocess.Popen(
        [str(HEYMUSIC), "--config", str(config), "run", "--json", "--player", "log"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    players: list[tuple[str, float, dict]] = []
    events: list[tuple[str, dict]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            events.append((event.get("room", ""), event))
            if event["type"] == "player" and event.get("action") != "say":
                players.append((event.get("room", ""), time.monotonic(), event))

    threading.Thread(target=read, daemon=True).start()
    cpu0, t0 = None, 0.0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and cpu0 is None:  # models loaded: heymusic called in
        if any("connected at" in line for line in log_path.read_text().splitlines()):
            cpu0, t0 = _proc_cpu_s(proc.pid), time.monotonic()
        time.sleep(0.2)
    time.sleep(seconds)
    cpu = (_proc_cpu_s(proc.pid) - (cpu0 or 0.0)) / (time.monotonic() - t0) * 100
    peak = _status_mb(proc.pid, "VmHWM")
    proc.terminate()
    try:
        stop_s: float | None = time.monotonic()
        proc.wait(90)
        stop_s = round(time.monotonic() - (stop_s or 0.0), 1)
    except subprocess.TimeoutExpired:
        proc.kill()
        stop_s = None
    for sat in sats:
        if sat.task is not None:
            loop.call_soon_threadsafe(sat.task.cancel)
    time.sleep(0.2)
    loop.call_soon_threadsafe(loop.stop)
    latencies: list[float] = []
    in_pipeline: list[float] = []
    missed: list[Missed] = []
    for sat in sats:
        for command, (end, position) in zip(sat.clips, sat.speech_ends, strict=False):

            def near(room: str, event: dict, name: str = sat.name, at: float = position) -> bool:
                return room == name and abs(event["audio_s"] - at) < MATCH_S

            answered = [(t, e) for room, t, e in players if near(room, e)]
            if answered:
                latencies.append((answered[0][0] - end - SILENCE_S) * 1000.0)
                in_pipeline.append(answered[0][1]["latency_ms"])
                continue
            around = [
                _brief(e)
                for room, e in events
                if room == sat.name and position - 8.0 < e["audio_s"] < position + MATCH_S
            ]
            transcribed = any(e["type"] == "transcript" and near(room, e) for room, e in events)
            missed.append(Missed(sat.name, command, around, transcribed))
    log = log_path.read_text()
    asr_ms = [e["asr_ms"] for _, e in events if e["type"] == "transcript"]
    result = {
        "mode": mode,
        "rooms": len(sats),
        "commands": sum(len(s.speech_ends) for s in sats),
        "missed": len(missed),
        "speech_end_to_player_p50_ms": _pct(latencies, 50),
        "speech_end_to_player_p95_ms": _pct(latencies, 95),
        "pipeline_latency_p50_ms": _pct(in_pipeline, 50),
        "pipeline_latency_p95_ms": _pct(in_pipeline, 95),
        "asr_p50_ms": _pct(asr_ms, 50),
        "cpu_percent_of_one_core": round(cpu, 1),
        "peak_rss_mb": peak,
        "audio_dropped_lines": log.count("chunks dropped"),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "stop_seconds": stop_s,
    }
    return result, missed


def whisper_baseline(work: Path) -> float:
    """One command transcribed in this process, nothing else running in it: how fast this
    machine's cores are right now (other work shares them), to read the runs against."""
    from heymusic.config import load_settings
    from heymusic.speech.asr import Transcriber

    clip = _speak("play something mellow for a rainy evening", "en-us", work / "baseline.wav")
    transcriber = Transcriber(load_settings())
    transcriber.transcribe(clip)  # warm up
    start = time.perf_counter()
    transcriber.transcribe(clip)
    return round((time.perf_counter() - start) * 1000.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streaming", default="1,2,4", help="room counts, always streaming")
    parser.add_argument("--wake", default="4,8", help="room counts, wake on the satellite")
    parser.add_argument("--seconds", type=float, default=75.0, help="per room count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--asr-workers",
        default="",
        help="[asr] workers values to run each room count with, e.g. 1,2 (default: heymusic's)",
    )
    args = parser.parse_args()
    workers_tried = [int(w) for w in args.asr_workers.split(",") if w] or [None]
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = {"whisper_one_command_ms_before": whisper_baseline(Path(tmp))}
        for mode, counts in (("streaming", args.streaming), ("wake", args.wake)):
            for n in (int(c) for c in counts.split(",") if c):
                for workers in workers_tried:
                    runs.append(
                        {**run_rooms(mode, n, workers, args, Path(tmp)), "asr_workers": workers}
                    )
                    print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        baseline["whisper_one_command_ms_after"] = whisper_baseline(Path(tmp))
    verdict = {}
    for mode, target in TARGETS.items():
        at = [r for r in runs if r["mode"] == mode and r["rooms"] == target["rooms"]]
        if at:
            last = at[-1]  # with several `--asr-workers` values, the last one's run
            p95 = last["speech_end_to_player_p95_ms"]
            limit = target.get("speech_end_to_player_p95_ms")
            verdict[mode] = bool(
                last["dropped"] == target["dropped"] and (limit is None or (p95 or 1e9) <= limit)
            )
    out = {"baseline": baseline, "runs": runs, "targets": TARGETS, "met": verdict}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
