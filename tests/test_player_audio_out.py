"""Output sinks (a real miniaudio device, WAV file), earcons and spoken replies."""

from __future__ import annotations

import time
from pathlib import Path

import miniaudio
import numpy as np
import pytest
import soundfile as sf

from heymusic.audio.sink import DeviceSink, RecordingSink, make_sink
from heymusic.config import load_settings
from heymusic.errors import UserError
from heymusic.players.earcons import EARCON_NAMES, make_earcon
from heymusic.players.preview import PreviewPlayer
from heymusic.players.voice import Voice


def _block(sink: DeviceSink | RecordingSink, seconds: float = 0.02) -> np.ndarray:
    return np.full((int(sink.rate * seconds), sink.channels), 1000, np.int16)


def test_speaker_is_paced_and_a_vanished_one_is_reported_and_reopened() -> None:
    # miniaudio's null backend: a real device thread that pulls samples, on machines
    # without a sound card.
    messages: list[str] = []
    sink = DeviceSink("", messages.append, reconnect_seconds=0.3, backends=[miniaudio.Backend.NULL])
    start = time.monotonic()
    for _ in range(50):  # 1 s of sound
        sink.write(_block(sink))
    assert 0.7 < time.monotonic() - start < 1.5  # the device takes it in real time
    assert messages == []

    sink._device.stop()  # the device thread stops pulling, as when the speaker is unplugged
    start = time.monotonic()
    while len(messages) < 2 and time.monotonic() - start < 5:
        sink.write(_block(sink))  # never raises and never hangs: the player goes on
    sink.close()
    assert messages == [
        "speaker stopped taking sound (unplugged?); music is silent until it works",
        "speaker is back",
    ]


def test_unknown_speaker_is_one_line_and_playback_goes_on() -> None:
    messages: list[str] = []
    sink = DeviceSink("no such speaker 42", messages.append, 30, [miniaudio.Backend.NULL])
    start = time.monotonic()
    for _ in range(25):
        sink.write(_block(sink))
    sink.close()
    assert 0.3 < time.monotonic() - start < 0.8  # still paced in real time
    assert len(messages) == 1
    assert "'no such speaker 42' not found (available: 0: NULL Playback" in messages[0]
    assert "output_device" in messages[0]


def test_wav_sink_records_and_bad_outputs_are_clear(tmp_path: Path) -> None:
    sink = make_sink(str(tmp_path / "out.wav"))
    blocks = [
        np.random.default_rng(i).integers(-9000, 9000, (441, 2)).astype(np.int16) for i in range(5)
    ]
    for block in blocks:
        sink.write(block)
    sink.close()
    data, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    assert rate == 44100 and np.array_equal(data, np.concatenate(blocks))
    with pytest.raises(UserError, match="--audio-out"):
        make_sink("speakers")
    with pytest.raises(UserError, match="writable"):
        make_sink(str(tmp_path / "missing" / "out.wav"))


def test_earcons_differ_and_spoken_replies_reach_the_speaker() -> None:
    cues = {name: make_earcon(name, 16000) for name in EARCON_NAMES}
    assert all(0.05 < len(c) / 16000 < 0.4 and 0.1 < np.abs(c).max() <= 1 for c in cues.values())
    pitch = {n: np.argmax(np.abs(np.fft.rfft(c[:800]))) for n, c in cues.items()}
    assert len(set(pitch.values())) == 3

    sink = RecordingSink(16000, speed=4.0)
    player = PreviewPlayer(load_settings(overrides={"player": {"tts": True}}), sink)
    player.say("Now playing a test song by the test band")
    end = time.monotonic() + 30
    while len(sink.samples()) < 16000 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    player.close()
    speech = sink.samples()[:, 0].astype(np.float32)
    assert len(speech) / 16000 > 1.0  # a sentence, not a click
    assert np.abs(speech).max() > 3000

    quiet = RecordingSink(16000)
    player = PreviewPlayer(load_settings(overrides={"player": {"tts": False}}), quiet)
    player.say("nothing to hear")
    time.sleep(0.3)
    player.close()
    assert quiet.blocks == []


@pytest.mark.parametrize("engine", Voice.ENGINES)
def test_each_tts_engine_speaks(engine: str) -> None:
    result = Voice(engine).synthesize("Blue in green by Miles Davis")
    assert result is not None
    audio, rate = result
    assert 1.0 < len(audio) / rate < 5.0 and np.abs(audio).max() > 0.1
