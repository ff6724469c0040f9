"""End to end: spoken commands in noise through `heymusic simulate --json`, events checked in order.

Commands come from the phrase table and from songs drawn at random from the shared catalog;
the stock "hey jarvis" model is pinned so this keeps testing the pipeline whatever the default.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.config import Settings, data_dir
from tests.conftest import PROJECT_DIR, TEST_SEED, mix_noise, read_pcm

HEYMUSIC = PROJECT_DIR / ".venv" / "bin" / "heymusic"
WAKE = "hey jarvis"
ACTIONS = {
    "skip": "next",
    "previous": "previous",
    "stop": "stop",
    "pause": "pause",
    "resume": "resume",
    "volume": "volume",
    "now_playing": "say",
    "play": "play",
}
CONTRACT_TYPES = {"wake", "speech_end", "transcript", "intent", "results", "player", "error"}
_SPEAKABLE = re.compile(r"^[A-Za-z][A-Za-z' ]{2,30}$")


def _speakable(row: dict[str, str]) -> bool:
    name, artist = row["track_name"], row["track_artist"]
    # Two to four words of title: enough sound for ASR + fuzzy matching to work with.
    return bool(_SPEAKABLE.match(name) and _SPEAKABLE.match(artist)) and 2 <= len(name.split()) <= 4


@pytest.fixture(scope="module")
def small_catalog(
    shared_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, str]]]:
    """A few hundred random songs (indexing all 25k takes minutes) and two to ask for."""
    rng = random.Random(TEST_SEED)
    with shared_csv.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    sample = rng.sample(rows, 300)
    asked = rng.sample([r for r in sample if _speakable(r)], 2)
    path = tmp_path_factory.mktemp("catalog") / "songs.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(sample)
    return path, asked


def _config(tmp_path: Path, whisper_dir: Path, catalog: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[wake]\nmodels = ["hey_jarvis_v0.1.onnx"]\nverifier = false\n'
        f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = "{catalog}"\n'
    )
    return config


def _table_commands(rng: random.Random, n: int) -> list[tuple[str, str]]:
    table = tomllib.loads((data_dir() / "intents.toml").read_text(encoding="utf-8"))["intents"]
    # The feedback intents (tests/test_feedback.py) stay out, and so do one-word phrases:
    # webrtcvad misses a lone short word ("wait", "oops") in this white noise, so no
    # command follows the wake (clean, both are heard).
    feedback = {"more_like_this", "like", "dislike", "favourites", "history"}
    keys = rng.sample(sorted(k for k in table if k not in feedback), n)
    return [
        (rng.choice([p for p in table[k]["phrases"] if " " in p]), table[k].get("name", k))
        for k in keys
    ]


def _simulate(config: Path, wav: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(config), "simulate", str(wav), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


def _groups(events: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """Split the contract events at each wake: one group per spoken command."""
    groups: list[list[dict[str, object]]] = []
    for event in events:
        assert "audio_s" in event and isinstance(event["type"], str)
        if event["type"] == "wake":
            groups.append([])
        if event["type"] in CONTRACT_TYPES and groups:
            groups[-1].append(event)
    return groups


def test_spoken_commands_in_noise(
    tmp_path: Path,
    whisper_dir: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    rng = random.Random(TEST_SEED)
    catalog, asked = small_catalog
    commands = [(f"play {r['track_name']} by {r['track_artist']}", "play") for r in asked]
    commands += _table_commands(rng, 4)
    rng.shuffle(commands)
    clips = [
        read_pcm(synth(f"{WAKE}, {text}", pad_before=1.0, pad_after=3.0)) for text, _ in commands
    ]
    snr = rng.uniform(15, 20)  # 10 dB white noise: see test_wake_and_stop_at_10_db
    wav = tmp_path / "commands.wav"
    sf.write(str(wav), mix_noise(np.concatenate(clips), snr, seed=rng.randrange(1000)), 16000)
    events = _simulate(_config(tmp_path, whisper_dir, catalog), wav)
    note = f"commands={commands} snr={snr:.1f} events={events}"

    ends_s = np.cumsum([len(c) for c in clips]) / 16000
    groups = _groups(events)
    owners = [int(np.searchsorted(ends_s, float(g[0]["audio_s"]))) for g in groups]  # type: ignore[arg-type]
    assert len(set(owners)) == len(owners) == len(groups), f"one wake per command: {note}"
    right, found = 0, 0
    for owner, group in zip(owners, groups, strict=True):
        text, intent = commands[owner]
        where = f"{text!r} at {snr:.1f} dB: {group}"
        types = [e["type"] for e in group]
        assert types[:4] == ["wake", "speech_end", "transcript", "intent"], where
        heard = str(group[3]["name"])
        tail = {"play": ["results", "player"], "cancel": [], "unknown": []}.get(heard, ["player"])
        assert types[4:] == tail, where  # what follows matches the intent understood
        times = [float(e["audio_s"]) for e in group]  # type: ignore[arg-type]
        assert times == sorted(times) and times[1] == times[-1], where
        tracks = group[4]["tracks"] if heard == "play" else None
        if heard in ACTIONS:
            player = group[-1]
            if tracks == []:  # a spoken request no song matches: taken as misheard
                assert player["action"] == "say" and player["detail"] == "nothing found", where
            else:
                assert player["action"] == ACTIONS[heard], where
            assert float(player["latency_ms"]) > 0, where  # type: ignore[arg-type]
        if tracks:
            assert isinstance(tracks, list), where
            assert group[-1]["detail"] == tracks[0]["track_id"], where
        right += heard == intent
        if intent == "play" and heard == "play":
            wanted = next(r["track_id"] for r in asked if r["track_name"] in text)
            found += any(t["track_id"] == wanted for t in group[4]["tracks"])  # type: ignore[union-attr]
    # In white noise the stock wake model misses some wakes and Whisper base mishears some
    # short commands (FINDINGS): one of the six may go wrong, not more.
    assert right >= len(commands) - 1, f"{right}/{len(commands)} intents right: {note}"
    assert found >= 1, f"neither requested song was found: {note}"


def test_unreadable_audio_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(4000))
    out = subprocess.run(
        [str(HEYMUSIC), "simulate", str(bad), "--json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "bad.wav" in out.stderr


def test_a_pause_after_the_wake_phrase_loses_no_command(
    tmp_path: Path,
    whisper_dir: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    """People wait for the cue: "hey music ... skip this song". The wake fires before the
    phrase is over, and its tail and a second of quiet had ended the command, which then
    held the wake phrase alone ("Hey music." -> cancel) while the command followed. The
    shipped wake word and its checks, as a user has them."""
    rng = random.Random(TEST_SEED + 1)
    voices = ["hi+Henrique", "nl+travis", "en-029", "en-us+f3", "de+m3", "en-gb+Annie"]
    commands = [c for c in _table_commands(rng, 8) if c[1] != "cancel"][:6]
    clips = []
    for (text, _), voice in zip(commands, voices, strict=True):
        speed = rng.randrange(140, 170)
        wake = synth("hey music", voice, speed, pad_before=2.0, pad_after=rng.uniform(0.9, 1.2))
        said = synth(text, voice, speed, pad_before=0.0, pad_after=3.0)
        clips.append(np.concatenate([read_pcm(wake), read_pcm(said)]))
    wav = tmp_path / "paused.wav"
    sf.write(str(wav), mix_noise(np.concatenate(clips), 30.0, seed=rng.randrange(1000)), 16000)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = "{small_catalog[0]}"\n'
    )
    events = _simulate(config, wav)
    intents = [str(e["name"]) for e in events if e["type"] == "intent"]
    note = f"commands={commands} events={events}"
    assert len(intents) >= len(commands) - 1, note  # a wake may be missed
    assert "cancel" not in intents, note


def test_requests_said_without_a_verb_play(
    tmp_path: Path,
    whisper_dir: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    """ "hey music, something mellow" and "hey music, <title> by <artist>": no "play", and
    still music, on the shipped wake word and Whisper (the first had been a skip or the
    "sorry" cue, the second "sorry")."""
    rng = random.Random(TEST_SEED + 2)
    catalog, asked = small_catalog
    moods = ["mellow", "relaxing", "happy", "sad", "upbeat", "calm", "chill", "jazz", "rock"]
    said = [f"{rng.choice(['something', 'some', 'anything'])} {m}" for m in rng.sample(moods, 3)]
    said += [f"{r['track_name']} by {r['track_artist']}" for r in asked]
    clips = [read_pcm(synth(f"hey music, {text}", pad_before=1.0, pad_after=3.0)) for text in said]
    wav = tmp_path / "verbless.wav"
    sf.write(str(wav), np.concatenate(clips), 16000)
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = "{catalog}"\n')
    events = _simulate(config, wav)
    intents = [e for e in events if e["type"] == "intent"]
    note = f"said={said} events={events}"
    assert len(intents) == len(said), note
    for text, intent in zip(said[:3], intents[:3], strict=True):
        assert intent["name"] == "play" and text.split()[-1] in str(intent["query"]), note
    firsts = [e["tracks"][0]["track_id"] for e in events if e["type"] == "results"][3:]
    played = [r for r in asked if r["track_id"] in firsts]
    assert played, f"neither song named without a verb was played: {note}"


def test_a_command_whisper_could_not_make_out_is_not_acted_on(
    tmp_path: Path,
    whisper_dir: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    """ "hey music, play" and then a song's name said backwards (speech with no words in
    it): Whisper writes words anyway ("play the short and hip hop, much syrup"), which had
    played songs nobody asked for. Now the transcript event says how sure Whisper was, and
    under `[asr] min_clarity` nothing plays but the "sorry" sound; -99 acts on all."""
    rng = random.Random(TEST_SEED + 3)
    catalog, _asked = small_catalog
    with catalog.open(encoding="utf-8") as fh:
        songs = rng.sample(list(csv.DictReader(fh)), 6)
    clips = []
    for song in songs:
        wake = read_pcm(synth("hey music, play", pad_before=1.0, pad_after=0.1))
        said = read_pcm(synth(f"{song['track_name']} by {song['track_artist']}", pad_before=0.0))
        voiced = np.flatnonzero(np.abs(said) > 300)  # espeak's own quiet would end the command
        clips += [wake, said[voiced[0] : voiced[-1]][::-1], np.zeros(2 * 16000, np.int16)]
    wav = tmp_path / "backwards.wav"
    sf.write(str(wav), np.concatenate(clips), 16000)
    bar = Settings().asr.min_clarity
    acted_on = {}
    for min_clarity in (bar, -99.0):
        config = tmp_path / f"config{min_clarity}.toml"
        config.write_text(
            f'[asr]\nmodel_dir = "{whisper_dir}"\nmin_clarity = {min_clarity}\n'
            f'[catalog]\nsource = "{catalog}"\n'
        )
        groups = _groups(_simulate(config, wav))
        clarity = [[e["clarity"] for e in g if e["type"] == "transcript"] for g in groups]
        unclear = [g for g, c in zip(groups, clarity, strict=True) if c and float(str(c[0])) < bar]
        note = f"min_clarity={min_clarity} groups={groups}"
        assert len(unclear) >= 4, note
        acted_on[min_clarity] = [g for g in unclear if any(e["type"] == "results" for e in g)]
        if min_clarity == bar:
            assert len(acted_on[bar]) <= 1, note  # a song its words or audio named may play
            sorry = [e for g in unclear for e in g if e["type"] == "intent"]
            assert sum(e["name"] == "unknown" for e in sorry) >= len(unclear) - 1, note
    assert len(acted_on[-99.0]) >= 3, acted_on
