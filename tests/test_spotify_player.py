"""The Spotify Web API player against a recording stand-in for Spotify on 127.0.0.1."""

from __future__ import annotations

import logging
import random
import stat
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from heymusic.config import Settings, load_settings
from heymusic.players.base import PlayerState
from heymusic.players.spotify import BUSY, LOGIN, NO_DEVICE, PREMIUM, SpotifyPlayer
from heymusic.players.spotify_auth import SCOPES, TokenCache, token_path
from heymusic.track import Track
from tests.conftest import TEST_SEED
from tests.spotify_stub import SpotifyStub


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpotifyStub]:
    server = SpotifyStub()
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", server.api_base)
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_ACCOUNTS_BASE", server.base)
    yield server
    server.close()


def _settings(**spotify: object) -> Settings:
    return load_settings(
        overrides={"spotify": {"client_id": "test-client", **spotify}, "player": {"tts": False}}
    )


def _login(stub: SpotifyStub) -> None:
    token = stub.token()
    token["expires_at"] = int(time.time()) + 3600
    TokenCache().save_token_to_cache(token)


def _tracks(n: int = 5, seed: int = 0) -> list[Track]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return [
        Track(
            "".join(rng.choices(alphabet, k=22)),
            " ".join(rng.choices(["blue", "night", "river", "fire", "slow", "gold"], k=2)),
            rng.choice(["Ann", "Bo", "Cy"]),
        )
        for _ in range(n)
    ]


@pytest.fixture
def player(stub: SpotifyStub) -> Iterator[tuple[SpotifyPlayer, list[str]]]:
    _login(stub)
    messages: list[str] = []
    p = SpotifyPlayer(_settings(), on_message=messages.append)
    yield p, messages
    p.close()


def test_each_voice_command_sends_its_calls(
    stub: SpotifyStub, player: tuple[SpotifyPlayer, list[str]]
) -> None:
    p, messages = player
    tracks = _tracks()
    p.play(tracks)
    p.next()
    p.previous()
    p.restart()  # "start over"
    p.pause()
    p.restart()  # paused: from the top, and playing again
    p.repeat(True)
    p.resume()
    p.set_volume(30)
    p.change_volume(10)
    p.stop()
    assert p.wait_idle()
    assert messages == []
    assert stub.calls() == [
        "PUT /me/player/play",
        "POST /me/player/next",
        "POST /me/player/previous",
        "PUT /me/player/seek",
        "PUT /me/player/pause",
        "PUT /me/player/seek",
        "PUT /me/player/play",
        "PUT /me/player/repeat",
        "PUT /me/player/play",
        "PUT /me/player/volume",
        "PUT /me/player/volume",
        "PUT /me/player/pause",
    ]
    reqs = stub.requests
    assert reqs[0].body == {"uris": [f"spotify:track:{t.track_id}" for t in tracks]}
    assert all("device_id" not in r.query for r in reqs)  # no device set: the active one
    assert [r.query["position_ms"] for r in reqs if "seek" in r.call] == ["0", "0"]
    assert reqs[6].body is None and reqs[8].body is None  # no new context: the same song
    assert reqs[7].query["state"] == "track"  # "repeat this song"
    assert [r.query["volume_percent"] for r in reqs[9:11]] == ["30", "40"]
    assert all(r.authorization == "Bearer access-0" for r in reqs)
    assert p.now_playing() is None


def test_device_by_name_queue_mode_and_volume_cap(stub: SpotifyStub) -> None:
    _login(stub)
    settings = load_settings(
        overrides={
            "spotify": {"client_id": "c", "device": "phone", "mode": "queue"},
            "player": {"max_volume": 70, "tts": False},
        }
    )
    p = SpotifyPlayer(settings)
    tracks = _tracks(3, seed=1)
    p.play(tracks)
    p.set_volume(95)
    assert p.wait_idle()
    p.close()
    assert stub.calls() == ["GET /me/player/devices"] + ["POST /me/player/queue"] * 3 + [
        "PUT /me/player/volume"
    ]
    assert [r.query["uri"] for r in stub.requests[1:4]] == [t.uri for t in tracks]
    assert {r.query["device_id"] for r in stub.requests[1:]} == {"dev-phone"}
    assert stub.requests[-1].query["volume_percent"] == "70"
    again = SpotifyPlayer(settings)  # volume and queue survive a restart
    assert again.volume == 70
    assert [t.track_id for t in again._queue] == [t.track_id for t in tracks]
    again.close()


def test_expired_token_is_refreshed_and_never_logged(
    stub: SpotifyStub, player: tuple[SpotifyPlayer, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    p, messages = player
    stub.access_token = "revoked"  # Spotify no longer takes access-0: 401
    p.play(_tracks())
    assert p.wait_idle()
    assert messages == []
    assert stub.calls(api_only=False) == [
        "PUT /me/player/play",
        "POST /api/token",
        "PUT /me/player/play",
    ]
    assert stub.requests[1].body["grant_type"] == "refresh_token"
    cached = TokenCache().get_cached_token()
    assert cached is not None and cached["access_token"] == "access-1"
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    for secret in ("access-0", "access-1", "refresh-0"):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("status", "headers", "line", "max_seconds"),
    [
        (403, {}, PREMIUM, 1.0),
        (404, {}, NO_DEVICE, 1.0),
        (429, {"Retry_After": "30"}, BUSY, 1.0),  # longer than the 3 s budget: say so at once
        (500, {}, "try again in a moment", 3.3),
        (503, {}, "try again in a moment", 3.3),
    ],
)
def test_failures_are_one_line_and_the_player_goes_on(
    stub: SpotifyStub,
    player: tuple[SpotifyPlayer, list[str]],
    status: int,
    headers: dict[str, str],
    line: str,
    max_seconds: float,
) -> None:
    p, messages = player
    p.set_volume(20)
    assert p.wait_idle()
    if status == 404:
        stub.devices = []  # no device on at all (else the player falls back to one)
    stub.fail(status, times=100 if status >= 500 else 1, path="/me/player/play", **headers)
    start = time.monotonic()
    p.play(_tracks())
    assert p.wait_idle()
    assert time.monotonic() - start < max_seconds
    assert len(messages) == 1 and line in messages[0]
    stub.failures.clear()
    p.next()
    assert p.wait_idle()
    assert len(messages) == 1 and stub.calls()[-1] == "POST /me/player/next"


def test_short_retry_after_and_transient_5xx_are_retried(
    stub: SpotifyStub, player: tuple[SpotifyPlayer, list[str]]
) -> None:
    p, messages = player
    stub.fail(429, path="/me/player/play", Retry_After="1")
    start = time.monotonic()
    p.play(_tracks())
    assert p.wait_idle()
    assert 1.0 <= time.monotonic() - start < 2.5
    stub.fail(500, times=2, path="/me/player/next")
    p.next()
    assert p.wait_idle()
    assert messages == []
    assert stub.calls() == ["PUT /me/player/play"] * 2 + ["POST /me/player/next"] * 3


def test_unreachable_spotify_and_missing_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEYMUSIC_SPOTIFY_API_BASE", "http://127.0.0.1:9/v1/")  # nothing there
    messages: list[str] = []
    p = SpotifyPlayer(_settings(), on_message=messages.append)
    p.pause()
    assert p.wait_idle()
    assert messages == [LOGIN]  # no token cache yet: no request, no interactive prompt
    token = {"access_token": "a", "refresh_token": "r", "expires_at": int(time.time()) + 3600}
    TokenCache().save_token_to_cache({**token, "scope": "user-read-email"})
    p.pause()
    assert p.wait_idle()
    assert messages == [LOGIN] * 2  # a token without the playback scopes: log in again
    TokenCache().save_token_to_cache({**token, "scope": SCOPES})
    start = time.monotonic()
    p.pause()
    assert p.wait_idle()
    p.close()
    assert time.monotonic() - start < 3.5
    assert messages[2].startswith("cannot reach Spotify")


def test_radio_queues_more_when_the_last_track_plays(stub: SpotifyStub) -> None:
    _login(stub)
    more = _tracks(2, seed=7)
    seeds: list[str] = []

    def more_like(
        track: Track, k: int | None = None, exclude: object = ()
    ) -> list[tuple[Track, float]]:
        seeds.append(track.track_id)
        return [(t, 0.5) for t in more]

    p = SpotifyPlayer(_settings(), more_like=more_like)
    tracks = _tracks(2)
    p.play(tracks)
    p.next()  # now on the last one
    assert p.wait_idle()
    p.close()
    assert seeds == [tracks[-1].track_id]
    assert stub.calls()[-2:] == ["POST /me/player/queue"] * 2
    assert [r.query["uri"] for r in stub.requests[-2:]] == [t.uri for t in more]


def test_radio_polls_and_queues_when_the_device_reaches_our_last_track(
    stub: SpotifyStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import heymusic.players.spotify as spotify

    monkeypatch.setattr(spotify, "POLL_SECONDS", 0.2)
    _login(stub)
    more = _tracks(1, seed=9)
    p = SpotifyPlayer(_settings(), more_like=lambda track, k=None, exclude=(): [(more[0], 0.4)])
    tracks = _tracks(3)
    p.play(tracks)
    time.sleep(0.5)  # polls: the device still plays the first one
    assert "POST /me/player/queue" not in stub.calls()
    stub.current_uri = tracks[-1].uri  # the user skipped on the phone to our last track
    end = time.monotonic() + 5
    while "POST /me/player/queue" not in stub.calls() and time.monotonic() < end:
        time.sleep(0.05)
    p.close()
    queued = [r for r in stub.requests if r.call == "POST /me/player/queue"]
    assert [r.query["uri"] for r in queued] == [more[0].uri]
    assert p.now_playing() is not None and p.now_playing().track_id == tracks[-1].track_id


def test_a_new_request_takes_the_song_off_repeat(
    stub: SpotifyStub, player: tuple[SpotifyPlayer, list[str]]
) -> None:
    p, messages = player
    p.play(_tracks(2))
    p.repeat(True)
    p.play(_tracks(2, seed=4))  # another request: its songs play on, none repeated
    p.repeat(False)
    assert p.wait_idle() and not messages
    assert stub.calls() == [
        "PUT /me/player/play",
        "PUT /me/player/repeat",
        "PUT /me/player/repeat",  # off before the new request plays
        "PUT /me/player/play",
        "PUT /me/player/repeat",
    ]
    states = [r.query["state"] for r in stub.requests if r.call == "PUT /me/player/repeat"]
    assert states == ["track", "context", "context"]


def test_stop_after_this_song_pauses_at_its_end_and_resume_goes_on(stub: SpotifyStub) -> None:
    """ "stop after this song": the device is paused just before the song's end (not at
    once, not after the next has begun), and "resume" plays on from the queue."""
    _login(stub)
    p = SpotifyPlayer(_settings())
    tracks = _tracks(3)
    p.play(tracks)
    length = random.Random(TEST_SEED).uniform(1.5, 2.5)
    stub.play_song(tracks[0].uri or "", round(1000 * length))
    started = time.monotonic()
    p.stop_after()
    assert p.wait_idle() and p.state is PlayerState.PLAYING
    end = time.monotonic() + length + 2
    while "PUT /me/player/pause" not in stub.calls() and time.monotonic() < end:
        time.sleep(0.02)
    paused = time.monotonic()
    assert length - 1.2 < paused - started < length + 0.1
    assert p.state is PlayerState.STOPPED and p.now_playing() is None and p.can_resume
    p.resume()
    assert p.wait_idle()
    p.close()
    assert stub.calls()[-1] == "PUT /me/player/play" and p.state is PlayerState.PLAYING


def test_the_sleep_timer_pauses_the_device_on_time_and_a_stop_cancels_it(
    stub: SpotifyStub,
) -> None:
    """ "stop the music in 20 minutes", in seconds: the device gets its pause then, not
    before; a timer followed by a stop sends no pause of its own."""
    _login(stub)
    p = SpotifyPlayer(_settings())
    p.play(_tracks(3))
    assert p.wait_idle()
    wait_s = random.Random(TEST_SEED).uniform(0.8, 1.8)
    started = time.monotonic()
    p.pause_in(wait_s)
    end = started + wait_s + 3
    while "PUT /me/player/pause" not in stub.calls() and time.monotonic() < end:
        time.sleep(0.02)
    assert wait_s - 0.05 < time.monotonic() - started < wait_s + 0.5
    assert p.wait_idle()  # the stub logs the call before the player has its answer
    assert p.state is PlayerState.PAUSED and p.can_resume
    p.resume()
    p.pause_in(0.3)
    p.stop()
    assert p.wait_idle()
    calls = len(stub.calls())
    time.sleep(0.8)
    p.close()
    assert "PUT /me/player/pause" not in stub.calls()[calls:]


def test_headless_login_cli(stub: SpotifyStub, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[spotify]\nclient_id = "test-client"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "heymusic", "--config", str(config), "spotify", "login"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None and proc.stdin is not None
    url = ""
    while not url:
        text = proc.stderr.readline()
        assert text, "login ended before printing the authorize URL"
        url = text.strip() if text.strip().startswith("http") else ""
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(stub.base + "/authorize?")
    assert query["redirect_uri"] == ["http://127.0.0.1:8888/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert set(query["scope"][0].split()) == {
        "user-read-playback-state",
        "user-modify-playback-state",
        "user-library-read",  # `heymusic spotify seed`: saved and top tracks
        "user-top-read",
    }
    redirect = f"http://127.0.0.1:8888/callback?code=the-code&state={query['state'][0]}"
    out, err = proc.communicate(redirect + "\n", timeout=30)
    assert proc.returncode == 0, err
    form = stub.requests[-1].body
    assert form["code"] == "the-code" and form["grant_type"] == "authorization_code"
    assert len(form["code_verifier"]) >= 43 and "client_secret" not in form
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    cached = TokenCache().get_cached_token()
    assert cached is not None and cached["refresh_token"] == "refresh-0" and "expires_at" in cached
    status = subprocess.run(
        [sys.executable, "-m", "heymusic", "--config", str(config), "spotify", "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0 and "Kitchen Pi [Speaker] (active)" in status.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "heymusic", "--config", str(config), "spotify", "login"],
        input=redirect + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "another login attempt" in bad.stderr  # stale state


def test_auto_player_picks_the_source_per_request(stub: SpotifyStub, tmp_path: Path) -> None:
    from heymusic.errors import UserError
    from heymusic.players import make_player

    messages: list[str] = []
    settings = _settings()
    with pytest.raises(UserError, match="spotify login"):
        make_player(settings, "spotify", audio_out="null")
    nothing = make_player(settings, "auto", audio_out="null", on_message=messages.append)
    nothing.play(_tracks(2))  # Spotify-only songs, not logged in: say how to fix it
    nothing.close()
    assert len(messages) == 1 and "log in to Spotify" in messages[0]
    assert stub.calls() == []

    _login(stub)
    auto = make_player(settings, "auto", audio_out="null", on_message=messages.append)
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")  # unreadable audio: the local route is taken, then skipped
    local = Track("local-1", "Mine", "Me", path=str(clip))
    auto.play([local])
    auto.play(_tracks(3))  # nothing local: Spotify plays them
    auto.next()
    assert auto.name == "auto"
    assert auto._spotify.wait_idle()  # type: ignore[attr-defined]
    auto.close()
    assert stub.calls() == ["PUT /me/player/play", "POST /me/player/next"]


def test_a_bare_token_from_another_tool_works_without_client_id(stub: SpotifyStub) -> None:
    bare = {"access_token": stub.access_token, "refresh_token": "refresh-0"}  # no scope/expiry
    TokenCache().save_token_to_cache(bare)
    messages: list[str] = []
    settings = load_settings(overrides={"player": {"tts": False}})  # no client id configured
    p = SpotifyPlayer(settings, on_message=messages.append)
    p.pause()
    assert p.wait_idle()
    stub.access_token = "rotated"  # now it is refused: refreshing needs a client id
    p.resume()
    assert p.wait_idle()
    p.close()
    assert stub.calls() == ["PUT /me/player/pause", "PUT /me/player/play"]
    assert len(messages) == 1 and "client_id" in messages[0]


def test_nothing_active_plays_on_the_first_device_that_is_on(
    stub: SpotifyStub, player: tuple[SpotifyPlayer, list[str]]
) -> None:
    p, messages = player
    for dev in stub.devices:
        dev["is_active"] = False
    stub.fail(404, path="/me/player/play")  # Spotify: NO_ACTIVE_DEVICE
    p.play(_tracks())
    p.next()
    assert p.wait_idle()
    assert messages == []
    assert stub.calls() == [
        "PUT /me/player/play",
        "GET /me/player/devices",
        "PUT /me/player/play",
        "POST /me/player/next",
    ]
    assert [r.query.get("device_id") for r in stub.requests] == [
        None,
        None,
        "dev-phone",
        "dev-phone",
    ]


def test_a_command_queued_behind_a_slow_duck_still_answers_within_its_budget(
    stub: SpotifyStub,
) -> None:
    """The budget counts from when the person asked, not from when the worker got to it."""
    _login(stub)
    answered: list[float] = []
    p = SpotifyPlayer(_settings(), on_message=lambda _line: answered.append(time.monotonic()))
    try:
        budget = p._cfg.timeout_seconds
        p.play(_tracks())
        assert p.wait_idle() and answered == []
        stub.delay_seconds = 10.0  # from now on every call hangs until its timeout
        p.duck()
        asked = time.monotonic()
        p.pause()
        assert p.wait_idle(timeout=budget + 5)
        assert len(answered) == 1, "the pause must be answered with one line, the duck not"
        assert answered[0] - asked <= budget + 0.25
    finally:
        stub.delay_seconds = 0.0
        p.close()
