"""Streaming wake detection on synthesized speech with the stock model pinned (model-agnostic code)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from heymusic.audio.format import CHUNK_SAMPLES, CHUNK_SECONDS
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake
from heymusic.training.wake.data import dictionary_words
from heymusic.wake.detector import WakeDetector
from tests.conftest import TEST_SEED, mix_noise, read_pcm

STOCK = "hey_jarvis_v0.1.onnx"


def _settings(**wake: object) -> Settings:
    return Settings.model_validate({"wake": {"models": [STOCK], "verifier": False, **wake}})


def _wakes(detector: WakeDetector, audio: np.ndarray) -> list[Wake]:
    found = []
    for n in range(len(audio) // CHUNK_SAMPLES):
        event = detector.process(
            audio[n * CHUNK_SAMPLES : (n + 1) * CHUNK_SAMPLES], (n + 1) * CHUNK_SECONDS
        )
        if isinstance(event, Wake):
            found.append(event)
    return found


def test_wakes_once_in_noise_near_the_end_of_the_phrase(synth: Callable[..., Path]) -> None:
    audio = mix_noise(read_pcm(synth("hey jarvis, skip this song", pad_before=1.0)), snr_db=15)
    wakes = _wakes(WakeDetector(_settings()), audio)
    assert len(wakes) == 1
    assert wakes[0].model == "hey_jarvis_v0.1" and wakes[0].score >= 0.5
    assert 1.3 < wakes[0].audio_s < 3.0  # after "hey jarvis" begins at 1.0 s, before the end


def test_refractory_period_decides_repeat_firing(synth: Callable[..., Path]) -> None:
    audio = read_pcm(synth("hey jarvis", pad_before=1.0))
    assert len(_wakes(WakeDetector(_settings(refractory_seconds=0.0)), audio)) > 1
    assert len(_wakes(WakeDetector(_settings(refractory_seconds=2.0)), audio)) == 1


def test_ordinary_speech_does_not_wake(synth: Callable[..., Path]) -> None:
    words = dictionary_words()
    sentence = " ".join(random.Random(TEST_SEED).sample(words, 12))
    audio = mix_noise(read_pcm(synth(sentence, pad_before=0.5)), snr_db=20)
    assert _wakes(WakeDetector(_settings()), audio) == [], sentence


def test_reports_the_models_it_loaded() -> None:
    detector = WakeDetector(_settings(models=[STOCK, "alexa_v0.1.onnx"]))
    assert sorted(detector.model_names) == ["alexa_v0.1", "hey_jarvis_v0.1"]


def test_missing_model_names_the_file() -> None:
    with pytest.raises(UserError, match=r"no_such_wake\.onnx.*not found"):
        WakeDetector(_settings(models=["no_such_wake.onnx"]))


def test_corrupt_model_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx graph" * 10)
    with pytest.raises(UserError, match=r"broken\.onnx cannot be loaded"):
        WakeDetector(_settings(models=[str(bad)]))


def test_scores_match_stock_openwakeword_bit_for_bit(synth: Callable[..., Path]) -> None:
    """The lean feature buffers (heymusic.wake.features) change what is copied, not what is
    computed: every score equals stock openwakeword's, with chunks of any size it accepts."""
    import openwakeword

    from heymusic.wake.models import load_wake_model, resolve_wake_model

    words = dictionary_words()
    pick = random.Random(TEST_SEED)
    text = " ".join(pick.sample(words, 6))
    clips = [read_pcm(synth(text)), read_pcm(synth("hey jarvis")), read_pcm(synth(text[::-1]))]
    audio = mix_noise(np.concatenate(clips), snr_db=pick.choice([15, 25, 35]))
    paths = [resolve_wake_model(_settings(), name) for name in (STOCK, "hey_music.onnx")]
    ours, stock = (
        load_wake_model(paths),
        openwakeword.Model(wakeword_model_paths=list(map(str, paths))),
    )
    assert type(ours.preprocessor) is not type(stock.preprocessor)  # the lean one is in use
    rng = np.random.default_rng(TEST_SEED)
    start, peak, compared = 0, 0.0, 0
    while (
        len(chunk := audio[start : start + int(rng.choice([400, 1000, 1280, 1280, 2560]))]) >= 400
    ):
        start += len(chunk)
        scores = ours.predict(chunk)
        assert scores == stock.predict(chunk), f"chunk at {start}: {text!r}"
        peak, compared = max(peak, scores["hey_jarvis_v0.1"]), compared + 1
    assert compared > 50
    assert peak > 0.3, text  # the phrase was heard: scores that decide something were compared
    np.testing.assert_array_equal(
        ours.preprocessor.get_features(120), stock.preprocessor.get_features(120)
    )
