"""Shared fixtures: isolated XDG dirs, the shared catalog, speech made with espeak-ng."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECT_DIR = Path(__file__).resolve().parents[1]
SHARED_CSV = PROJECT_DIR.parent / "shared" / "data" / "spotify_songs.csv"
SAMPLE_RATE = 16000
#: Seed of the tests' random draws (titles, templates, noise): CI runs are reproducible, and
#: HEYMUSIC_TEST_SEED=<n> draws another sample.
TEST_SEED = int(os.environ.get("HEYMUSIC_TEST_SEED", "0"))

if _WORKER := os.environ.get("PYTEST_XDIST_WORKER"):
    # Each pytest-xdist worker (and what it starts) compiles librosa's numba functions into
    # a cache of its own: two processes compiling the same gufunc into one cache leave it
    # inconsistent (numba#10128), and the beat tracker then segfaulted, in a fresh clone's
    # first run. The daemon's own analysis pool compiles in one worker first (music/analysis).
    os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"heymusic-numba-{_WORKER}")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config/state/cache dirs: never touch the user's."""
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("HEYMUSIC_CONFIG", raising=False)
    yield tmp_path


@pytest.fixture(scope="session")
def shared_csv() -> Path:
    """The shared Spotify songs table; the suite needs it (CI lays ../shared beside the clone)."""
    if not SHARED_CSV.exists():
        pytest.fail(f"{SHARED_CSV} is missing: put the shared folder beside the checkout")
    return SHARED_CSV


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The joined Whisper base dir, built once per run (point [asr] model_dir at it)."""
    from heymusic.config import Settings
    from heymusic.speech.asr import whisper_model_dir

    cache = tmp_path_factory.mktemp("whisper-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        return whisper_model_dir(Settings())


Synth = Callable[..., Path]


@pytest.fixture(scope="session")
def synth(speech_cache: Path) -> Synth:
    """Speak `text` with espeak-ng into a 16 kHz mono int16 WAV (cached per run).

    Args: text, voice (espeak-ng voice, e.g. "en-us", "en-gb+f3"), speed (wpm),
    pad_before/pad_after seconds of silence.
    """

    def make(
        text: str,
        voice: str = "en-us",
        speed: int = 150,
        pad_before: float = 0.5,
        pad_after: float = 1.5,
    ) -> Path:
        key = hashlib.sha1(f"{text}|{voice}|{speed}|{pad_before}|{pad_after}".encode()).hexdigest()
        out = speech_cache / f"{key[:16]}.wav"
        if not out.exists():
            raw = speech_cache / f"{key[:16]}.raw.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True
            )
            subprocess.run(
                [
                    "sox",
                    "-R",  # repeatable: sox dithers with a new seed each run otherwise
                    str(raw),
                    "-r",
                    str(SAMPLE_RATE),
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(out),
                    "pad",
                    str(pad_before),
                    str(pad_after),
                ],
                check=True,
            )
            raw.unlink()
        return out

    return make


def read_pcm(path: Path) -> np.ndarray:
    """A WAV as int16 mono samples."""
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == SAMPLE_RATE
    return np.asarray(data, dtype=np.int16)


def mix_noise(clean: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white noise at `snr_db` relative to the clip's speech power."""
    rng = np.random.default_rng(seed)
    x = clean.astype(np.float64)
    active = x[np.abs(x) > 0.02 * np.abs(x).max()] if x.any() else x
    power = float(np.mean(active**2)) if active.size else 1.0
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=x.shape)
    return np.clip(x + noise, -32768, 32767).astype(np.int16)
