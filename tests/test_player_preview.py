"""The preview/local player against a real HTTP server on 127.0.0.1, recording what it plays."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.audio.sink import RecordingSink
from heymusic.config import Settings, load_settings
from heymusic.players.base import PlayerState
from heymusic.players.preview import NOTHING_PLAYABLE, PreviewPlayer
from heymusic.players.state import load_state
from heymusic.track import Track
from tests.conftest import TEST_SEED
from tests.local_http import LocalHTTPServer

RATE = 16000
#: Each served clip is a tone of its own pitch, so the recording tells which one played.
CLIPS = {"a.wav": 440.0, "b.mp3": 660.0, "c.ogg": 880.0, "slow.wav": 550.0, "long.wav": 330.0}
SECONDS = {"long.wav": 3.0}


def _tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips")
    for name, freq in CLIPS.items():
        seconds = SECONDS.get(name, 0.8)
        wav = out / (Path(name).stem + ".src.wav")
        # Different rates and layouts so the player has to resample and downmix.
        sf.write(wav, np.stack([_tone(freq, seconds, 44100)] * 2, axis=1), 44100)
        if name.endswith(".wav"):
            wav.rename(out / name)
        else:
            subprocess.run(["sox", str(wav), "-r", "22050", str(out / name)], check=True)
            wav.unlink()
    (out / "broken.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    return out


class _Server:
    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                server.requests.append(name)
                path = root / name
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if name.startswith("slow"):  # trickles in over ~0.6 s, within the timeout
                    for i in range(0, len(data), len(data) // 6 + 1):
                        self.wfile.write(data[i : i + len(data) // 6 + 1])
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(clip_dir: Path) -> Iterator[_Server]:
    srv = _Server(clip_dir)
    yield srv
    srv.httpd.shutdown()


def _track(server: _Server, name: str, **kw: object) -> Track:
    return Track(
        track_id=name, name=f"Song {name}", artist="Tester", preview_url=server.base + name, **kw
    )  # type: ignore[arg-type]


def _settings(**player: object) -> Settings:
    return load_settings(
        overrides={
            "player": {"tts": False, "radio": False, "download_timeout_seconds": 1.0, **player}
        }
    )


def _wait(cond: Callable[[], bool], seconds: float = 8.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _pitches(sink: RecordingSink) -> list[float]:
    """Dominant pitch of each loud 20 ms block, consecutive repeats merged."""
    seq: list[float] = []
    for _, block in sink.blocks:
        x = block[:, 0].astype(np.float32)
        if np.abs(x).max() < 500:
            continue
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=4 * RATE))
        pitch = round(float(np.argmax(spectrum)) / 4 / 10) * 10  # 10 Hz resolution
        if not seq or seq[-1] != pitch:
            seq.append(pitch)
    return seq


def _player(sink: RecordingSink, **kw: object) -> PreviewPlayer:
    messages = kw.pop("messages", None)
    more_like = kw.pop("more_like", None)
    return PreviewPlayer(
        _settings(**kw),
        sink,
        on_message=messages.append if isinstance(messages, list) else None,
        more_like=more_like,
    )  # type: ignore[arg-type]


def test_plays_in_order_and_survives_broken_missing_and_slow(server: _Server) -> None:
    sink = RecordingSink(RATE)
    messages: list[str] = []
    player = _player(sink, messages=messages)
    tracks = [
        _track(server, "a.wav"),
        _track(server, "broken.mp3"),
        _track(server, "b.mp3"),
        _track(server, "gone.mp3"),
        Track("x", "No Source", "Nobody"),
        _track(server, "slow.wav"),
        _track(server, "c.ogg"),
    ]
    player.play(tracks)
    _wait(lambda: player.state is PlayerState.PLAYING)
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    assert _pitches(sink) == [440, 660, 550, 880]
    assert server.requests == ["a.wav", "broken.mp3", "b.mp3", "gone.mp3", "slow.wav", "c.ogg"]
    assert messages == []  # some songs played: skipping is logged, not spoken
    played = len(sink.samples()) / RATE
    assert 3.0 < played < 4.0  # four 0.8 s clips, nothing repeated


def test_skip_pause_resume_duck_stop(server: _Server) -> None:
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "long.wav"), _track(server, "a.wav"), _track(server, "c.ogg")])
    _wait(lambda: sink.first_sound_time() is not None)
    time.sleep(0.5)
    level = int(np.abs(sink.blocks[-1][1]).max())

    player.duck()
    time.sleep(0.3)
    ducked = int(np.abs(sink.blocks[-1][1]).max())
    assert 0.07 < ducked / level < 0.13  # -20 dB
    player.unduck()
    time.sleep(0.3)
    assert abs(int(np.abs(sink.blocks[-1][1]).max()) - level) < 0.05 * level

    player.pause()
    time.sleep(0.2)
    count = len(sink.blocks)
    time.sleep(0.4)
    assert len(sink.blocks) == count  # paused: nothing more written
    assert player.state is PlayerState.PAUSED
    player.resume()
    player.next()  # while the 3 s clip is still playing
    _wait(lambda: _pitches(sink)[-1:] == [440])
    _wait(lambda: _pitches(sink)[-1:] == [880])
    assert player.now_playing() is not None and player.now_playing().track_id == "c.ogg"

    player.stop()
    _wait(lambda: player.state is PlayerState.STOPPED)
    assert player.now_playing() is None
    player.close()
    assert _pitches(sink) == [330, 440, 880]
    long_seconds = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 330)) / RATE
    assert 1.0 < long_seconds < 2.5  # skipped part-way; pause did not restart it
    assert load_state().queue == []


def _is_pitch(block: np.ndarray, freq: float) -> bool:
    x = block[:, 0].astype(np.float32)
    if np.abs(x).max() < 100:
        return False
    spectrum = np.abs(np.fft.rfft(x, n=4 * RATE))
    return abs(float(np.argmax(spectrum)) / 4 - freq) < 15


def test_restart_plays_the_song_again_from_its_beginning(server: _Server) -> None:
    """ "start over", said part-way through and again while paused: the whole song after
    each, then the next one, which `up_next` named."""
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "long.wav"), _track(server, "a.wav")])
    _wait(lambda: sink.first_sound_time() is not None)
    assert player.up_next() is not None and player.up_next().track_id == "a.wav"  # type: ignore[union-attr]
    before = random.Random(TEST_SEED).uniform(0.5, 1.5)
    time.sleep(before)
    player.restart()
    time.sleep(0.5)
    player.pause()
    player.restart()
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    assert _pitches(sink) == [330, 440]
    heard = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 330)) / RATE
    assert before - 0.3 + 3.0 < heard < before + 0.5 + 3.3  # part-plays, then all 3 s


def test_stop_after_this_song_lets_it_end_and_keeps_the_rest(server: _Server) -> None:
    """ "stop after this song": the song plays to its end, nothing after it; "resume" goes
    on with the next one (a stop had cut it off and cleared the queue)."""
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "long.wav"), _track(server, "a.wav")])
    _wait(lambda: sink.first_sound_time() is not None)
    time.sleep(random.Random(TEST_SEED).uniform(0.2, 1.5))
    player.stop_after()
    _wait(lambda: player.state is PlayerState.STOPPED)
    time.sleep(0.3)
    assert _pitches(sink) == [330] and player.now_playing() is None and player.can_resume
    heard = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 330)) / RATE
    assert 2.8 < heard < 3.1  # to its end
    player.resume()
    _wait(lambda: _pitches(sink) == [330, 440])
    _wait(lambda: player.state is PlayerState.STOPPED)
    songs = [_track(server, "c.ogg"), _track(server, "b.mp3")]
    player.play(songs)
    player.stop_after()
    player.stop()  # then asked for again: a stop forgets "after this song"
    player.play(songs)
    _wait(lambda: _pitches(sink)[-1:] == [660])
    player.close()
    assert _pitches(sink) == [330, 440, 880, 660]


def test_the_sleep_timer_pauses_on_time_and_off_or_a_stop_cancels_it(server: _Server) -> None:
    """ "stop the music in 20 minutes", in seconds: the music pauses then, mid-song, with
    its place kept for "resume"; a timer turned off, or one set before a stop, pauses
    nothing."""
    rng = random.Random(TEST_SEED)
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "long.wav"), _track(server, "a.wav")])
    _wait(lambda: sink.first_sound_time() is not None)
    wait_s = rng.uniform(0.6, 1.6)
    player.pause_in(wait_s)
    _wait(lambda: player.state is PlayerState.PAUSED)
    heard = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 330)) / RATE
    assert wait_s - 0.2 < heard < wait_s + 0.6, (wait_s, heard)
    assert player.can_resume and player.now_playing() is not None
    player.resume()
    player.pause_in(0.4)
    player.pause_in(None)
    time.sleep(0.9)
    assert player.state is PlayerState.PLAYING
    player.pause_in(0.4)
    player.stop()
    player.play([_track(server, "long.wav")])
    time.sleep(0.9)
    assert player.state is PlayerState.PLAYING
    player.close()


def test_a_song_on_repeat_comes_again_until_repeat_is_off(server: _Server) -> None:
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "a.wav"), _track(server, "c.ogg")])
    player.repeat(True)
    _wait(lambda: sink.first_sound_time() is not None)
    times = random.Random(TEST_SEED).randint(2, 4)
    time.sleep(0.8 * times + 0.3)
    assert _pitches(sink) == [440] and player.state is PlayerState.PLAYING
    player.repeat(False)
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    assert _pitches(sink) == [440, 880]
    heard = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 440)) / RATE
    assert 0.8 * times < heard  # the 0.8 s clip, again and again


def test_pause_keeps_position(server: _Server) -> None:
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.play([_track(server, "long.wav")])
    _wait(lambda: sink.first_sound_time() is not None)
    time.sleep(0.8)
    player.pause()
    time.sleep(0.5)
    player.resume()
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    heard = sum(len(b) for _, b in sink.blocks if _is_pitch(b, 330)) / RATE
    assert 2.8 < heard < 3.1  # the whole 3 s clip exactly once


def test_volume_cap_and_queue_survive_restart(server: _Server, tmp_path: Path) -> None:
    sink = RecordingSink(RATE)
    player = _player(sink, max_volume=60)
    player.set_volume(90)
    player.play([_track(server, "long.wav"), _track(server, "c.ogg")])
    _wait(lambda: sink.first_sound_time() is not None)
    player.next()
    _wait(lambda: player.now_playing() is not None and player.now_playing().track_id == "c.ogg")  # type: ignore[union-attr]
    player.close()
    assert player.volume == 60

    again = RecordingSink(RATE)
    player = _player(again, max_volume=60)
    assert player.volume == 60
    player.resume()  # after a restart: the saved queue from where it was
    _wait(lambda: player.state is PlayerState.STOPPED and again.first_sound_time() is not None)
    player.close()
    assert _pitches(again) == [880]
    # volume 60 % of full scale on the 0.5 tone: 0.36 * 0.5
    assert abs(int(np.abs(again.samples()).max()) / 32767 - 0.18) < 0.02


def test_radio_keeps_going_and_nothing_playable_is_said(server: _Server) -> None:
    sink = RecordingSink(RATE)
    messages: list[str] = []
    suggestions = {"a.wav": "b.mp3", "b.mp3": "c.ogg"}

    def more_like(
        track: Track, k: int | None = None, exclude: object = ()
    ) -> list[tuple[Track, float]]:
        nxt = suggestions.get(track.track_id)
        return [(_track(server, nxt), 0.9)] if nxt else []

    player = _player(sink, radio=True, messages=messages, more_like=more_like)
    player.play([Track("nothing", "Silent", "Nobody")])
    _wait(lambda: bool(messages))
    assert messages == [NOTHING_PLAYABLE]
    player.play([_track(server, "gone.mp3"), _track(server, "broken.mp3")])
    _wait(lambda: len(messages) == 2)
    assert messages[1].startswith("could not play any of these songs (cannot decode")
    player.play([_track(server, "a.wav")])
    _wait(lambda: player.state is PlayerState.PLAYING)
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    assert _pitches(sink) == [440, 660, 880]


def test_local_file_and_earcons(clip_dir: Path) -> None:
    sink = RecordingSink(RATE)
    player = _player(sink)
    player.earcon("listening")  # while stopped: the cue alone
    _wait(lambda: sink.first_sound_time() is not None)
    player.play([Track("local", "Local", "Me", path=str(clip_dir / "c.ogg"))])
    _wait(lambda: player.state is PlayerState.PLAYING)
    _wait(lambda: player.state is PlayerState.STOPPED)
    player.close()
    pitches = _pitches(sink)
    assert abs(pitches[0] - 660) <= 10 and abs(pitches[1] - 990) <= 10  # the rising cue
    assert pitches[-1] == 880
