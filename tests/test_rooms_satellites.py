"""Satellites: the stock wyoming-satellite (its own venv, a real subprocess) in each room,
heymusic calling it as Home Assistant does. A spoken command in a room is acted on in that
room, and its earcon and music reach that satellite's speaker; a satellite killed and
started again is called again while the other room goes on. Past always-streaming: wake
on the satellite through heymusic's own Wyoming wake service (all three stages), and the
satellite's own VAD; and the wake service alone, driven as a satellite drives it."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.wake import Detect, Detection, NotDetected

from heymusic.events import Event, PlayerCommand, Wake
from tests.conftest import TEST_SEED, Synth, read_pcm
from tests.rooms_hub import HubThread, free_port
from tests.stock_satellite import StockSatellite, satellite_python
from tests.test_faults import WAKE, WAKE_MODEL, seed_catalog, silence, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sat_python() -> Path:
    cache = Path(os.environ.get("HEYMUSIC_TEST_CACHE", Path.home() / ".cache" / "heymusic-tests"))
    return satellite_python(cache)


@pytest.fixture
def satellite(sat_python: Path) -> Iterator[Callable[..., StockSatellite]]:
    """Starts stock satellites (`StockSatellite`'s arguments after its python), each killed
    when the test ends, however it ends: a failure before a test's own `finally` had left
    them running."""
    started: list[StockSatellite] = []

    def start(*args: Any) -> StockSatellite:
        started.append(StockSatellite(sat_python, *args))
        return started[-1]

    yield start
    for sat in started:
        sat.kill()


def spoken(synth: Synth, text: str, path: Path, pause: float = 1.2) -> Path:
    """ "hey jarvis", the pause people leave for the cue, the command: a 16 kHz WAV."""
    wake = read_pcm(synth(WAKE, pad_before=0.3, pad_after=pause))
    said = read_pcm(synth(text, pad_before=0.0, pad_after=2.0))
    sf.write(path, np.concatenate([wake, said, silence(1.0)]), 16000, subtype="PCM_16")
    return path


def music_file(path: Path) -> Path:
    """A song the preview player can play from disk: a loud 440 Hz tone."""
    t = np.arange(int(8 * 22050)) / 22050
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 22050, subtype="PCM_16")
    return path


def played(room: str, track_id: str | None = None):
    def match(r: str, e: Event) -> bool:
        ok = r == room and isinstance(e, PlayerCommand) and e.action == "play"
        return ok and (track_id is None or e.detail == track_id)

    return match


@pytest.fixture
def rooms_config(tmp_path: Path) -> Iterator[tuple[Path, list[tuple[str, str]], dict]]:
    """The catalog's songs whose title is theirs alone (a request for a shared title may
    rightly play either)."""
    song = music_file(tmp_path / "song.wav")
    songs = seed_catalog(tmp_path / "songs.csv", seed=TEST_SEED, local_file=song)
    titles = [name for name, _ in songs]
    yield tmp_path, [s for s in songs if titles.count(s[0]) == 1], {}


def _ids(tmp: Path) -> dict[tuple[str, str], str]:
    import csv

    with (tmp / "songs.csv").open() as f:
        return {(r["name"], r["artist"]): r["track_id"] for r in csv.DictReader(f)}


def _hub(tmp: Path, satellites: dict[str, int], extra: str = "") -> HubThread:
    """The hub for these satellites; `extra`: more [rooms] keys."""
    listed = ", ".join(f'"{room}=tcp://127.0.0.1:{port}"' for room, port in satellites.items())
    rooms = f"[rooms]\nsatellites = [{listed}]\nretry_seconds = 0.5\n{extra}"
    config = write_config(tmp, rooms)
    seed_catalog(tmp / "songs.csv", seed=TEST_SEED, local_file=tmp / "song.wav")  # keep ours
    return HubThread(config, player="log")


def test_a_command_in_a_room_plays_there_and_its_speaker_hears_it(
    satellite: Callable[..., StockSatellite], synth: Synth, rooms_config
) -> None:
    tmp, songs, _ = rooms_config
    rng = random.Random(TEST_SEED)
    name, artist = rng.choice(songs)
    wav = spoken(synth, f"{rng.choice(['play', 'put on'])} {name} by {artist}", tmp / "cmd.wav")
    port = free_port()
    sat = satellite("kitchen", port, wav, tmp)
    hub = _hub(tmp, {"kitchen": port})
    try:
        assert _connected(hub, "kitchen")
        before = sat.sound_bytes()
        sat.go()
        hub.wait_for(lambda r, e: r == "kitchen" and isinstance(e, Wake), timeout=60)
        hub.wait_for(played("kitchen", _ids(tmp)[(name, artist)]), timeout=90)
        _wait(lambda: sat.loudest_since(before) > 8000, 20, "music on the kitchen speaker")
    finally:
        hub.close()
        sat.kill()


def test_two_rooms_one_satellite_killed_and_restarted(
    satellite: Callable[..., StockSatellite], synth: Synth, rooms_config, caplog
) -> None:
    """Both rooms speak at once, each command acted on in its own room; then the bedroom's
    satellite is killed, the kitchen goes on, and the bedroom's comes back and is heard."""
    tmp, songs, _ = rooms_config
    rng = random.Random(TEST_SEED + 1)
    (a_name, a_artist), (b_name, b_artist) = rng.sample(songs, 2)
    kitchen_wav = spoken(synth, f"play {a_name} by {a_artist}", tmp / "kitchen.wav")
    bedroom_wav = spoken(synth, f"put on {b_name} by {b_artist}", tmp / "bedroom.wav")
    ports = {"kitchen": free_port(), "bedroom": free_port()}
    kitchen = satellite("kitchen", ports["kitchen"], kitchen_wav, tmp)
    bedroom = satellite("bedroom", ports["bedroom"], bedroom_wav, tmp)
    ids = _ids(tmp)
    a_id, b_id = ids[(a_name, a_artist)], ids[(b_name, b_artist)]
    with caplog.at_level(logging.INFO, logger="heymusic.rooms.satellite"):
        hub = _hub(tmp, ports)
        try:
            assert _connected(hub, "kitchen") and _connected(hub, "bedroom")
            heard = {sat.name: sat.sound_bytes() for sat in (kitchen, bedroom)}
            kitchen.go()
            bedroom.go()  # at the same time
            hub.wait_for(played("kitchen", a_id), 120)
            hub.wait_for(played("bedroom", b_id), 120)
            _wait(lambda: kitchen.sound_bytes() > heard["kitchen"], 20, "kitchen's speaker")
            _wait(lambda: bedroom.sound_bytes() > heard["bedroom"], 20, "bedroom's speaker")
            bedroom.kill()  # mid-way: the kitchen must not notice
            mark = len(hub.events)
            kitchen.go()
            hub.wait_for(played("kitchen", a_id), 120, after=mark)
            bedroom.start()
            assert _connected(hub, "bedroom")
            mark = len(hub.events)
            bedroom.go()
            hub.wait_for(played("bedroom", b_id), 120, after=mark)
        finally:
            hub.close()
            kitchen.kill()
            bedroom.kill()
    for room, own in (("kitchen", a_id), ("bedroom", b_id)):
        plays = [e for r, e, _ in hub.events if played(room)(r, e)]
        assert {e.detail for e in plays} == {own}, (room, plays)  # each room's own command
    lines = [r.getMessage() for r in caplog.records if "satellite bedroom" in r.getMessage()]
    assert sum("connected at" in line for line in lines) == 2, lines
    assert sum("connection lost" in line or "closed" in line for line in lines) == 1, lines
    assert sum("does not answer" in line for line in lines) <= 1, lines
    kitchen_news = [r for r in caplog.records if "satellite kitchen" in r.getMessage()]
    assert [r.levelno for r in kitchen_news] == [logging.INFO], kitchen_news  # connected, once


def _connected(hub: HubThread, room: str) -> bool:
    """Whether heymusic is connected to the room's satellite within 30 s."""
    import asyncio

    async def connected() -> bool:
        return await asyncio.wait_for(hub.hub.links[room].connected.wait(), 30)

    return bool(hub.call(connected()))


def _wait(check, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def test_doctor_lists_each_satellite_and_whether_it_answers(
    satellite: Callable[..., StockSatellite], synth: Synth, tmp_path: Path
) -> None:
    import subprocess

    from tests.conftest import PROJECT_DIR

    up, down = free_port(), free_port()
    sat = satellite("kitchen", up, synth("play jazz"), tmp_path)
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[rooms]\nsatellites = ["kitchen=tcp://127.0.0.1:{up}", '
            f'"attic=tcp://127.0.0.1:{down}"]\n'
        )
        out = subprocess.run(
            [str(PROJECT_DIR / ".venv/bin/heymusic"), "--config", str(config), "doctor"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        sat.kill()
    kitchen = [line for line in out.splitlines() if " kitchen " in line]
    attic = [line for line in out.splitlines() if " attic " in line]
    assert kitchen[0].startswith("ok") and "answers: kitchen" in kitchen[0], out
    assert attic[0].startswith("FAIL") and "does not answer" in attic[0], out


def test_a_satellite_sending_garbage_is_dropped_in_one_line_and_called_again(
    rooms_config, caplog
) -> None:
    """A peer that describes itself, then sends an oversized frame, then bytes that are not
    Wyoming: each connection is dropped with one line; heymusic keeps calling it."""
    import socket
    import threading

    from wyoming.event import write_event
    from wyoming.info import Attribution, Info, Satellite

    tmp, _, _ = rooms_config
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    calls: list[int] = []
    info = Info(satellite=Satellite("noisy", Attribution("", ""), True, None, None)).event()
    junk = [b'{"type": "audio-chunk", "payload_length": 999999999}\n', b"\x00\xff\xfe garbage\n"]

    def serve() -> None:
        while len(calls) < 3:
            conn, _ = server.accept()
            calls.append(1)
            with conn, conn.makefile("rwb") as f:
                f.readline()  # describe
                write_event(info, f)
                f.readline()  # run-satellite
                f.write(junk[min(len(calls), 2) - 1])
                f.flush()
                f.read()  # until heymusic hangs up

    threading.Thread(target=serve, daemon=True).start()
    with caplog.at_level(logging.INFO, logger="heymusic.rooms.satellite"):
        hub = _hub(tmp, {"attic": port})
        try:
            _wait(lambda: len(calls) >= 3, 30, "three calls")
        finally:
            hub.close()
            server.close()
    lines = [r.getMessage() for r in caplog.records]
    dropped = [line for line in lines if "dropped" in line]
    assert any("over the limit" in line for line in dropped), lines
    assert any("not a Wyoming frame" in line for line in dropped), lines
    assert len(lines) <= 5, lines  # one per change of state, never one per retry


def test_the_stop_ends_a_satellite_link_that_swallowed_its_cancel(
    rooms_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's wait_for can swallow a cancel (gh-86296), and the link then goes on
    calling its satellite: heymusic's stop still ends it within seconds (it had waited on
    the link for ever, and the test's stop timed out after 60 s)."""
    from heymusic.rooms.satellite import SatelliteLink

    swallowed: list[str] = []

    async def run_on(link: SatelliteLink) -> None:  # as a link whose wait_for ate the cancel
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(link.room)

    monkeypatch.setattr(SatelliteLink, "run", run_on)
    tmp, _, _ = rooms_config
    hub = _hub(tmp, {"attic": free_port()})
    started = time.monotonic()
    hub.close()
    assert swallowed == ["attic"] and time.monotonic() - started < 5


async def _detect(port: int, audio: np.ndarray) -> list[Event]:
    """Stream `audio` to the wake service like a satellite: detect, audio, stop."""
    answers: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=[WAKE_MODEL.removesuffix(".onnx")]).event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        for start in range(0, len(audio), 1024):
            block = audio[start : start + 1024].astype("<i2").tobytes()
            await client.write_event(AudioChunk(16000, 2, 1, block).event())
        await client.write_event(AudioStop().event())
        while True:  # after the stop: a detection (sent as soon as it was heard) or not
            event = await asyncio.wait_for(client.read_event(), 30)
            if event is None:
                break
            answers.append(event)
            if NotDetected.is_type(event.type) or Detection.is_type(event.type):
                break
    return answers


def test_the_wake_service_runs_all_stages_for_a_client(synth: Synth, rooms_config) -> None:
    tmp, _, _ = rooms_config
    port = free_port()
    hub = _hub(tmp, {}, f"wake_port = {port}\n")
    try:

        async def describe() -> Info:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                event = await asyncio.wait_for(client.read_event(), 10)
                assert event is not None
                return Info.from_event(event)

        info = asyncio.run(describe())
        assert info.wake and info.wake[0].models[0].phrase == WAKE
        rng = random.Random(TEST_SEED)
        woken = np.concatenate([silence(1.0), read_pcm(synth(WAKE)), silence(1.5)])
        other = read_pcm(synth(rng.choice(["hey travis", "hey jarred", "play jazz", "hello"])))
        detected = asyncio.run(_detect(port, woken))
        assert any(Detection.is_type(e.type) for e in detected), detected
        assert Detection.from_event(detected[0]).name == WAKE_MODEL.removesuffix(".onnx")
        quiet = asyncio.run(_detect(port, np.concatenate([silence(1.0), other, silence(1.5)])))
        assert [e.type for e in quiet] == ["not-detected"], quiet
    finally:
        hub.close()


@pytest.mark.parametrize("mode", ["wake-uri", "vad"])
def test_a_stock_satellite_in_another_mode_is_acted_on_in_its_room(
    satellite: Callable[..., StockSatellite], synth: Synth, rooms_config, mode: str
) -> None:
    """wake-uri: the satellite sends its mic to heymusic's wake service and streams only
    the command after a detection; vad: it streams once its own VAD hears speech."""
    tmp, songs, _ = rooms_config
    rng = random.Random(TEST_SEED + 3)
    name, artist = rng.choice(songs)
    # with wake on the satellite, what is said before the detection reaches the wake service,
    # not the room: people wait for the satellite's cue (its --awake-wav)
    pause = 2.5 if mode == "wake-uri" else 1.2
    text = f"{rng.choice(['play', 'put on'])} {name} by {artist}"
    wav = spoken(synth, text, tmp / "cmd.wav", pause)
    sat_port, wake_port = free_port(), free_port()
    hub = _hub(tmp, {"porch": sat_port}, f"wake_port = {wake_port}\n")
    extra = (
        ("--wake-uri", f"tcp://127.0.0.1:{wake_port}", "--wake-word-name", "hey_jarvis_v0.1")
        if mode == "wake-uri"
        else ("--vad", "--vad-wake-word-timeout", "12")
    )
    sat = satellite("porch", sat_port, wav, tmp, *extra)
    try:
        assert _connected(hub, "porch")
        before = sat.sound_bytes()
        sat.go()
        hub.wait_for(played("porch", _ids(tmp)[(name, artist)]), timeout=90)
        woken_here = [e for r, e, _ in hub.events if isinstance(e, Wake)]
        assert bool(woken_here) == (mode == "vad")  # wake-uri: the wake service heard it
        assert sat.sound_bytes() > before  # the earcon went to the porch's speaker
    finally:
        hub.close()
        sat.kill()


def test_a_command_naming_rooms_is_answered_there(rooms_config) -> None:
    """From Home Assistant (the home room): "play <song> in the kitchen" plays in the
    kitchen, not at home; "stop the music everywhere" stops every room; a title with "in
    the" in it that names no room stays a request here."""
    from tests.test_rooms_conversation import _ask

    tmp, songs, _ = rooms_config
    rng = random.Random(TEST_SEED + 4)
    ids = _ids(tmp)
    port = free_port()
    rooms = {"kitchen": free_port(), "living_room": free_port()}  # nobody answers: no matter
    hub = _hub(tmp, rooms, f"conversation_port = {port}\n")
    try:
        name, artist = rng.choice(songs)
        room, said = rng.choice([("kitchen", "the kitchen"), ("living_room", "the living room")])
        answer = asyncio.run(_ask(port, f"play {name} by {artist} in {said}"))
        assert answer.type == "handled" and answer.data["text"] == f"OK, in {said}.", answer
        hub.wait_for(played(room, ids[(name, artist)]), timeout=30)
        assert not [
            e
            for r, e, _ in hub.events
            if r == "home" and isinstance(e, PlayerCommand) and e.action == "play"
        ]
        before = len(hub.events)
        answer = asyncio.run(
            _ask(port, rng.choice(["stop the music everywhere", "stop in every room"]))
        )
        assert answer.type == "handled", answer
        for each in ("home", *rooms):
            hub.wait_for(
                lambda r, e, each=each: (
                    r == each and isinstance(e, PlayerCommand) and e.action == "stop"
                ),
                timeout=30,
                after=before,
            )
        answer = asyncio.run(_ask(port, f"play {name} in the morning"))
        assert answer.type == "handled", answer
        assert (
            "morning" not in str(answer.data["context"])
            and answer.data["context"]["room"] == "home"
        )
    finally:
        hub.close()
