"""`heymusic ask` refuses what cannot be a request: an empty one, a count below 1, and a
command to the player typed where songs were asked for."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import pytest

from heymusic.config import data_dir
from tests.conftest import TEST_SEED
from tests.test_cli import _run
from tests.test_doctor import _sample_csv


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_request_is_one_line(text: str) -> None:
    out = _run("ask", text)
    assert out.returncode == 2 and out.stdout == "", out
    assert len(out.stderr.strip().splitlines()) == 1 and "empty" in out.stderr, out.stderr


@pytest.mark.parametrize("k", ["0", "-3", "two"])
def test_k_below_one_is_refused(k: str) -> None:
    out = _run("ask", "calm piano", "-k", k)
    assert out.returncode == 2 and out.stdout == "" and "argument -k" in out.stderr, out


def test_a_command_is_named_not_answered_with_songs() -> None:
    """Phrases drawn from the table: each is a command, said so, with what it would do."""
    table = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))["intents"]
    rng = random.Random(TEST_SEED)
    for key in rng.sample(sorted(table), 3):
        phrase = rng.choice(table[key]["phrases"])
        name = table[key].get("name", key)
        out = _run("ask", phrase, "--json")
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        assert answer["query"] == phrase and answer["tracks"] == [], answer
        assert answer["command"]["name"] == name and answer["command"]["effect"], answer
        text = _run("ask", phrase).stdout
        assert "is a command" in text and answer["command"]["effect"] in text, text


def test_the_score_column_is_labelled(tmp_path: Path, shared_csv: Path) -> None:
    songs = _sample_csv(shared_csv, tmp_path / "songs.csv")
    assert _run("catalog", "import", str(songs)).returncode == 0
    lines = _run("ask", "something calm for the evening", "-k", "3").stdout.splitlines()
    assert lines[0].split() == ["score", "song"], lines
    assert [line.split()[0] for line in lines[1:]] == ["1.", "2.", "3."], lines
    assert all(0.0 <= float(line.split()[1]) <= 1.5 for line in lines[1:]), lines
