"""Audio sources: any file format/rate/channels -> 16 kHz mono int16 80 ms chunks; clear errors."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.audio.format import CHUNK_SAMPLES
from heymusic.audio.sources import FileSource, StdinSource, check_microphone
from heymusic.errors import UserError
from tests.conftest import read_pcm


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"), [("WAV", 44100, 2), ("FLAC", 48000, 1), ("OGG", 22050, 2)]
)
def test_files_become_16k_mono_chunks(tmp_path: Path, fmt: str, rate: int, channels: int) -> None:
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(str(path), _tone(rate, 1.5, channels), rate, format=fmt)
    chunks = list(FileSource(path).chunks())
    assert all(c.dtype == np.int16 and c.shape == (CHUNK_SAMPLES,) for c in chunks)
    audio = np.concatenate(chunks).astype(float)
    assert len(audio) == pytest.approx(1.5 * 16000, abs=CHUNK_SAMPLES)
    spectrum = np.abs(np.fft.rfft(audio[:16000]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1 Hz bins: pitch kept
    assert np.abs(audio).max() == pytest.approx(0.5 * 32767, rel=0.05)


def test_16k_wav_passes_through_unchanged(synth: Callable[..., Path]) -> None:
    path = synth("next song")
    original = read_pcm(path)
    audio = np.concatenate(list(FileSource(path).chunks()))
    assert np.array_equal(audio[: len(original)], original)
    assert not audio[len(original) :].any()  # only the last chunk's padding


def test_stdin_raw_pcm_in_odd_pieces() -> None:
    samples = np.arange(-3000, 3000, dtype=np.int16)
    chunks = list(StdinSource(io.BufferedReader(io.BytesIO(samples.tobytes()))).chunks())  # type: ignore[arg-type]
    audio = np.concatenate(chunks)
    assert np.array_equal(audio[: len(samples)], samples)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 8, "cannot read"),
        (b"", "cannot read"),
    ],
)
def test_unreadable_files_are_one_clear_line(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(UserError, match=says) as err:
        FileSource(path)
    assert "\n" not in str(err.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        FileSource(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.int16), 16000)
    with pytest.raises(UserError, match="holds no audio"):
        FileSource(empty)


def test_no_microphone_is_a_clear_error() -> None:
    pyaudio = pytest.importorskip("pyaudio")
    pa = pyaudio.PyAudio()
    has_input = any(
        int(pa.get_device_info_by_index(i).get("maxInputChannels", 0)) > 0
        for i in range(pa.get_device_count())
    )
    pa.terminate()
    if has_input:
        with pytest.raises(UserError, match="no input device matches"):
            check_microphone("no-such-device-name-xyz")
    else:
        with pytest.raises(UserError, match="no microphone found.*--input"):
            check_microphone()
