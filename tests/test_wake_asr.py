"""Whisper as the wake word's last check: the forced likelihood of the phrase on real speech.

Voices are held-out espeak-ng voices; confusables are drawn at random from the training
generator's list (seeded), so the check is not tuned to a few named phrases.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from heymusic.config import Settings
from heymusic.wake_asr import AsrCheck, spellings
from heymusic.wake_data import CONFUSABLES, OTHER_WAKE_WORDS
from tests.conftest import TEST_SEED, Synth, mix_noise, read_pcm

VOICES = ["en-029+f3", "en-gb-x-gbcwmd+m5", "en-029+max", "en-gb-x-gbcwmd"]
THRESHOLD = Settings().wake.asr_check_threshold


@pytest.fixture(scope="module")
def check(whisper_dir: Path) -> AsrCheck:
    from heymusic.asr import Transcriber

    settings = Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}})
    return AsrCheck(Transcriber(settings).model, "hey music")


def test_spellings_cover_case_and_comma() -> None:
    rng = random.Random(TEST_SEED)
    for _ in range(5):
        words = ["".join(rng.choice("abcdefgh") for _ in range(5)) for _ in range(2)]
        got = spellings(" ".join(words))
        a, b = words
        for want in (f" {a.capitalize()} {b}", f" {a.capitalize()}, {b.capitalize()}"):
            assert want in got
        assert all(s.startswith(" ") for s in got)
    assert spellings("") == []


def _window(audio: np.ndarray, snr_db: float | None = None, seed: int = 0) -> np.ndarray:
    """What the detector hands over: 1.5 s before the phrase's end, 0.5 s after (the end is
    found on the clean audio, then noise is mixed in)."""
    loud = np.nonzero(np.abs(audio) > 0.05 * np.abs(audio).max())[0]
    end = int(loud[-1]) + 1
    if snr_db is not None:
        audio = mix_noise(audio, snr_db=snr_db, seed=seed)
    return audio[max(0, end - 24000) : end + 8000]


def test_hears_the_phrase_from_heldout_voices(synth: Synth, check: AsrCheck) -> None:
    scores = []
    for i, voice in enumerate(VOICES):
        audio = read_pcm(synth("hey music", voice=voice, speed=140 + 15 * i, pad_after=1.0))
        scores.append(check.score(_window(audio, snr_db=20, seed=i)))
    assert sum(s >= THRESHOLD for s in scores) >= len(VOICES) - 1, scores


def test_rejects_random_confusables(synth: Synth, check: AsrCheck) -> None:
    rng = random.Random(TEST_SEED)
    pool = [t for t in CONFUSABLES + OTHER_WAKE_WORDS if "music" not in t.lower()]
    texts = rng.sample(pool, 6) + ["music", "play some music"]
    passed = []
    for i, text in enumerate(texts):
        audio = read_pcm(synth(text, voice=VOICES[i % len(VOICES)], pad_after=1.0))
        if check.score(_window(audio)) >= THRESHOLD:
            passed.append(text)
    assert len(passed) <= 1, passed


def test_silence_and_short_audio_score_zero(check: AsrCheck) -> None:
    assert check.score(np.zeros(100, np.int16)) == 0.0
    assert check.score(np.zeros(32000, np.int16)) < THRESHOLD
