"""Every Web API call the Spotify player makes, validated by Prism against Spotify's OpenAPI."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from heymusic.config import load_settings
from heymusic.players.spotify import BUSY, PREMIUM, SpotifyApi, SpotifyPlayer
from heymusic.players.spotify_auth import SCOPES, TokenCache
from heymusic.track import Track
from tests.test_spotify_player import _tracks

PROJECT_DIR = Path(__file__).resolve().parents[1]
PRISM = PROJECT_DIR / ".tools" / "node_modules" / ".bin" / "prism"
SPEC = PROJECT_DIR.parent / "shared" / "spotify" / "spotify-web-api.openapi.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PRISM.exists():
        pytest.fail(f"{PRISM} missing: run 'make deps-test' (installs @stoplight/prism-cli)")
    if not SPEC.exists():
        pytest.fail(f"{SPEC} missing: put the shared folder beside the checkout")
    port = _free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(
                    base + "me/player/devices", timeout=1, headers={"Authorization": "Bearer x"}
                )
                break
            except requests.ConnectionError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "Prism did not start in 60 s"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _player(
    base: str, monkeypatch: pytest.MonkeyPatch, prefer: str = "", **spotify: object
) -> tuple[SpotifyPlayer, list[str], list[tuple[str, str, int, str]]]:
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", base)
    settings = load_settings(
        overrides={"spotify": {"client_id": "c", **spotify}, "player": {"tts": False}}
    )
    TokenCache().save_token_to_cache(
        {
            "access_token": "a",
            "refresh_token": "r",
            "scope": SCOPES,
            "expires_at": int(time.time()) + 3600,
        }
    )
    seen: list[tuple[str, str, int, str]] = []
    session = requests.Session()
    if prefer:
        session.headers["Prefer"] = prefer  # Prism: answer with this status

    def record(resp: requests.Response, *args: object, **kwargs: object) -> None:
        seen.append(
            (resp.request.method or "", resp.request.path_url, resp.status_code, resp.text[:300])
        )

    session.hooks["response"].append(record)
    messages: list[str] = []

    def more_like(
        track: Track, k: int | None = None, exclude: object = ()
    ) -> list[tuple[Track, float]]:
        return [(t, 0.5) for t in _tracks(2, seed=3)]

    player = SpotifyPlayer(
        settings, messages.append, more_like, api=SpotifyApi(settings, session=session)
    )
    return player, messages, seen


@pytest.mark.parametrize("mode", ["play", "queue"])
def test_every_voice_command_passes_validation(
    prism: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    import heymusic.players.spotify as spotify

    monkeypatch.setattr(spotify, "POLL_SECONDS", 0.3)  # the radio's "what plays now?" too
    # The queue-mode run also names its device: Prism's example device is "Kitchen speaker".
    device = "kitchen" if mode == "queue" else ""
    player, messages, seen = _player(prism, monkeypatch, mode=mode, device=device)
    player.play(_tracks())  # "play some jazz"
    time.sleep(1.0)
    player.duck()  # wake while playing ...
    player.next()  # ... "skip"
    player.unduck()
    player.previous()
    player.restart()  # "start over"
    player.repeat(True)  # "repeat this song"
    player.repeat(False)
    player.pause()
    player.resume()
    player.set_volume(30)  # "volume 30"
    player.change_volume(10)  # "louder"
    player.change_volume(-10)  # "quieter"
    player.enqueue(_tracks(2, seed=5))
    for _ in range(6):  # skip to the last one: the radio queues more
        player.next()
    player.stop()
    assert player.wait_idle(30)
    player.close()
    calls = {f"{m} {p.split('?')[0]}" for m, p, _, _ in seen}
    assert {
        "GET /me/player/currently-playing",
        "POST /me/player/next",
        "POST /me/player/previous",
        "PUT /me/player/seek",
        "PUT /me/player/repeat",
        "PUT /me/player/pause",
        "PUT /me/player/play",
        "PUT /me/player/volume",
        "POST /me/player/queue",
    } <= calls
    assert ("GET /me/player/devices" in calls) == (mode == "queue")  # lookup by name only
    bad = [s for s in seen if not 200 <= s[2] < 300]
    assert bad == [] and messages == []


@pytest.mark.parametrize(("prefer", "line"), [("code=403", PREMIUM), ("code=429", BUSY)])
def test_forced_errors_are_reported(
    prism: str, monkeypatch: pytest.MonkeyPatch, prefer: str, line: str
) -> None:
    player, messages, seen = _player(prism, monkeypatch, prefer=prefer)
    start = time.monotonic()
    player.play(_tracks())
    assert player.wait_idle(10)
    player.close()
    assert time.monotonic() - start < 3.5
    assert messages == [line]
    assert seen and all(s[2] == int(prefer[-3:]) for s in seen)


def test_seeding_a_profile_reads_saved_and_top_tracks(
    prism: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`heymusic spotify seed`: both calls pass validation, the catalog's songs among them
    become the profile's likes; an older login is told how to grant the new scopes."""
    import csv
    import random

    from heymusic.cli import main
    from heymusic.history.store import read_events, reading
    from tests.conftest import TEST_SEED

    auth = {"Authorization": "Bearer x"}
    saved = requests.get(f"{prism}me/tracks?limit=50&offset=0", headers=auth, timeout=10).json()
    top = requests.get(f"{prism}me/top/tracks?limit=50", headers=auth, timeout=10).json()
    examples = [i["track"] for i in saved["items"]] + list(top["items"])
    assert examples
    rng = random.Random(TEST_SEED)
    catalog = tmp_path / "songs.csv"
    with catalog.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["track_id", "name", "artist", "genre", "year"])
        for t in examples:
            writer.writerow([t["id"], t["name"], t["artists"][0]["name"], "pop", 2020])
        for i in range(20):
            writer.writerow(
                [f"{rng.getrandbits(88):022x}"[:22], f"other song {i}", "someone", "", ""]
            )
    config = tmp_path / "config.toml"
    config.write_text(f'[catalog]\nsource = "{catalog}"\n[spotify]\nclient_id = "c"\n')
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", prism)
    token = {"access_token": "a", "refresh_token": "r", "expires_at": int(time.time()) + 3600}
    TokenCache().save_token_to_cache({**token, "scope": SCOPES})

    assert main(["--config", str(config), "spotify", "seed", "--profile", "anna"]) == 0
    assert "new likes for profile anna" in capsys.readouterr().out
    with reading() as conn:
        liked = {e.track_id for e in read_events(conn, "anna") if e.kind == "like"}
    assert liked == {t["id"] for t in examples}

    old = "user-read-playback-state user-modify-playback-state"
    TokenCache().save_token_to_cache({**token, "scope": old})
    assert main(["--config", str(config), "spotify", "seed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spotify login" in err[0] and "user-library-read" in err[0]


def test_spotify_tracks_are_matched_by_id_else_by_title_and_artist() -> None:
    import random

    from heymusic.music.catalog import Catalog
    from heymusic.service.spotify_seed import match
    from tests.conftest import TEST_SEED

    rng = random.Random(TEST_SEED)
    tracks = [
        Track(f"{rng.getrandbits(88):022x}"[:22], f"Song {rng.random()}", f"Band {i}")
        for i in range(30)
    ]
    by_id, by_name, absent = tracks[0], tracks[1], Track("z" * 22, "Nowhere", "Nobody")
    spotify = [
        {"id": by_id.track_id, "name": "renamed on Spotify", "artists": [{"name": "?"}]},
        {"id": "y" * 22, "name": by_name.name.upper(), "artists": [{"name": by_name.artist}]},
        {"id": absent.track_id, "name": absent.name, "artists": [{"name": absent.artist}]},
    ]
    assert match(Catalog(tracks), spotify) == [by_id, by_name]
