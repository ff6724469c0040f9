"""The wake word's generated data: the conditions `wake-eval` reports are what they say."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from heymusic.audio.format import SAMPLE_RATE
from heymusic.errors import UserError
from heymusic.training.wake import data as wake_data
from heymusic.training.wake.data import build_stream, recorded_clips
from heymusic.training.wake.evaluate import AFTER_SPEECH, AFTER_SPEECH_PAUSE_S, positive_stream
from heymusic.training.wake.train import EVAL_PLAN, TRAIN_PLAN


def _envelope_variation(audio: np.ndarray) -> float:
    """Spread of 25 ms RMS values: ~0.05 for steady noise, far more for speech."""
    frames = audio[: len(audio) // 400 * 400].astype(np.float64).reshape(-1, 400)
    env = np.sqrt(np.mean(frames**2, axis=1))
    return float(env.std() / env.mean())


def _gaps_and_speech(stream_audio: np.ndarray, phrases: np.ndarray) -> tuple[np.ndarray, float]:
    first = int(phrases[0, 0] * SAMPLE_RATE)
    spans = [stream_audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in phrases]
    speech_power = float(np.mean([np.mean(s.astype(np.float64) ** 2) for s in spans]))
    return stream_audio[: first - 800], speech_power


def _fresh_seeds(n: int) -> list[object]:
    """`n` seeds drawn anew each run, under fixed test ids: pytest-xdist's workers collect
    the same tests only when the ids agree (the failing seed is in each assertion)."""
    seeds = np.random.default_rng().integers(1 << 30, size=n).tolist()
    return [pytest.param(seed, id=f"draw{i}") for i, seed in enumerate(seeds)]


@pytest.mark.parametrize("seed", [1, 2])
def test_eval_noise_is_steady_noise_and_babble_is_talk_at_10_db(seed: int) -> None:
    noise = positive_stream("noise_10db", 3, seed)
    babble = positive_stream("babble_10db", 3, seed)
    for stream, steady in ((noise, True), (babble, False)):
        gap, speech_power = _gaps_and_speech(stream.audio, stream.phrases)
        variation = _envelope_variation(gap)
        assert (variation < 0.2) if steady else (variation > 0.25), (stream.name, variation)
        noise_power = float(np.mean(gap.astype(np.float64) ** 2))
        snr = 10 * np.log10((speech_power - noise_power) / noise_power)
        assert 7 < snr < 13, (stream.name, snr)


def test_recorded_voices_are_only_in_the_eval() -> None:
    """Real voices are the eval's check on synthetic training: never trained on."""
    minutes = sum(len(c) for c in recorded_clips()) / SAMPLE_RATE / 60
    assert minutes > 10, minutes
    assert "recorded" in EVAL_PLAN and "recorded" not in TRAIN_PLAN
    with pytest.raises(ValueError):
        build_stream("recorded", "train", 10.0, 0)


@pytest.mark.parametrize("seed", _fresh_seeds(2))
def test_recorded_stream_is_voice_lines_and_pauses_without_the_phrase(seed: int) -> None:
    stream = build_stream("recorded", "eval", 20.0, seed)
    assert stream.phrases == []
    assert len(stream.audio) >= 20 * SAMPLE_RATE
    assert _envelope_variation(stream.audio) > 0.25, seed  # talk and pauses, not a steady bed


def test_missing_recorded_voices_say_which_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wake_data, "RECORDED_ARCHIVE", tmp_path / "base.wz")
    recorded_clips.cache_clear()
    try:
        with pytest.raises(UserError, match="apt-get install warzone2100-data"):
            build_stream("recorded", "eval", 10.0, 0)
    finally:
        recorded_clips.cache_clear()


def test_piper_speech_is_the_same_in_every_process() -> None:
    """Eval and training audio are rebuilt in fresh work dirs and on CI: piper's sampling
    noise must not make them differ (espeak-ng and the music are deterministic anyway)."""
    import subprocess
    import sys

    code = (
        "import hashlib, numpy as np\n"
        "from heymusic.training.wake import data as w\n"
        f"rng = np.random.default_rng({np.random.default_rng().integers(1 << 30)})\n"
        "spk = w.speakers('eval', rng, piper=1.0)\n"
        "clips = [w.say(t, spk, rng) for t in ('hey music', 'play something calm')]\n"
        "print(spk.engine, hashlib.sha1(b''.join(c.tobytes() for c in clips)).hexdigest())\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    first, second = (r.stdout.split() for r in runs)
    assert first[0] == "piper"
    assert first == second


def _first_stream_with_piper(seed: int) -> tuple[int, str]:
    """Worker: the first stream from `seed` up in which piper speaks, and its audio's hash."""
    spoken = []
    say = wake_data._Piper.say

    def counted(self: wake_data._Piper, text: str, spk: wake_data.Speaker) -> np.ndarray:
        spoken.append(text)
        return say(self, text, spk)

    wake_data._Piper.say = counted  # type: ignore[method-assign]  # a fresh worker process
    while True:  # most streams have piper in them; without it the test could not fail
        audio = build_stream("pos", "train", 20.0, seed).audio
        if spoken:
            return seed, hashlib.sha1(audio.tobytes()).hexdigest()
        seed += 1


def _stream_after_other_work(seed: int) -> str:
    """Worker: build another stream and speak other piper text first, then `seed`'s stream."""
    build_stream("speech", "train", 20.0, seed + 1)
    rng = np.random.default_rng(seed)
    wake_data._piper().say("something else entirely", wake_data.speakers("train", rng, 1.0))
    return hashlib.sha1(build_stream("pos", "train", 20.0, seed).audio.tobytes()).hexdigest()


def test_a_stream_sounds_the_same_whatever_its_worker_built_before_it() -> None:
    """Training builds streams in two spawned worker processes, each taking whichever stream
    is next: a stream's audio (piper's sampling noise included) must not depend on what its
    worker spoke before.

    The workers here are spawned as training spawns them. Until 2026-11-27 this compared
    two builds inside the test process, and one CI run (stop 19) found the stream's first
    seconds (espeak speech over a music track, not piper) a little different after the 361
    tests before it in that process. 190 seeds rebuilt here did not reproduce it: alone,
    two processes at once, and after the whole suite. Training never builds in such a
    process, so the test checks the workers training has."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")
    start = int(np.random.default_rng().integers(1 << 30))
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        seed, first = pool.submit(_first_stream_with_piper, start).result()
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        again = pool.submit(_stream_after_other_work, seed).result()
    assert first == again, seed


@pytest.mark.parametrize(("kind", "bed"), [("pos_music", "music"), ("pos_babble", "babble")])
def test_wake_phrases_over_a_bed_have_it_under_every_pause(
    kind: str, bed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "pos_music" streams keep the phrases over music that Kokoro voices and rooms thinned
    out, "pos_babble" puts them over other people's talk: the bed lies under the whole
    stream and fills every pause, not silence or noise."""
    beds: list[tuple[str, int]] = []
    background = wake_data.background

    def noted(bed_kind: str, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
        beds.append((bed_kind, n))
        return background(bed_kind, split, n, rng)

    monkeypatch.setattr(wake_data, "background", noted)
    stream = build_stream(kind, "train", 20.0, int(np.random.default_rng().integers(1 << 30)))
    assert len(stream.phrases) >= 2
    assert beds == [(bed, len(stream.audio))]
    _, speech_power = _gaps_and_speech(stream.audio, np.asarray(stream.phrases))
    audio = stream.audio[: len(stream.audio) // 400 * 400].astype(np.float64)
    frame_power = np.mean(audio.reshape(-1, 400) ** 2, axis=1)
    # the quietest quarter of the stream (pauses, between notes) is still music well above
    # silence; a pause without a bed would be 50-70 dB under the speech
    quietest = float(np.percentile(frame_power, 25))
    assert 10 * np.log10(speech_power / quietest) < 35


def test_near_miss_streams_are_mostly_near_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "near_miss" streams: near-miss lines ("hey museum") far more often than the
    "confusable" kind's 60 %, and never a wake phrase."""
    said: dict[str, list[str]] = {"near_miss": [], "confusable": []}
    speak = wake_data.speak
    kind = ""

    def noted(spk: wake_data.Speaker, category: str, text, rng):  # type: ignore[no-untyped-def]
        said[kind].append(category)
        return speak(spk, category, text, rng)

    monkeypatch.setattr(wake_data, "speak", noted)
    # babble under a stream is said by `speak` too: a quiet bed instead, so only the
    # stream's own lines are counted
    monkeypatch.setattr(wake_data, "background", lambda kind, split, n, rng: np.zeros(n))
    seed = int(np.random.default_rng().integers(1 << 30))
    for kind in said:
        for i in range(3):
            assert build_stream(kind, "train", 60.0, seed + i).phrases == []
    share = {k: c.count("near_miss") / len(c) for k, c in said.items()}
    assert "wake" not in said["near_miss"]
    # 65-100 lines a kind: their shares fall on the wrong side of 0.75 well under 1 % of the
    # time (the 30-40 lines of 20 s streams put "confusable" at 0.84 in a CI run)
    assert share["near_miss"] > 0.75 > share["confusable"], share


def _loudest_20ms_dbfs(audio: np.ndarray) -> float:
    frames = audio[: len(audio) // 320 * 320].astype(np.float64).reshape(-1, 320) / 32768
    return float(10 * np.log10(np.max(np.mean(frames**2, axis=1)) + 1e-12))


@pytest.mark.parametrize("seed", _fresh_seeds(2))
def test_after_speech_phrases_follow_a_sentence_by_a_short_pause(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """ "pos_after" streams: every wake phrase follows someone's sentence by at most
    AFTER_SPEECH_GAP_S (plus the synthesizers' own silent edges). In "pos" streams most
    phrases follow a second or more of silence, and the verifier had learned the pause."""
    monkeypatch.setattr(wake_data, "background", lambda kind, split, n, rng: np.zeros(n))
    lead_s = wake_data.AFTER_SPEECH_GAP_S[1] + 0.4
    stream = build_stream("pos_after", "train", 30.0, seed)
    assert len(stream.phrases) >= 2
    before = [
        _loudest_20ms_dbfs(
            stream.audio[int((start - lead_s) * SAMPLE_RATE) : int(start * SAMPLE_RATE)]
        )
        for start, _ in stream.phrases
        if start > lead_s
    ]
    # speech is said at -35 to -15 dBFS; the mic floor, when there is one, is under -50
    assert before and min(before) > -45, (seed, before)


@pytest.mark.parametrize("seed", _fresh_seeds(1))
def test_eval_after_speech_phrases_follow_another_sentence(seed: int) -> None:
    """wake-eval's "after_speech" phrases come 0.2-1 s after someone's sentence; the same
    draw's clean phrases after 1.5 s or more of silence."""
    lead_s = AFTER_SPEECH_PAUSE_S[1] + 0.3
    before = {}
    for condition in (AFTER_SPEECH, "clean"):
        stream = positive_stream(condition, 3, seed)
        before[condition] = [
            _loudest_20ms_dbfs(
                stream.audio[int((start - lead_s) * SAMPLE_RATE) : int(start * SAMPLE_RATE)]
            )
            for start, _ in stream.phrases
        ]
    assert min(before[AFTER_SPEECH]) > -40, (seed, before)
    assert max(before["clean"]) < -60, (seed, before)
