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

import numpy as np
import pytest
import soundfile as sf

from heymusic.config import data_dir
from tests.conftest import TEST_SEED, read_pcm
from tests.test_simulate import HEYMUSIC, _speakable, small_catalog

__all__ = ["small_catalog"]  # the fixture, shared with test_simulate

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
    """No silence before "hey music": the verifier's 3.3 s of context come from the lead-in.
    A frame of the phrase may be turned down before the next one wakes (a rejected frame
    starts no refractory period), but it wakes before the command ends, once."""
    rng = random.Random(TEST_SEED * 100 + which)
    request = _requests(shared_csv, rng)[which]
    wav = synth(f"{WAKE}, {request}", pad_before=0.0, pad_after=1.5)
    out = _simulate(_config(tmp_path, whisper_dir), wav, "--json")
    types = [line.split('"type": "')[1].split('"')[0] for line in out.stdout.splitlines()]
    woke = [t for t in types if t != "wake_candidate"]
    assert woke[:3] == ["wake", "speech_end", "transcript"], (request, out.stdout, out.stderr)
    verdict = out.stderr.strip().splitlines()[-1]
    assert verdict.startswith("woke once; one request answered"), (request, out.stderr)


def test_a_run_that_hears_no_wake_says_why(
    tmp_path: Path, whisper_dir: Path, shared_csv: Path, synth: Callable[..., Path]
) -> None:
    """A request without the wake phrase: exit 0, and the last line says nothing woke."""
    rng = random.Random(TEST_SEED)
    wav = synth(_requests(shared_csv, rng)[1], pad_before=0.0, pad_after=1.0)
    out = _simulate(_config(tmp_path, whisper_dir), wav)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no wake word heard; "), out


def test_one_line_per_command_with_names_in_order(
    tmp_path: Path,
    whisper_dir: Path,
    shared_csv: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    """heard → understood → what plays (titles and artists, no ids or Python reprs) → took."""
    rng = random.Random(TEST_SEED + 1)
    catalog, asked = small_catalog
    song = asked[0]
    requests = [
        f"{rng.choice(['play', 'put on', 'play me'])} {song['track_name']} by {song['track_artist']}",
        _requests(shared_csv, rng)[0],
    ]
    clips = [read_pcm(synth(f"{WAKE}, {r}", pad_before=1.0, pad_after=2.5)) for r in requests]
    wav = tmp_path / "two.wav"
    sf.write(str(wav), np.concatenate(clips), 16000)
    config = _config(tmp_path, whisper_dir)
    config.write_text(config.read_text() + f'[catalog]\nsource = "{catalog}"\n')
    lines = _simulate(config, wav).stdout.strip().splitlines()
    assert lines[-1] == "woke 2 times; 2 requests answered", lines
    commands = lines[:-1]
    assert len(commands) == 2, lines
    times = [float(line.split(" s ")[0]) for line in commands]
    assert times == sorted(times), lines
    with catalog.open(encoding="utf-8") as fh:
        names = {(r["track_name"], r["track_artist"]) for r in csv.DictReader(fh)}
    for line in commands:
        heard, understood, *played, took = line.split(" → ")
        assert heard.split(" s  ")[1].startswith('"') and took.startswith("took "), line
        assert not any(mark in line for mark in ("[", "{", "track_id", "None")), line
    play = commands[0].split(" → ")
    assert play[1].startswith('play "'), commands[0]
    first = play[2].removeprefix("plays ").split("; ")[0]
    assert any(first == f"{n} by {a}" for n, a in names), (first, commands[0])
    assert all(r["track_id"] not in commands[0] for r in asked)


def test_the_verdict_names_which_stage_turned_each_candidate_down() -> None:
    from heymusic.events import StageError, Timeout, Wake, WakeCandidate
    from heymusic.service.verdict import SHOWN_CANDIDATES, Verdict

    rng = random.Random(TEST_SEED)
    times = sorted(rng.uniform(0, 60) for _ in range(SHOWN_CANDIDATES + 2))
    verifier, whisper, personal = (rng.uniform(0, 0.5) for _ in range(3))
    verdict = Verdict()
    for event in [
        WakeCandidate(times[0], 0.9, "hey_music", verifier),
        WakeCandidate(times[1], 0.8, "hey_music", 0.95, whisper),
        WakeCandidate(times[2], 0.7, "hey_music", 0.95, None, personal),
        *(WakeCandidate(t, 0.6, "hey_music", 0.1) for t in times[3:]),
    ]:
        verdict.add(event)
    line = verdict.line()
    assert line.startswith(f"no wake word heard; {len(times)} candidates turned down "), line
    assert f"at {times[0]:.2f} s by the verifier ({verifier:.2f})" in line, line
    assert f"at {times[1]:.2f} s by Whisper's check ({whisper:.2g})" in line, line
    assert f"personal {personal:.2f})" in line and line.endswith(", and 2 more"), line
    woke = Verdict()
    for event in [Wake(1.0, 0.9, "hey_music"), Timeout(5.0), Wake(9.0, 0.9, "hey_music")]:
        woke.add(event)
    woke.add(StageError(12.0, "boom"))
    assert woke.line() == (
        "woke 2 times; 0 requests answered; one wake with no request after it; one error (above)"
    )


def test_each_kind_of_command_reads_as_one_line() -> None:
    """Volume, a spoken answer, a change of mind, a failure: heard → understood → done → took."""
    from heymusic.events import IntentEvent, PlayerCommand, StageError, Transcript
    from heymusic.service.narration import Narrator

    rng = random.Random(TEST_SEED)
    step, level = rng.choice(["+", "-"]) + str(rng.randint(5, 20)), rng.randint(0, 100)
    said = f"This is {rng.choice(['Alpha', 'Beta', 'Gamma'])} by {rng.choice(['X', 'Y'])}."
    commands = [
        (
            [IntentEvent(1.0, "volume", None, step), PlayerCommand(1.0, "volume", 300.0, step)],
            f"volume {step} → turns the volume {'up' if step[0] == '+' else 'down'} by {step[1:]}",
        ),
        (
            [
                IntentEvent(2.0, "volume", None, level),
                PlayerCommand(2.0, "volume", 300.0, str(level)),
            ],
            f"volume {level} → sets the volume to {level} %",
        ),
        (
            [IntentEvent(3.0, "now_playing"), PlayerCommand(3.0, "say", 300.0, said)],
            f'now playing → says "{said}"',
        ),
        ([IntentEvent(4.0, "cancel")], "cancel → nothing (cancelled)"),
        (
            [IntentEvent(4.5, "restart"), PlayerCommand(4.5, "restart", 300.0, "t1")],
            "restart → this track from its beginning",
        ),
        (
            [IntentEvent(4.7, "stop_after"), PlayerCommand(4.7, "stop_after", 300.0, "t1")],
            "stop after → stops when this track ends",
        ),
        (
            [IntentEvent(4.8, "repeat", None, "on"), PlayerCommand(4.8, "repeat", 300.0, "on")],
            "repeat on → plays the song playing again and again",
        ),
        (
            [IntentEvent(5.0, "play", "x"), StageError(5.0, "no catalog")],
            'play "x" → error: no catalog',
        ),
    ]
    narrator = Narrator()
    for n, (events, middle) in enumerate(commands, 1):
        lines = narrator.add(Transcript(float(n), f"words {n}", 800.0))
        for event in events:
            lines += narrator.add(event)
        took = "0.3" if isinstance(events[-1], PlayerCommand) else "0.8"
        assert lines == [f'{n:7.2f} s  "words {n}" → {middle} → took {took} s'], lines
