"""End to end: `heymusic simulate` on spoken "play some jazz" then "skip", with each player.

Preview clips come from a local HTTP server and Spotify from the recording
stand-in, so the test checks the calls each player makes, in order.
"""

from __future__ import annotations

import csv
import json
import random
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.players.spotify_auth import TokenCache
from tests.conftest import SAMPLE_RATE, Synth, read_pcm
from tests.local_http import LocalHTTPServer
from tests.spotify_stub import SpotifyStub

GENRES = {
    "jazz": ["blue", "smoke", "velvet", "brass"],
    "rock": ["thunder", "steel", "road"],
    "classical": ["sonata", "nocturne", "prelude"],
    "country": ["dust", "prairie", "barn"],
}


class _ClipServer:
    """Answers every /<id>.wav with the same 10 s clip and records which ids were asked for."""

    def __init__(self, clip: bytes) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path.strip("/").removesuffix(".wav"))
                self.send_response(200)
                self.send_header("Content-Length", str(len(clip)))
                self.end_headers()
                self.wfile.write(clip)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture(scope="module")
def clip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ClipServer]:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    t = np.arange(10 * 22050) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    server = _ClipServer(path.read_bytes())
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def commands(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "commands.wav"
    audio = [read_pcm(synth(text)) for text in ("hey jarvis, play some jazz", "hey jarvis, skip")]
    sf.write(out, np.concatenate(audio), SAMPLE_RATE, subtype="PCM_16")
    return out


def _catalog(path: Path, base: str, seed: int) -> None:
    """A small seed catalog with random titles and artists and 22-character Spotify ids."""
    rng = random.Random(seed)
    ids = string.ascii_letters + string.digits
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["track_id", "name", "artist", "spotify_preview_url", "genre", "tags"])
        for genre, words in GENRES.items():
            for _ in range(6):
                track_id = "".join(rng.choices(ids, k=22))
                name = f"{rng.choice(words).title()} {rng.choice(['Hour', 'Line', 'Walk', 'Rain'])}"
                artist = f"{rng.choice(['The', 'Los', 'Big'])} {rng.choice(words).title()}s"
                writer.writerow([track_id, name, artist, f"{base}{track_id}.wav", genre, genre])


def _simulate(
    tmp_path: Path, commands: Path, player: str, base: str, audio_out: str = "null"
) -> list[dict]:
    _catalog(tmp_path / "seed.csv", base, seed=len(player))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[catalog]\nsource = "{tmp_path / "seed.csv"}"\n'
        '[wake]\nmodels = ["hey_jarvis_v0.1.onnx"]\n'  # pinned: independent of the default
        '[player]\ntts = false\n[spotify]\nclient_id = "test-client"\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "heymusic",
            "--config",
            str(config),
            "simulate",
            str(commands),
            "--json",
            "--player",
            player,
            "--audio-out",
            audio_out,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _results_and_actions(events: list[dict]) -> tuple[list[str], list[str]]:
    results = [e for e in events if e["type"] == "results"]
    assert len(results) == 1, events
    actions = [e["action"] for e in events if e["type"] == "player"]
    assert actions == ["play", "next"], events
    return [t["track_id"] for t in results[0]["tracks"]], actions


@pytest.mark.parametrize("player", ["preview", "auto", "log"])
def test_local_players_fetch_first_then_second(
    player: str, tmp_path: Path, commands: Path, clip_server: _ClipServer
) -> None:
    clip_server.requests.clear()
    recording = tmp_path / "heard.wav"
    events = _simulate(tmp_path, commands, player, clip_server.base, str(recording))
    ids, _ = _results_and_actions(events)
    assert len(ids) == 5
    assert [e for e in events if e["type"] in ("error", "notice")] == []
    if player == "log":
        assert clip_server.requests == [] and not recording.exists()
        return
    assert clip_server.requests == ids[:2]
    heard, rate = sf.read(recording, dtype="float32")
    # The clip really went out: several 2048-sample frames peak at its 330 Hz (earcons are
    # 370-990 Hz). How much of it is heard depends on how fast simulate reaches "skip".
    frames = heard[: len(heard) // 2048 * 2048, 0].reshape(-1, 2048)
    loud = np.abs(frames).max(axis=1) > 0.01
    peaks = np.fft.rfftfreq(2048, 1 / rate)[np.abs(np.fft.rfft(frames, axis=1)).argmax(axis=1)]
    assert int((loud & (np.abs(peaks - 330) < 25)).sum()) >= 3
    spectrum = np.abs(np.fft.rfft(heard[:, 0]))
    hz = np.fft.rfftfreq(len(heard), 1 / rate)
    near = np.abs(hz - 330)
    # The served clip is a 330 Hz tone: a sharp peak there, far above the band around it.
    assert spectrum[near < 2].max() > 10 * spectrum[(near > 20) & (near < 60)].max()


def test_spotify_player_calls(
    tmp_path: Path, commands: Path, clip_server: _ClipServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = SpotifyStub()
    try:
        monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", stub.api_base)
        monkeypatch.setenv("HEYMUSIC_SPOTIFY_ACCOUNTS_BASE", stub.base)
        TokenCache().save_token_to_cache({**stub.token(), "expires_at": int(time.time()) + 3600})
        events = _simulate(tmp_path, commands, "spotify", clip_server.base)
    finally:
        stub.close()
    ids, _ = _results_and_actions(events)
    # The second wake ducks the playing music and restores it after "skip".
    assert stub.calls() == [
        "PUT /me/player/play",
        "PUT /me/player/volume",
        "POST /me/player/next",
        "PUT /me/player/volume",
    ]
    play, duck, _, unduck = stub.requests
    assert play.body == {"uris": [f"spotify:track:{i}" for i in ids]}
    assert int(duck.query["volume_percent"]) < int(unduck.query["volume_percent"])
    assert clip_server.requests == []  # Spotify plays on the device, not here
