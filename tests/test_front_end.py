"""The audio front end: WebRTC noise suppression per path, on real speech in real noise."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from heymusic.audio.front_end import FrontEnd
from heymusic.config import ConfigError, FrontEndSettings, Settings, load_settings
from heymusic.players.log import LogPlayer
from heymusic.service.assembly import NoRecommender, build_stages
from heymusic.service.pipeline import Pipeline
from tests.conftest import TEST_SEED, mix_noise, read_pcm

REQUESTS = ["play some jazz", "skip this song", "turn it down a bit", "play something calm"]


def _db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-9))


def _noisy_request(synth: Callable[..., Path], seed: int) -> tuple[np.ndarray, slice, slice]:
    """A random request in white noise at 10 dB: the audio, a noise-only and a speech part."""
    rng = random.Random(seed)
    clean = read_pcm(synth(f"hey music, {rng.choice(REQUESTS)}", pad_before=2.0, pad_after=1.0))
    voiced = np.flatnonzero(np.abs(clean) > 0.05 * np.abs(clean).max())
    return mix_noise(clean, 10, seed), slice(16000, 32000), slice(voiced[0], voiced[-1])


def test_noise_suppression_lowers_the_noise_and_keeps_the_voice(
    synth: Callable[..., Path],
) -> None:
    noisy, noise_only, speech = _noisy_request(synth, TEST_SEED)
    heard = FrontEnd(FrontEndSettings(wake_noise_suppression=3)).process_all(noisy, "wake")
    assert len(heard) == len(noisy)
    assert _db(noisy[noise_only]) - _db(heard[noise_only]) >= 10  # ~17 dB measured
    assert abs(_db(noisy[speech]) - _db(heard[speech])) <= 3


def test_each_path_hears_its_own_settings() -> None:
    """Defaults: only the wake detector's audio is processed (high-passed); Whisper and the
    VAD hear the source itself, and paths with equal settings share one processor."""
    chunk = np.random.default_rng(TEST_SEED).normal(0, 2000, 1280).astype(np.int16)
    default = FrontEnd(FrontEndSettings()).process(chunk)
    assert default.vad is chunk and default.asr is chunk
    assert not np.array_equal(default.wake, chunk)
    shared = FrontEnd(FrontEndSettings(vad_noise_suppression=2, asr_noise_suppression=2))
    paths = shared.process(chunk)
    assert paths.vad is paths.asr and paths.vad is not chunk
    untouched = FrontEnd(None).process(chunk)
    assert untouched.wake is chunk and untouched.asr is chunk and not FrontEnd(None).active


def test_a_bad_front_end_setting_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[front_end]\nasr_noise_suppression = 7\n")
    with pytest.raises(ConfigError, match="front_end.asr_noise_suppression"):
        load_settings(config)


@pytest.mark.parametrize("asr_noise_suppression", [0, 3])
def test_whisper_hears_what_its_path_is_set_to(
    whisper_dir: Path, synth: Callable[..., Path], asr_noise_suppression: int
) -> None:
    """The daemon's loop hands the recorder (Whisper's audio) its own path's audio: the
    source itself by default, noise-suppressed when `asr_noise_suppression` is set."""
    settings = Settings.model_validate(
        {
            "wake": {"models": ["hey_jarvis_v0.1.onnx"], "verifier": False},
            "asr": {"model_dir": str(whisper_dir)},
            "front_end": {"asr_noise_suppression": asr_noise_suppression},
        }
    )
    clean = read_pcm(synth("hey jarvis", pad_before=2.5, pad_after=0.3))
    command = read_pcm(synth("pause the music", pad_after=2.0))
    audio = mix_noise(np.concatenate([clean, command]), 15, TEST_SEED)
    pipeline = Pipeline(build_stages(settings, LogPlayer(), NoRecommender("unused")))
    heard_at = 0
    for start in range(0, len(audio) - 1279, 1280):
        if any(e.type == "wake" for e in pipeline.feed(audio[start : start + 1280])):
            heard_at = start + 1280
            break
    assert heard_at, "no wake"
    utterance = pipeline.recorder.utterance()
    raw = audio[heard_at - len(utterance) : heard_at]
    quiet = slice(0, 8000)  # the pre-roll starts in the noise before the phrase
    if asr_noise_suppression:
        assert _db(raw[quiet]) - _db(utterance[quiet]) >= 10
    else:
        assert np.array_equal(utterance, raw)
