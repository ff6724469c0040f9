"""Echo cancellation against our own playback: rendered music through a simulated speaker,
room and mic, held-out voices saying "hey music" over it, libspeexdsp doing the work."""

from __future__ import annotations

import ctypes.util
import time

import numpy as np
import pytest
import soxr

from heymusic.audio import echo
from heymusic.audio.echo import EchoCanceller, PlaybackReference
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake
from heymusic.training.wake.data import midi_music, reverb
from heymusic.wake.detector import WakeDetector
from tests.conftest import TEST_SEED, Synth, read_pcm

SR = 16000
DEVICE_RATE = 44100
BLOCK_S = 0.02  # what a sound card pulls at a time
CHUNK = 1280


def _blocks(
    music: np.ndarray, t0: float, rng: np.random.Generator, ppm: float = 0.0
) -> list[tuple[float, np.ndarray]]:
    """`music` (16 kHz) as the speaker thread hands it over: 44.1 kHz stereo blocks pulled
    every 20 ms of the speaker's clock (`ppm` fast against the mic's), stamped with a few
    milliseconds of scheduling jitter."""
    loud = soxr.resample(music.astype(np.float32), SR, DEVICE_RATE)
    stereo = np.stack([loud, 0.8 * loud], axis=1).clip(-32768, 32767).astype(np.int16)
    step = round(BLOCK_S * DEVICE_RATE)
    return [
        (t0 + k * BLOCK_S / (1 + ppm * 1e-6) + rng.uniform(0, 0.003), stereo[at : at + step])
        for k, at in enumerate(range(0, len(stereo), step))
    ]


def _play(ref: PlaybackReference, music: np.ndarray, t0: float, rng: np.random.Generator) -> None:
    for when, block in _blocks(music, t0, rng):
        ref.played(block, DEVICE_RATE, when)


def _echo_path(music: np.ndarray, delay_s: float, rng: np.random.Generator) -> np.ndarray:
    """A small speaker (soft clipping), a room, and the time sound takes to come back."""
    y = np.tanh(2.0 * music / 32768) / 2.0 * 32768
    y = reverb(y.astype(np.float32), rng)
    d = round(delay_s * SR)
    return np.concatenate([np.zeros(d, np.float32), y[:-d]])


def _cancel(
    music: np.ndarray,
    mic: np.ndarray,
    t0: float,
    in_latency: float,
    rng: np.random.Generator,
    ppm: float = 0.0,
) -> np.ndarray:
    """Speaker and mic threads interleaved in time: each mic chunk arrives `in_latency`
    (plus jitter) after its last sample, by when everything played before it is known."""
    ref = PlaybackReference()
    canceller = EchoCanceller(ref)
    blocks = iter(_blocks(music, t0, rng, ppm))
    pending = next(blocks, None)
    out = []
    for at in range(0, len(mic) - CHUNK + 1, CHUNK):
        arrived = t0 + (at + CHUNK) / SR + in_latency + rng.uniform(0, 0.004)
        while pending is not None and pending[0] <= arrived:
            ref.played(pending[1], DEVICE_RATE, pending[0])
            pending = next(blocks, None)
        out.append(canceller.process(mic[at : at + CHUNK], arrived))
    canceller.close()
    return np.concatenate(out)


def _power_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x.astype(np.float64))) + 1e-9))


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    rng = np.random.default_rng(TEST_SEED + 11)
    m = midi_music(26.0, rng)
    return (m / (np.sqrt(np.mean(m**2)) + 1e-9) * 3000).astype(np.float32)


def test_wakes_over_our_own_loud_music(synth: Synth, music: np.ndarray) -> None:
    """Three held-out voices at 0 dB under the echo of what we play: the canceller removes
    most of the echo and the wake word is heard; the speech itself survives."""
    rng = np.random.default_rng(TEST_SEED)
    t0 = 1000.0
    echo_sig = _echo_path(music, delay_s=rng.uniform(0.05, 0.15), rng=rng)
    speech = np.zeros_like(music)
    starts = [8.0, 14.0, 20.0]
    for start, voice in zip(starts, ["en-029+f3", "en-gb-x-gbcwmd+m5", "en-029+max"], strict=True):
        clip = read_pcm(synth("hey music", voice=voice, pad_before=0.0, pad_after=0.0))
        at = round(start * SR)
        speech[at : at + len(clip)] = clip
    phrase_rms = np.sqrt(np.mean(np.square(speech[speech != 0])))
    echo_sig *= phrase_rms / np.sqrt(np.mean(np.square(echo_sig)))  # 0 dB
    mic = np.clip(speech + echo_sig, -32768, 32767).astype(np.int16)

    cleaned = _cancel(music, mic, t0, 0.03, rng)

    music_only = slice(4 * SR, 7 * SR)  # after a few seconds to adapt, before anyone speaks
    reduction = _power_db(mic[music_only]) - _power_db(cleaned[music_only])
    assert reduction >= 8.0, reduction
    # what is left of the speech: the cleaned mic minus the clean voice is mostly residue
    voiced = np.abs(speech[: len(cleaned)]) > 0
    kept = _power_db(speech[: len(cleaned)][voiced]) - _power_db(
        cleaned[voiced] - speech[: len(cleaned)][voiced]
    )
    assert kept >= 5.0, kept

    settings = Settings.model_validate({"wake": {"asr_check": False}})
    wakes = [e.audio_s for e in WakeDetector(settings).events(cleaned) if isinstance(e, Wake)]
    raw = [e.audio_s for e in WakeDetector(settings).events(mic) if isinstance(e, Wake)]
    assert len(wakes) >= 2 and len(wakes) >= len(raw), (wakes, raw)
    assert all(any(s < t < s + 2.0 for s in starts) for t in wakes), wakes


def test_follows_a_speaker_and_mic_on_two_clocks() -> None:
    """A USB mic beside the Pi's own speaker: two crystals, here 300 ppm apart. Without
    following the drift the reference slides ~5 samples a second past the echo."""
    rng = np.random.default_rng(TEST_SEED + 3)
    m = midi_music(120.0, rng)
    music = (m / (np.sqrt(np.mean(m**2)) + 1e-9) * 3000).astype(np.float32)
    ppm = 300.0
    heard = soxr.resample(music, SR * (1 + ppm * 1e-6), SR)  # the speaker runs fast
    mic = np.clip(_echo_path(heard, 0.1, rng), -32768, 32767).astype(np.int16)
    cleaned = _cancel(music, mic[: len(music)], 1000.0, 0.03, rng, ppm)
    last = slice(len(cleaned) - 30 * SR, len(cleaned))
    reduction = _power_db(mic[last]) - _power_db(cleaned[last])
    assert reduction >= 12.0, reduction  # ~3 dB when the drift is not followed


def test_reference_holds_still_through_jittery_and_late_clocks(music: np.ndarray) -> None:
    """The canceller's reference must be the played sound, sample after sample, at one
    offset: timestamps jitter by milliseconds, and now and then a callback runs 30-150 ms
    late (waiting for the GIL). Following them would shift the reference, and the filter
    would relearn each time."""
    rng = np.random.default_rng(TEST_SEED + 1)
    ref = PlaybackReference()
    t0 = 50.0
    assert not ref.window(CHUNK, t0).any()  # nothing played yet: silence
    seconds = 10
    blocks = _blocks(music[: seconds * SR], t0, rng)
    late = [rng.uniform(0.01, 0.05) if rng.random() < 0.02 else 0.0 for _ in blocks]
    pulled = np.maximum.accumulate([when + d for (when, _), d in zip(blocks, late, strict=True)])
    got, k = [], 0
    for j in range((seconds - 1) * SR // CHUNK):
        arrived = t0 + (j + 1) * CHUNK / SR + 0.03 + rng.uniform(0, 0.004)
        arrived += rng.uniform(0.03, 0.15) if rng.random() < 0.02 else 0.0
        while k < len(blocks) and pulled[k] <= arrived:
            ref.played(blocks[k][1], DEVICE_RATE, pulled[k])
            k += 1
        got.append(ref.window(CHUNK, arrived))
    heard = np.concatenate(got)[3 * SR :].astype(float)  # after 2 s to find the clocks
    # what the device got, back at 16 kHz (the mean of the two channels is 0.9 x)
    played = 0.9 * soxr.resample(
        soxr.resample(music[: seconds * SR], SR, DEVICE_RATE), DEVICE_RATE, SR
    )
    middle = heard[SR : SR + 4000]
    search = played[4 * SR - 3000 : 4 * SR + 7000].astype(float)
    shift = int(np.argmax(np.correlate(search, middle, "valid"))) - 3000
    aligned = played[3 * SR + shift : 3 * SR + shift + len(heard)]
    assert len(aligned) == len(heard)
    chunks = range(0, len(heard) - CHUNK + 1, CHUNK)
    # read before a late speaker callback delivered: silent samples (the filter then misses
    # a few ms of reference; the clocks are not moved by it)
    holes = [a for a in chunks if (heard[a : a + CHUNK] == 0).sum() > 16]
    here = heard != 0
    shifted = [
        a
        for a in chunks
        if _power_db(aligned[a : a + CHUNK][here[a : a + CHUNK]])
        - _power_db((heard - aligned)[a : a + CHUNK][here[a : a + CHUNK]])
        < 25
    ]
    assert not shifted, [a / SR for a in shifted]  # one offset throughout
    assert len(holes) <= 0.1 * len(chunks), len(holes)


def test_playback_gap_reads_as_silence(music: np.ndarray) -> None:
    ref = PlaybackReference()
    rng = np.random.default_rng(TEST_SEED + 2)
    _play(ref, music[:SR], 10.0, rng)
    _play(ref, music[:SR], 12.0, rng)  # a second of nothing in between (paused device)
    assert not ref.window(CHUNK, 11.6).any()
    assert ref.window(CHUNK, 12.5).any()


def test_missing_libspeexdsp_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libspeexdsp.so")
    echo._speexdsp.cache_clear()
    try:
        with pytest.raises(UserError, match=r"apt-get install libspeexdsp1.*echo_cancel = false"):
            EchoCanceller(PlaybackReference())
    finally:
        echo._speexdsp.cache_clear()


def test_speaker_sink_tells_the_reference_what_it_plays() -> None:
    import miniaudio

    from heymusic.audio.sink import DeviceSink

    ref = PlaybackReference()
    sink = DeviceSink("", None, 0.3, [miniaudio.Backend.NULL], reference=ref)
    try:
        tone = (8000 * np.sin(np.arange(DEVICE_RATE) * 2 * np.pi * 440 / DEVICE_RATE)).astype(
            np.int16
        )
        block = np.stack([tone, tone], axis=1)
        for at in range(0, len(block), 4410):
            sink.write(block[at : at + 4410])
        time.sleep(0.2)
        heard = ref.window(SR // 2, time.monotonic())
        assert np.abs(heard).max() > 4000
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("player", "audio_in", "audio_out", "enabled", "wanted"),
    [
        ("preview", None, None, True, True),  # our speaker, our mic: cancel
        ("auto", None, None, True, True),
        ("log", None, None, True, False),  # plays nothing aloud
        ("preview", "talk.wav", None, True, False),  # no mic: nothing to cancel
        ("preview", None, "out.wav", True, False),  # recorded to a file, not played aloud
        ("preview", None, None, False, False),  # [audio] echo_cancel = false
    ],
)
def test_daemon_cancels_only_when_it_plays_aloud_and_listens(
    player: str, audio_in: str | None, audio_out: str | None, enabled: bool, wanted: bool
) -> None:
    from heymusic.service.assembly import echo_canceller
    from heymusic.service.event_log import EventLog

    settings = Settings.model_validate({"audio": {"echo_cancel": enabled}})
    canceller = echo_canceller(settings, player, audio_in, audio_out, EventLog(True, True))
    assert (canceller is not None) == wanted


def test_daemon_without_libspeexdsp_says_so_and_listens_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from heymusic.service.assembly import echo_canceller
    from heymusic.service.event_log import EventLog

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libspeexdsp.so")
    echo._speexdsp.cache_clear()
    try:
        assert echo_canceller(Settings(), "preview", None, None, EventLog(True, True)) is None
    finally:
        echo._speexdsp.cache_clear()
    (line,) = capsys.readouterr().out.splitlines()
    event = json.loads(line)
    assert event["type"] == "error" and "apt-get install libspeexdsp1" in event["message"]
    assert "listening without it" in event["message"]


def test_a_failing_reference_never_stops_the_music(caplog: pytest.LogCaptureFixture) -> None:
    import miniaudio

    from heymusic.audio.sink import DeviceSink

    class Broken(PlaybackReference):
        calls = 0

        def played(self, block: np.ndarray, rate: int, when: float) -> None:
            Broken.calls += 1
            raise RuntimeError("resampler exploded")

    sink = DeviceSink("", None, 0.3, [miniaudio.Backend.NULL], reference=Broken())
    try:
        block = np.zeros((4410, 2), np.int16)
        for _ in range(10):  # a second of sound: the device keeps taking it
            sink.write(block)
    finally:
        sink.close()
    assert Broken.calls == 1  # dropped after the first failure, said once
    assert "music plays on without echo cancellation" in caplog.text
