"""Home Assistant's conversation agent: heymusic as a Wyoming handle service, driven by a
real Wyoming client over 127.0.0.1 exactly as HA's integration drives it (describe on one
connection; then per request one connection: transcript, read until handled/not-handled)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info

from heymusic.config import Settings, data_dir
from heymusic.players.log import LogPlayer
from tests.conftest import TEST_SEED
from tests.rooms_hub import HubThread, free_port
from tests.test_faults import seed_catalog, write_config

PHRASES = tomllib.loads((data_dir() / "intents.toml").read_text())["intents"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubThread, int, list]]:
    tmp = tmp_path_factory.mktemp("conversation")
    mp = pytest.MonkeyPatch()
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        mp.setenv(var, str(tmp / var.lower()))
    port = free_port()
    config = write_config(tmp, f"[rooms]\nconversation_port = {port}\n")
    songs = seed_catalog(tmp / "songs.csv", seed=len(str(tmp)))  # what write_config wrote
    hub = HubThread(config)
    yield hub, port, songs
    hub.close()
    mp.undo()


async def _ask(port: int, text: str, context: dict | None = None) -> Event:
    """One request as HA's WyomingConversationEntity.async_process makes it."""
    context = context or {"conversation_id": f"{random.getrandbits(64):x}"}
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcript(text, context=context, language="en").event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 30)
            assert event is not None, "connection lost"
            if Handled.is_type(event.type) or NotHandled.is_type(event.type):
                return event


def test_describe_advertises_a_handle_program_as_ha_expects(served) -> None:
    _, port, _ = served

    async def describe() -> Info:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 10)
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    info = asyncio.run(describe())
    handle = [p for p in info.handle if p.installed]  # HA takes the first installed one
    assert handle and handle[0].name == "heymusic"
    assert any("en" in m.languages for m in handle[0].models if m.installed)
    assert not info.asr and not info.wake and info.satellite is None


def test_random_requests_play_on_the_default_player(served) -> None:
    hub, port, songs = served
    player = hub.hub.rooms["home"].pipeline.player
    assert isinstance(player, LogPlayer)
    rng = random.Random(TEST_SEED)
    # a name and artist the catalog holds more than once (a single and its album's) is
    # either of them
    song_of = {s.track_id: (s.name, s.artist) for s in hub.home.recommender.catalog.tracks}
    for name, artist in rng.sample(songs, 3):
        prefix = rng.choice(["play", "put on", "i want to hear", "let's listen to"])
        before = len(player.commands)
        answer = asyncio.run(_ask(port, f"{prefix} {name} by {artist}"))
        assert Handled.is_type(answer.type), answer
        assert name.lower() in answer.data["text"].lower()
        assert answer.data["context"]["room"] == "home"
        plays = [arg for action, arg in player.commands[before:] if action == "play"]
        assert plays and song_of[plays[0][0]] == (name, artist)
    for intent, action in (("pause", "pause"), ("skip", "next"), ("resume", "resume")):
        phrase = rng.choice(PHRASES[intent]["phrases"])
        before = len(player.commands)
        answer = asyncio.run(_ask(port, phrase))
        assert Handled.is_type(answer.type), (phrase, answer)
        assert [a for a, _ in player.commands[before:]] == [action], phrase
    level = rng.randrange(10, 90)
    answer = asyncio.run(_ask(port, f"set the volume to {level} percent"))
    assert Handled.is_type(answer.type) and player.volume == level


def test_a_song_named_without_a_verb_plays(served) -> None:
    """ "Someone You Loved by Lewis Capaldi", no "play" (or a misheard one): the song, not the
    "sorry" cue; the same words without a catalog artist after "by" are not a request."""
    hub, port, songs = served
    player = hub.hub.rooms["home"].pipeline.player
    rng = random.Random(TEST_SEED + 3)
    # a name and artist the catalog holds more than once (a single and its album's) is
    # either of them
    song_of = {s.track_id: (s.name, s.artist) for s in hub.home.recommender.catalog.tracks}
    for name, artist in rng.sample(songs, 3):
        lead = rng.choice(["", "pay ", "okay ", "um "])
        before = len(player.commands)
        answer = asyncio.run(_ask(port, f"{lead}{name} by {artist}"))
        assert Handled.is_type(answer.type), (name, artist, answer)
        plays = [arg for action, arg in player.commands[before:] if action == "play"]
        assert plays and song_of[plays[0][0]] == (name, artist), (name, artist)
    name, _ = rng.choice(songs)
    answer = asyncio.run(_ask(port, f"{name} by the window"))
    assert NotHandled.is_type(answer.type), (name, answer)


def test_what_is_not_music_is_not_handled(served) -> None:
    _, port, _ = served
    rng = random.Random(TEST_SEED + 1)
    words = ["garage", "kettle", "lights", "thermostat", "window", "blinds", "oven"]
    text = f"{rng.choice(['open', 'close', 'dim'])} the {rng.choice(words)}"
    answer = asyncio.run(_ask(port, text))
    assert NotHandled.is_type(answer.type) and answer.data["text"]


def test_a_20_kB_request_is_refused_at_once_in_one_line(served, caplog) -> None:
    hub, port, _ = served
    rng = random.Random(TEST_SEED + 2)
    text = "play " + " ".join(rng.choice(["jazz", "rock", "mellow", "loud"]) for _ in range(4000))
    assert len(text) > 20_000
    before = len(hub.events)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        answer = asyncio.run(_ask(port, text))
    assert time.monotonic() - start < 2.0
    assert NotHandled.is_type(answer.type) and "too long" in answer.data["text"]
    assert len([r for r in caplog.records if "refused a request" in r.getMessage()]) == 1
    assert len(hub.events) == before  # nothing reached the pipeline


def test_a_frame_over_the_limit_drops_that_peer_and_the_service_goes_on(served, caplog) -> None:
    _, port, songs = served

    async def oversized() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        header = {"type": "transcript", "payload_length": 1 << 30}
        writer.write(json.dumps(header).encode() + b"\n")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 5)  # closed by the server
        writer.close()
        return rest

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(oversized()) == b""
        garbage = asyncio.run(_raw(port, b"\x00\xffnot wyoming\n"))
    assert garbage == b""
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 2 and "over the limit" in lines[0], lines
    name, artist = songs[0]
    assert Handled.is_type(asyncio.run(_ask(port, f"play {name} by {artist}")).type)


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return rest


def test_services_bind_to_localhost_by_default() -> None:
    assert Settings().rooms.host == "127.0.0.1"
    assert not Settings().rooms.enabled  # `heymusic run` stays the one-microphone daemon


def test_heymusic_run_with_a_rooms_section_serves_home_assistant(tmp_path: Path) -> None:
    """`heymusic run` itself: READY, a request answered with its events as JSON lines
    (with the room), and SIGTERM ends it with status 0."""
    import os
    import signal
    import subprocess

    from tests.conftest import PROJECT_DIR

    port = free_port()
    config = write_config(tmp_path, f"[rooms]\nconversation_port = {port}\n")
    songs = seed_catalog(tmp_path / "songs.csv", seed=len(str(tmp_path)))
    proc = subprocess.Popen(
        [str(PROJECT_DIR / ".venv/bin/heymusic"), "--config", str(config), "run", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR / "daemon")},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                asyncio.run(asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1))
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.5)
        name, artist = random.Random(TEST_SEED).choice(songs)
        answer = asyncio.run(_ask(port, f"play {name} by {artist}"))
        assert Handled.is_type(answer.type), answer
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    plays = [e for e in events if e["type"] == "player" and e["action"] == "play"]
    assert plays and plays[0]["room"] == "home"


def test_a_room_with_a_spotify_device_plays_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[rooms] spotify_devices: a request for the bedroom plays on the Spotify device named
    for it (not the active one), through a real HTTP stand-in for the Web API."""
    from heymusic.players.spotify_auth import TokenCache
    from tests.spotify_stub import SpotifyStub

    stub = SpotifyStub()
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", stub.api_base)
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_ACCOUNTS_BASE", stub.base)
    token = stub.token()
    token["expires_at"] = int(time.time()) + 3600
    TokenCache().save_token_to_cache(token)
    port = free_port()
    rooms = (
        f'[rooms]\nconversation_port = {port}\nsatellites = ["bedroom=tcp://127.0.0.1:{free_port()}"]\n'
        'spotify_devices = ["bedroom=Phone"]\n[spotify]\nclient_id = "test-client"\n'
    )
    config = write_config(tmp_path, rooms)
    songs = seed_catalog(tmp_path / "songs.csv", seed=len(str(tmp_path)))
    hub = HubThread(config)
    try:
        name, artist = random.Random(TEST_SEED).choice(songs)
        context = {"conversation_id": "1", "room": "bedroom"}
        answer = asyncio.run(_ask(port, f"play {name} by {artist}", context))
        assert Handled.is_type(answer.type) and answer.data["context"]["room"] == "bedroom"
        player = hub.hub.rooms["bedroom"].pipeline.player
        assert player.name == "auto"
        deadline = time.monotonic() + 10
        while "PUT /me/player/play" not in stub.calls() and time.monotonic() < deadline:
            time.sleep(0.05)
        plays = [r for r in stub.requests if r.call == "PUT /me/player/play"]
        assert plays and plays[0].query.get("device_id") == "dev-phone", stub.calls()
        assert not isinstance(hub.hub.rooms["home"].pipeline.player, type(player))
    finally:
        hub.close()
        stub.close()


def test_the_asr_service_transcribes_and_refuses_over_30_s(tmp_path: Path, synth, caplog) -> None:
    """heymusic's Whisper as Home Assistant's Wyoming speech-to-text: transcribe, audio
    start/chunks/stop, one transcript; a request over 30 s is refused in one line."""
    import numpy as np
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop

    from tests.conftest import read_pcm

    port = free_port()
    hub = HubThread(write_config(tmp_path, f"[rooms]\nasr_port = {port}\n"))
    rng = random.Random(TEST_SEED)
    genre = rng.choice(["jazz", "rock", "blues", "country"])
    audio = read_pcm(synth(f"play some {genre}"))

    async def transcribe(samples: np.ndarray) -> Event | None:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(16000, 2, 1).event())
            for at in range(0, len(samples), 4096):
                chunk = samples[at : at + 4096].astype("<i2").tobytes()
                await client.write_event(AudioChunk(16000, 2, 1, chunk).event())
            await client.write_event(AudioStop().event())
            return await asyncio.wait_for(client.read_event(), 60)

    try:
        answer = asyncio.run(transcribe(audio))
        assert answer is not None and Transcript.is_type(answer.type), answer
        assert genre in Transcript.from_event(answer).text.lower()
        with caplog.at_level(logging.WARNING):
            refused = asyncio.run(transcribe(np.tile(audio, int(31 * 16000 / len(audio)) + 1)))
        assert refused is not None and refused.type == "error", refused
        assert len([r for r in caplog.records if "over 30 s" in r.getMessage()]) == 1
    finally:
        hub.close()


def test_odd_requests_get_one_answer_each_and_the_service_goes_on(served) -> None:
    """A transcript without text, with text that is not a string, with a context that is
    not an object: each is answered not-handled; then a real request is handled."""
    _, port, songs = served

    async def raw_transcript(data: dict) -> Event:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Event("transcript", data))
            event = await asyncio.wait_for(client.read_event(), 10)
            assert event is not None
            return event

    for data in ({}, {"text": 42}, {"text": "   "}, {"text": ["play"], "context": "kitchen"}):
        assert NotHandled.is_type(asyncio.run(raw_transcript(data)).type), data
    name, artist = songs[1]
    assert Handled.is_type(asyncio.run(_ask(port, f"play {name} by {artist}")).type)
