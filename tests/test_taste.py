"""Re-ranking by taste through the CLI: `ask --profile --explain` follows a profile's likes,
never serves its dislikes unasked, never overrides a song asked by name; `history` shows,
exports and forgets."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from heymusic.cli import main
from heymusic.history.store import HistoryEvent, HistoryStore, history_path
from tests.conftest import TEST_SEED


@pytest.fixture()
def config(shared_csv: Path, tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    rng = random.Random(TEST_SEED)
    with shared_csv.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or []), list(reader)
    sample = list({r["track_id"]: r for r in rng.sample(rows, 600)}.values())
    catalog = tmp_path / "songs.csv"
    with catalog.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(sample)
    path = tmp_path / "config.toml"
    path.write_text(f'[catalog]\nsource = "{catalog}"\n')
    return path, sample


def _ask(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["--config", str(config), "ask", *args, "--json"]) == 0
    return list(json.loads(capsys.readouterr().out)["tracks"])


def test_ask_follows_the_profile_and_explains(
    config: tuple[Path, list[dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, rows = config
    rng = random.Random(TEST_SEED)
    genre = rng.choice(sorted({r["playlist_genre"] for r in rows}))
    liked = rng.sample([r for r in rows if r["playlist_genre"] == genre], 10)
    plain = _ask(path, capsys, "play something", "-k", "10")
    disliked = plain[0]
    store = HistoryStore(history_path())
    for row in liked:
        store.record(
            HistoryEvent(row["track_id"], rng.choice(["like", "finish", "replay"]), "anna")
        )
    store.record(HistoryEvent(str(disliked["track_id"]), "dislike", "anna"))
    store.close()

    ranked = _ask(path, capsys, "play something", "-k", "10", "--profile", "anna", "--explain")
    genre_of = {r["track_id"]: r["playlist_genre"] for r in rows}
    share = [sum(genre_of[str(t["track_id"])] == genre for t in r) for r in (plain, ranked)]
    assert share[1] >= share[0] + 3, share
    assert disliked["track_id"] not in {t["track_id"] for t in ranked}
    for track in ranked:  # the fields `ask --json` had, plus the two scores
        assert {"track_id", "name", "artist", "genre", "year", "score"} < set(track)
        assert isinstance(track["request_score"], float) and isinstance(track["taste_score"], float)
    # The household's profile has no history: its answer is the plain one.
    assert _ask(path, capsys, "play something", "-k", "10", "--profile", "household") == plain
    # Asked by name, the disliked song plays first.
    named = _ask(path, capsys, f"{disliked['name']} by {disliked['artist']}", "--profile", "anna")
    assert named[0]["track_id"] == disliked["track_id"]

    assert (
        main(["--config", str(path), "ask", "play something", "--profile", "anna", "--explain"])
        == 0
    )
    header, *lines = capsys.readouterr().out.splitlines()
    assert "score" in header and lines
    assert all("request " in line and "taste " in line for line in lines), lines


def test_history_shows_exports_and_forgets(
    config: tuple[Path, list[dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, rows = config
    assert main(["--config", str(path), "history"]) == 0
    assert "no listening history yet" in capsys.readouterr().out
    rng = random.Random(TEST_SEED)
    events = [
        HistoryEvent(r["track_id"], rng.choice(["play", "like"]), rng.choice(["anna", "ben"]))
        for r in rng.sample(rows, 12)
    ]
    store = HistoryStore(history_path())
    for event in events:
        store.record(event)
    store.close()
    assert main(["--config", str(path), "history", "--json"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["track_id"], e["kind"], e["profile"]) for e in exported] == [
        (e.track_id, e.kind, e.profile) for e in events
    ]
    assert all(e["room"] is None for e in exported)
    assert main(["--config", str(path), "history", "--forget", "--profile", "ben"]) == 0
    assert f"forgot {sum(e.profile == 'ben' for e in events)} events" in capsys.readouterr().out
    assert main(["--config", str(path), "history"]) == 0
    shown = capsys.readouterr().out
    assert f"{sum(e.profile == 'anna' for e in events)} events" in shown and " ben " not in shown
