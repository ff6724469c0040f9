"""ASR: the Whisper dir is joined once from the installed parts; commands transcribe in noise."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from heymusic.asr import Transcriber, whisper_model_dir
from heymusic.config import Settings
from heymusic.errors import UserError
from tests.conftest import PROJECT_DIR, mix_noise, read_pcm

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"


def test_weights_are_joined_once_and_a_broken_join_is_redone(
    whisper_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(whisper_dir.parents[1]))
    before = (whisper_dir / "model.bin").stat().st_mtime_ns
    assert whisper_model_dir(Settings()) == whisper_dir
    assert (whisper_dir / "model.bin").stat().st_mtime_ns == before

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    half = tmp_path / "heymusic" / "whisper-base" / "model.bin"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"interrupted")
    rebuilt = whisper_model_dir(Settings())
    assert (rebuilt / "model.bin").stat().st_size == (whisper_dir / "model.bin").stat().st_size
    assert {p.name for p in rebuilt.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }


def test_configured_dir_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings.model_validate({"asr": {"model_dir": str(tmp_path)}})
    with pytest.raises(UserError, match="holds no model.bin"):
        whisper_model_dir(settings)


def test_transcribes_a_command_in_noise(whisper_dir: Path, synth: Callable[..., Path]) -> None:
    settings = Settings.model_validate({"asr": {"model_dir": str(whisper_dir)}})
    transcriber = Transcriber(settings)
    audio = mix_noise(read_pcm(synth("hey music, stop the music", pad_after=0.3)), snr_db=15)
    text = transcriber.transcribe(audio).lower()
    assert "stop" in text and "music" in text, text
    assert transcriber.transcribe(audio[:0]) == ""


def test_transcribe_command_line(
    whisper_dir: Path, synth: Callable[..., Path], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n')
    wav = synth("hey music, what's playing", pad_after=0.3)
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(config), "transcribe", str(wav)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=True,
    )
    assert "playing" in out.stdout.lower(), out.stdout
