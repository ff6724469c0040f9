"""A catalog where most songs cannot play here (no Spotify login) still answers with songs
that play: the recommender searches what the player can play."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import soundfile as sf

from heymusic.config import load_settings
from heymusic.music.catalog import AUDIO_FEATURES
from heymusic.music.recommender import load_recommender
from heymusic.players import make_player
from heymusic.service.assembly import search_what_plays
from tests.conftest import TEST_SEED


def test_answers_come_from_the_few_playable_songs(shared_csv: Path, tmp_path: Path) -> None:
    rng = random.Random(TEST_SEED)
    with shared_csv.open(newline="", encoding="utf-8") as f:
        rows = list({r["track_id"]: r for r in csv.DictReader(f)}.values())
    rows = rng.sample(rows, 400)
    playable = set(rng.sample(range(len(rows)), 4))
    seed = tmp_path / "songs.csv"
    with seed.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["track_id", "name", "artist", "genre", "path", *AUDIO_FEATURES])
        for i, r in enumerate(rows):
            path = ""
            if i in playable:
                path = str(tmp_path / f"{i}.wav")
                sf.write(path, np.zeros(8000, dtype=np.int16), 16000)
            features = [r[name] for name in AUDIO_FEATURES]
            out.writerow(
                [
                    r["track_id"],
                    r["track_name"],
                    r["track_artist"],
                    r["playlist_genre"],
                    path,
                    *features,
                ]
            )
    settings = load_settings(overrides={"catalog": {"source": str(seed)}})
    recommender = load_recommender(settings)
    request = rng.choice(
        ["something happy", "some rock", "chill music", "play something to dance to"]
    )
    before = recommender.recommend(request, k=5)
    assert sum(bool(t.path) for t, _ in before) < 2, before  # almost surely none: 4 of 400
    for kind in ("auto", "preview"):
        recommender.served.clear()
        player = make_player(settings, kind, audio_out="null")
        try:
            search_what_plays(recommender, player)
        finally:
            player.close()
        after = recommender.recommend(request, k=5)
        assert len(after) == 4 and all(t.path for t, _ in after), (kind, after)
