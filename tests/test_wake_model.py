"""The shipped "hey music" model through the daemon's streaming detector (all three stages:
openWakeWord model, embedding verifier, Whisper hearing the phrase).

Voices here are held out from training (whole espeak-ng base voices/variants), so
these are misses and false wakes the model has never been fitted to.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from heymusic.config import Settings, models_dir
from heymusic.errors import UserError
from heymusic.events import Wake, WakeCandidate
from heymusic.training.wake.data import (
    CONFUSABLES,
    HELDOUT_BASES,
    HELDOUT_VARIANTS,
    OTHER_WAKE_WORDS,
    Speaker,
    build_stream,
    dictionary_words,
    midi_music,
    to_int16,
)
from heymusic.training.wake.levels import active_span
from heymusic.wake.detector import GROUP_CHUNKS, WakeDetector
from tests.conftest import TEST_SEED, Synth, read_pcm

SR = 16000
HELDOUT_VOICES = [
    "en-029+f3",
    "en-gb-x-gbcwmd+m5",
    "en-029+klatt2",
    "en-gb-x-gbcwmd+Annie",
    "en-029+max",
    "en-gb-x-gbcwmd",
]


def _settings(**wake: object) -> Settings:
    """The shipped defaults (the operating point `heymusic wake-eval` chose, see README)."""
    return Settings.model_validate({"wake": {"models": ["hey_music.onnx"], **wake}})


@pytest.fixture(scope="module")
def whisper(whisper_dir: Path) -> object:
    from heymusic.speech.asr import Transcriber

    return Transcriber(Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}})).model


def _wakes(audio: np.ndarray, whisper: object) -> list[float]:
    det = WakeDetector(_settings(), whisper)
    return [e.audio_s for e in det.events(audio) if isinstance(e, Wake)]


def test_test_voices_are_held_out() -> None:
    for voice in HELDOUT_VOICES:
        base, _, variant = voice.partition("+")
        assert Speaker("espeak", base, variant).heldout, voice
        assert base in HELDOUT_BASES or variant in HELDOUT_VARIANTS


def test_loaded_model_names() -> None:
    from openwakeword.model import Model

    model = Model(wakeword_model_paths=[str(models_dir() / "hey_music.onnx")])
    assert list(model.models) == ["hey_music"]
    assert WakeDetector(_settings()).model_names == ["hey_music"]


def test_heldout_voices_detected(synth: Synth, whisper: object) -> None:
    detected = 0
    for i, voice in enumerate(HELDOUT_VOICES):
        audio = read_pcm(synth("hey music", voice=voice, speed=140 + 10 * i, pad_before=1.5))
        detected += bool(_wakes(audio, whisper))
    # the evaluated false-reject rate on held-out voices is a few percent: allow one miss
    assert detected >= len(HELDOUT_VOICES) - 1


def test_a_recording_that_ends_with_the_phrase_still_wakes(synth: Synth, whisper: object) -> None:
    """`heymusic simulate` on a clip cut right after "hey music": the 0.5 s Whisper waits
    for never comes, so at the end of input it hears the audio there is (as wake-eval does
    at a stream's end)."""
    detected = 0
    for i, voice in enumerate(HELDOUT_VOICES):
        said = synth("hey music", voice=voice, speed=140 + 10 * i, pad_before=1.5, pad_after=0.0)
        detected += bool(_wakes(read_pcm(said), whisper))
    assert detected >= len(HELDOUT_VOICES) - 1


CONFUSABLE_VOICES = ("en-us", "en-029+f3")


@pytest.mark.parametrize("text", ["hey jarvis", "music", "play some music", "hey mister"])
def test_confusables_do_not_wake(synth: Synth, whisper: object, text: str) -> None:
    for voice in CONFUSABLE_VOICES:
        audio = read_pcm(synth(text, voice=voice, pad_before=1.5))
        assert _wakes(audio, whisper) == [], (text, voice)


def test_random_near_misses_rarely_wake(synth: Synth, whisper: object) -> None:
    """Near-misses said alone do wake it now and then (bench/wake_confusables.py: 8 % for
    held-out speakers), so a random draw is held to a rate, not to none. Said by these two
    voices, the generator's 60 near-misses and other wake words woke the shipped models 8
    times in 120 ("they music", "hey muse", ...): 12 drawn at random give more than 4
    wakes in 1 draw of ~40; with the two-member models shipped before (18 in 120), 1 in 3."""
    texts = random.Random(TEST_SEED).sample(CONFUSABLES + OTHER_WAKE_WORDS, 12)
    woke = [
        (text, voice)
        for text in texts
        for voice in CONFUSABLE_VOICES
        if _wakes(read_pcm(synth(text, voice=voice, pad_before=1.5)), whisper)
    ]
    assert len(woke) <= 4, woke


def test_the_verifier_bar_while_music_plays(synth: Synth, whisper: object) -> None:
    """The daemon tells the detector when its player plays; the verifier then holds a
    candidate to `verifier_threshold_playing` instead. With bars no score reaches (1.0;
    the verifier's highest over 8,801 eval fires is 0.9997) and every score passes (0.0),
    the same "hey music" is turned down before Whisper in a quiet room and wakes with
    music playing."""
    audio = read_pcm(synth("hey music", voice="en-gb-x-gbcwmd", pad_before=1.5))

    def events(playing: bool) -> list[Wake | WakeCandidate]:
        settings = _settings(verifier_threshold=1.0, verifier_threshold_playing=0.0)
        det = WakeDetector(settings, whisper)
        det.music_playing = playing
        return det.events(audio)

    quiet = events(playing=False)
    assert quiet and all(isinstance(e, WakeCandidate) and e.asr_score is None for e in quiet)
    assert [type(e) for e in events(playing=True)] == [Wake]


def test_music_alone_does_not_wake(whisper: object) -> None:
    rng = np.random.default_rng(7)
    music = midi_music(20.0, rng)
    audio = to_int16(music / (np.abs(music).max() + 1e-9) * 0.5)
    assert _wakes(audio, whisper) == []


def test_the_verifier_does_not_pass_the_silence_a_detector_starts_with() -> None:
    """openWakeWord's buffer starts as embeddings of digital silence; its first frames can
    fire stage 1, and the verifier, never trained on that silence, passed them."""
    verified_at_start = []
    for seed in range(12340, 12346):
        audio = build_stream("speech", "eval", 4.0, seed=seed).audio
        det = WakeDetector(_settings(asr_check=False))
        for event in det.events(audio[: 2 * SR]):
            assert not isinstance(event, Wake), (seed, event)
            verified_at_start.append(event.verifier_score)
    assert all(score < 0.5 for score in verified_at_start), verified_at_start


def test_three_wakes_at_known_times(synth: Synth, whisper: object) -> None:
    """Held-out voices each say "hey music" 0.8 s after someone else spoke: every wake
    comes at a phrase's end, once per phrase. Speech right before the phrase is where both
    shipped stages miss most (a quarter of such phrases in bench/wake_after_speech.py):
    one miss of three is allowed, as in the tests above."""
    parts: list[np.ndarray] = []
    ends: list[float] = []
    fillers = ["the weather is nice today", "I am going to the shop", "that was a good song"]
    for i, voice in enumerate(random.Random(TEST_SEED).sample(HELDOUT_VOICES, 3)):
        parts.append(read_pcm(synth(fillers[i], voice="en-us+m3", pad_before=0.3, pad_after=0.8)))
        wake = read_pcm(synth("hey music", voice=voice, pad_before=0.0, pad_after=0.0))
        parts.append(wake)
        # espeak-ng leaves silence after the phrase: its end is where the sound stops
        ends.append((sum(len(p) for p in parts) - len(wake) + active_span(wake)[1]) / SR)
        parts.append(
            read_pcm(synth("play something mellow", voice=voice, pad_before=0.2, pad_after=2.0))
        )
    wakes = _wakes(np.concatenate(parts), whisper)
    answered = [min(ends, key=lambda end: abs(t - end)) for t in wakes]
    assert all(abs(t - end) <= 0.5 for t, end in zip(wakes, answered, strict=True)), (wakes, ends)
    assert len(set(answered)) == len(wakes) >= 2, (wakes, ends)


def test_skipping_silence_changes_no_score_it_computes(synth: Synth) -> None:
    """Quiet stretches (silence, low hiss) of random length between random speech and
    held-out "hey music": the detector that skips them gives every chunk it scores the
    score, and every event, of the one that scores all chunks, and skips the digital
    silence once 2.1 s of it passed (webrtcvad may call hiss after speech a voice)."""
    rng = np.random.default_rng(TEST_SEED)
    pick = random.Random(TEST_SEED)
    words = dictionary_words()
    parts: list[np.ndarray] = []
    skippable = 0
    for voice in pick.sample(HELDOUT_VOICES, 3):
        hiss = rng.standard_normal(int(rng.uniform(1, 3) * SR)) * 10 ** rng.uniform(-3.5, -2.2)
        silent_chunks = int(rng.uniform(3, 6) / 0.08)
        skippable += silent_chunks - 28  # 26 chunks before the gate shuts, 2 for chunk edges
        sentence = " ".join(pick.sample(words, 5))
        parts += [to_int16(hiss), np.zeros(silent_chunks * 1280, np.int16)]
        parts += [read_pcm(synth(sentence, pad_after=0.3)), read_pcm(synth("hey music", voice))]
    audio = np.concatenate([*parts, np.zeros(3 * SR, np.int16)])

    def run(skip: bool) -> tuple[dict[int, dict[str, float]], list[object]]:
        det = WakeDetector(_settings(asr_check=False, skip_silence=skip))
        scores: dict[int, dict[str, float]] = {}
        predict, events = det._model.predict, []

        def record(chunk: np.ndarray) -> dict[str, float]:
            scores[k] = predict(chunk)
            return scores[k]

        det._model.predict = record
        for k in range(len(audio) // 1280):
            event = det.process(audio[k * 1280 : (k + 1) * 1280], (k + 1) * 0.08)
            events += [event] if event is not None else []
        return scores, events

    every, every_events = run(skip=False)
    some, some_events = run(skip=True)
    assert {k: every[k] for k in some} == some
    assert some_events == every_events
    assert any(isinstance(e, Wake) for e in every_events)  # the scores compared decided a wake
    assert len(every) - len(some) >= skippable, (len(some), len(every))


def test_scoring_chunks_in_groups_changes_no_score_and_delays_no_wake(whisper: object) -> None:
    """A random stream of held-out "hey music" among other speech and near-misses, with a
    reset (as after a command) at a random chunk: scored in groups, every chunk gets the
    score, and the stream the events (with `finish`), of scoring one chunk at a time; each
    Wake Whisper checked comes on the first chunk `AFTER_S` after its fire, as Whisper's
    wait makes it; one the verifier was sure of (forced here with the sure bar at the
    verifier's) comes at most `GROUP_CHUNKS` - 1 chunks after its fire, ahead of any log
    line, with that wait in its `latency_ms`; without Whisper a Wake comes on the chunk
    that fired."""
    from heymusic.wake.asr_check import AFTER_S

    rng = np.random.default_rng(TEST_SEED)
    audio = np.concatenate(
        [
            build_stream(kind, "eval", 20.0, seed=int(rng.integers(1 << 30))).audio
            for kind in ("pos", "confusable")
        ]
    )
    reset_at = int(rng.integers(100, len(audio) // 1280 - 100))

    def run(
        group: int | None, asr: bool, sure: float = 1.0
    ) -> tuple[list[dict[str, float]], list[tuple[int, Wake | WakeCandidate]]]:
        det = WakeDetector(_settings(asr_check=asr, verifier_sure=sure), whisper)
        if group is not None:
            det.group_chunks = group
        scores: list[dict[str, float]] = []
        predict, events = det._model.predict, []

        def record(chunk: np.ndarray) -> dict[str, float]:
            scores.append(predict(chunk))
            return scores[-1]

        det._model.predict = record
        for k in range(len(audio) // 1280):
            if k == reset_at:
                det.reset()
            event = det.process(audio[k * 1280 : (k + 1) * 1280], (k + 1) * 0.08)
            events += [(k, event)] if event is not None else []
        return scores, events + [(len(audio) // 1280, e) for e in det.finish()]

    grouped, grouped_events = run(None, asr=True)
    single, single_events = run(1, asr=True)
    assert grouped == single
    # reset() scores the chunks still held but drops their events (stale after a command):
    # a rejected candidate fired in the last GROUP_CHUNKS chunks before it may be missing
    before_reset = (reset_at - GROUP_CHUNKS) * 0.08, reset_at * 0.08 + 1e-6

    def kept(events: list[tuple[int, Wake | WakeCandidate]]) -> list[Wake | WakeCandidate]:
        return [
            e
            for _, e in events
            if isinstance(e, Wake) or not before_reset[0] <= e.audio_s <= before_reset[1]
        ]

    def wakes(events: list[tuple[int, Wake | WakeCandidate]]) -> list[tuple[int, Wake]]:
        return [(k, e) for k, e in events if isinstance(e, Wake)]

    assert sorted(kept(grouped_events), key=lambda e: e.audio_s) == sorted(
        kept(single_events), key=lambda e: e.audio_s
    ), reset_at
    assert {e for _, e in grouped_events} <= {e for _, e in single_events}, reset_at

    def checked(events: list[tuple[int, Wake | WakeCandidate]]) -> list[tuple[int, Wake]]:
        """The wakes Whisper checked (the others came without its wait)."""
        return [(k, e) for k, e in wakes(events) if (k + 1) * 0.08 - e.audio_s > 0.1]

    assert checked(grouped_events) and len(wakes(grouped_events)) < len(grouped_events)
    assert checked(grouped_events) == checked(single_events)
    for k, wake in checked(grouped_events):
        assert (k + 1) * 0.08 - wake.audio_s == pytest.approx(0.08 * np.ceil(AFTER_S / 0.08 - 1e-6))

    _, sure_events = run(None, asr=True, sure=_settings().wake.verifier_threshold)
    sure_wakes = wakes(sure_events)
    assert sure_wakes
    for k, wake in sure_wakes:
        held_s = (k + 1) * 0.08 - wake.audio_s
        assert -1e-6 < held_s < GROUP_CHUNKS * 0.08 - 1e-6
        assert wake.latency_ms >= 1000 * held_s - 1e-3
    _, without_whisper = run(None, asr=False)
    assert any(isinstance(e, Wake) for _, e in without_whisper)


def test_missing_model_is_one_clear_error() -> None:
    with pytest.raises(UserError, match="not found"):
        WakeDetector(Settings.model_validate({"wake": {"models": ["no_such_model.onnx"]}}))


def test_corrupt_model_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "hey_music.onnx"
    bad.write_bytes(b"this is not an onnx file" * 10)
    with pytest.raises(UserError, match="cannot be loaded"):
        WakeDetector(Settings.model_validate({"wake": {"models": [str(bad)]}}))


def test_corrupt_verifier_is_one_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "hey_music.onnx"
    shutil.copy(models_dir() / "hey_music.onnx", model)
    (tmp_path / "hey_music_verifier.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="verifier"):
        WakeDetector(Settings.model_validate({"wake": {"models": [str(model)]}}))
    # and with the second stage switched off, the first stage alone still loads
    det = WakeDetector(
        Settings.model_validate({"wake": {"models": [str(model)], "verifier": False}})
    )
    assert det.model_names == ["hey_music"]


def test_the_eval_fires_where_the_detector_does(whisper: object, tmp_path: Path) -> None:
    """wake-eval sweeps thresholds offline, from per-frame scores of cached features; it
    measures the daemon only if its fires, and the verifier and Whisper scores they got, are
    the detector's own (frame alignment, the verifier reading openWakeWord's buffer and
    padding it at a stream's start, a rejected frame starting no refractory period, Whisper
    hearing the same window, also when the input ends before it)."""
    from heymusic.audio.format import CHUNK_SECONDS, SAMPLE_RATE
    from heymusic.training.wake.data import frame_end_s
    from heymusic.training.wake.evaluate import WhisperScores, cascade, frame_scores, window_scores
    from heymusic.wake.asr_check import AFTER_S
    from heymusic.wake.features import Features, cpu_session
    from heymusic.wake.verifier import Verifier

    cfg = _settings().wake
    stage1 = cpu_session(models_dir() / "hey_music.onnx")
    verifier = Verifier({"hey_music": models_dir() / "hey_music_verifier.onnx"})
    refractory = round(cfg.refractory_seconds / CHUNK_SECONDS)
    rng = np.random.default_rng(TEST_SEED)
    pos = build_stream("pos", "eval", 30.0, seed=int(rng.integers(1 << 30)))
    confusable = build_stream("confusable", "eval", 30.0, seed=int(rng.integers(1 << 30)))
    # nothing said in the first 2 s: openWakeWord's scores there read its start-up buffer
    # (embeddings of random noise), which the eval's offline scores leave out
    quiet = round(2.0 * SAMPLE_RATE)
    streams = [
        ("pos", np.pad(pos.audio, (quiet, 0))),
        ("confusable", np.pad(confusable.audio, (quiet, 0))),
    ]
    onset = max(0, round((pos.phrases[0][0] - 0.1) * SAMPLE_RATE))
    phrase = pos.audio[onset : onset + 3 * SAMPLE_RATE]
    for start_s in (2.0, 2.2, 2.4):  # said before the verifier's 3.4 s are heard
        streams.append(
            (
                f"phrase at {start_s} s",
                np.pad(phrase, (quiet + round((start_s - 2.1) * SAMPLE_RATE), 0)),
            )
        )
    # input that ends before Whisper's AFTER_S after the fire, and not on a whole chunk
    for k, (start, end) in enumerate(pos.phrases[:3]):
        cut = round((end + AFTER_S - 0.2) * SAMPLE_RATE) + 77
        said = pos.audio[round(start * SAMPLE_RATE) : cut]
        streams.append((f"cut after phrase {k}", np.pad(said, (quiet + SAMPLE_RATE, 0))))
    checked = early = late = 0
    for kind, audio in streams:
        # a bar Whisper never clears, and none the verifier is sure past: every burst the
        # first two stages pass comes back
        det = WakeDetector(_settings(asr_check_threshold=1.0, verifier_sure=1.0), whisper)
        heard = [e for e in det.events(audio) if e.asr_score is not None]

        emb = Features().embed(audio)
        s1 = frame_scores(stage1, emb, 16)
        s2 = window_scores(emb, verifier.score, verifier.frames, np.nonzero(s1 >= cfg.threshold)[0])
        fired = cascade(s1, s2, cfg.threshold, cfg.verifier_threshold, refractory)
        assert [e.audio_s for e in heard] == pytest.approx(list(frame_end_s(len(s1))[fired]))
        assert [e.verifier_score for e in heard] == pytest.approx(list(s2[fired]), abs=1e-4)
        offline = WhisperScores(whisper, "hey music", tmp_path)
        expected = [offline.score(kind, audio, int(i)) for i in fired]
        assert [e.asr_score for e in heard] == pytest.approx(expected, rel=1e-4)
        checked += len(fired)
        early += int((fired < verifier.frames - 1).sum())
        late += int((frame_end_s(len(s1))[fired] + AFTER_S > len(audio) / SAMPLE_RATE).sum())
    assert checked >= 3  # the phrases of the positive stream at least
    assert early >= 1  # a phrase heard before the verifier's window fills
    assert late >= 1  # a phrase the input ends right after


def test_two_evals_side_by_side_keep_both_whisper_scores(
    synth: Synth, whisper: object, tmp_path: Path
) -> None:
    """Two `wake-eval`s of two models on the same cached audio each save Whisper's scores
    of their own fires: neither overwrites the other's."""
    from heymusic.training.wake.evaluate import WhisperScores

    rng = random.Random(TEST_SEED)
    audio = read_pcm(synth("hey music", voice=rng.choice(["en-us", "en-gb", "en-us+f3"])))
    frames = rng.sample(range(8, len(audio) // 1280), 2)
    first, second = (WhisperScores(whisper, "hey music", tmp_path) for _ in range(2))
    scores = [first.score("said", audio, frames[0]), second.score("said", audio, frames[1])]
    first.save()
    second.save()
    (saved,) = tmp_path.glob("whisper_scores_*.json")
    assert sorted(int(k.split(":")[1]) for k in json.loads(saved.read_text())) == sorted(frames)
    again = WhisperScores(whisper, "hey music", tmp_path)
    assert [again.score("said", audio, f) for f in frames] == scores
