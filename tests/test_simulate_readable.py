"""`simulate` as a new user meets it: a file that starts with the wake phrase, the verdict
at the end of every run, and the one-line-per-command output (real Whisper, espeak-ng)."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from heymusic.config import data_dir
from tests.conftest import TEST_SEED
from tests.test_simulate import HEYMUSIC, _speakable

WAKE = "hey music"


def _requests(shared_csv: Path, rng: random.Random) -> list[str]:
    """Control phrases from the table and "play <title> by <artist>" for random songs."""
    table = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))
    phrases = [p for k, v in table["intents"].items() if k != "cancel" for p in v["phrases"]]
    with shared_csv.open(encoding="utf-8") as fh:
        songs = [r for r in csv.DictReader(fh) if _speakable(r)]
    song = rng.choice(songs)
    play = f"{rng.choice(table['play_prefixes'])} {song['track_name']} by {song['track_artist']}"
    return [rng.choice(phrases), play]


def _config(tmp_path: Path, whisper_dir: Path) -> Path:
    """The shipped wake model with all its checks (verifier, Whisper), as a user has it."""
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n')
    return config


def _simulate(config: Path, wav: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(config), "simulate", str(wav), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_a_file_that_starts_with_the_wake_phrase_wakes(
    which: int,
    tmp_path: Path,
    whisper_dir: Path,
    shared_csv: Path,
    synth: Callable[..., Path],
) -> None:
    """No silence before "hey music": the verifier's 3.3 s of context come from the lead-in."""
    rng = random.Random(TEST_SEED * 100 + which)
    request = _requests(shared_csv, rng)[which]
    wav = synth(f"{WAKE}, {request}", pad_before=0.0, pad_after=1.5)
    out = _simulate(_config(tmp_path, whisper_dir), wav, "--json")
    types = [line.split('"type": "')[1].split('"')[0] for line in out.stdout.splitlines()]
    assert types[:3] == ["wake", "speech_end", "transcript"], (request, out.stdout, out.stderr)
    verdict = out.stderr.strip().splitlines()[-1]
    assert verdict == "heymusic: woke once; one request answered", (request, out.stderr)


def test_a_run_that_hears_no_wake_says_why(
    tmp_path: Path, whisper_dir: Path, shared_csv: Path, synth: Callable[..., Path]
) -> None:
    """A request without the wake phrase: exit 0, and the last line says nothing woke."""
    rng = random.Random(TEST_SEED)
    wav = synth(_requests(shared_csv, rng)[1], pad_before=0.0, pad_after=1.0)
    out = _simulate(_config(tmp_path, whisper_dir), wav)
    assert "no wake word heard; " in out.stderr.strip().splitlines()[-1], out
