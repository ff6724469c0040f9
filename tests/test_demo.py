"""`heymusic demo`: a request spoken by our TTS at run time goes through the daemon's loop
and the answer plays (recorded to a WAV file here, as tests/test_player_audio_out.py does)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.cli import main
from heymusic.commands.demo import REQUESTS
from heymusic.training.wake.data import midi_music
from tests.conftest import TEST_SEED


def test_demo_speaks_a_request_and_plays_the_answer(
    tmp_path: Path, whisper_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(TEST_SEED)
    music = tmp_path / "music"
    music.mkdir()
    for n in range(2):
        sf.write(music / f"piece {n}.flac", 0.5 * midi_music(12.0, rng), 16000)
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = "{music}"\n')
    out = tmp_path / "out.wav"
    request = random.Random(TEST_SEED).choice(REQUESTS)
    args = ["--config", str(config), "demo", request, "--seconds", "6", "--audio-out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert f'"hey music, {request}", spoken by ' in printed.out
    recorded, rate = sf.read(out, always_2d=True)
    assert len(recorded) > 4 * rate  # the answer played on after the request
    loud = np.sqrt(np.mean(recorded[-3 * rate :] ** 2))
    assert loud > 0.01, loud  # music, not silence, in the last seconds
