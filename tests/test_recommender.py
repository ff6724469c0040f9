"""The recommender on the shared catalog with the shipped models: what `ask` answers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from heymusic.cli import main
from heymusic.config import load_settings
from heymusic.music.era import DECADE_WORDS, PARTS, named_years
from heymusic.music.matcher import plain_title
from heymusic.music.recommender import Recommender, load_recommender
from heymusic.music.song_features import (
    DESCRIPTIVE_WORDS,
    ERA_WORDS,
    MOODS,
    SPOKEN,
    decade_of,
    mood_of,
)
from heymusic.speech.intents import IntentParser
from heymusic.text import words
from heymusic.track import Track
from heymusic.training.retrieval.requests import TEMPLATES, make_request, satisfies
from tests.conftest import TEST_SEED


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def rec(shared_csv: Path, state: Path) -> Iterator[Recommender]:
    """Imported on first use from [catalog] source, like a fresh install."""
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state)
    try:
        settings = load_settings(overrides={"catalog": {"source": str(shared_csv)}})
        yield load_recommender(settings)
    finally:
        if old is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = old


def _precision(results: list[tuple[Track, float]], wants: dict[str, str | int]) -> float:
    return sum(satisfies(t, wants) for t, _ in results) / len(results)


def test_asked_genre_mood_era(rec: Recommender) -> None:
    """Requests built from random genres, subgenres, moods and eras get songs that have them."""
    rng = random.Random(5)
    genres = sorted({t.genre for t in rec.catalog.tracks if t.genre})
    subgenres = sorted({t.subgenre for t in rec.catalog.tracks if t.subgenre})
    decades = sorted({d for t in rec.catalog.tracks if (d := decade_of(t)) and d >= 1970})
    cases: list[tuple[str, str, dict[str, str | int]]] = []
    for _ in range(8):
        g = rng.choice(genres)
        cases.append(("genre", f"play some {rng.choice(SPOKEN.get(g, (g,)))}", {"genre": g}))
        s = rng.choice(subgenres)
        cases.append(("subgenre", f"put on {rng.choice(SPOKEN.get(s, (s,)))}", {"subgenre": s}))
        m = rng.choice(sorted(MOODS))
        cases.append(("mood", f"something {rng.choice(MOODS[m])}", {"mood": m}))
        d = rng.choice(decades)
        cases.append(("era", f"songs from {rng.choice(ERA_WORDS[d])}", {"decade": d}))
    by_kind: dict[str, list[float]] = {}
    for kind, text, wants in cases:
        rec.served.clear()
        results = rec.recommend(text, k=5)
        assert len(results) == 5, text
        by_kind.setdefault(kind, []).append(_precision(results, wants))
    means = {kind: sum(v) / len(v) for kind, v in by_kind.items()}
    assert all(m >= 0.8 for m in means.values()), means
    assert sum(means.values()) / len(means) >= 0.9, means


def test_title_request_plays_that_song_first(rec: Recommender) -> None:
    rng = random.Random(2)
    for _ in range(8):
        track = rng.choice([t for t in rec.catalog.tracks if (t.popularity or 0) > 50])
        results = rec.recommend(f"play {track.name} by {track.artist}", k=5)
        assert results[0][0].name == track.name and results[0][0].artist == track.artist
        assert all(0.0 <= s <= 1.0 for _, s in results)
        assert track.track_id not in [t.track_id for t, _ in results[1:]]


def _same_song(a: Track, b: Track) -> bool:
    """The same song, whatever its version: "Iron Man" and "Iron Man - 2014 Remaster"."""

    def song(t: Track) -> tuple[str, str]:
        return plain_title(t.name).lower(), t.artist

    return song(a) == song(b)


def test_title_requests_for_random_songs(rec: Recommender) -> None:
    """Any song of the catalog, popular or not, asked for by title and artist comes first."""
    rng = random.Random(TEST_SEED)
    wrong = []
    for track in rng.sample(rec.catalog.tracks, 300):
        rec.served.clear()
        first = rec.recommend(f"play {track.name} by {track.artist}", k=1)[0][0]
        if not _same_song(first, track):
            wrong.append((track.name, track.artist, first.name, first.artist))
    assert not wrong, wrong


def test_a_title_by_its_artist_names_a_song_and_chatter_does_not(rec: Recommender) -> None:
    """Without a verb, "<title> by <artist>" is a request; sentences with "by" in them are not
    (fortune sentences: chatter a false wake could hear), at most 1 in 100; and at most 1
    in 1000 sentences is taken for music described without a verb."""
    from heymusic.training.wake.data import fortune_sentences

    rng = random.Random(TEST_SEED)
    missed = [
        (t.name, t.artist)
        for t in rng.sample(rec.catalog.tracks, 100)
        if not rec.names_a_song(f"{rng.choice(['', 'pay', 'hey music,'])} {t.name} by {t.artist}")
    ]
    assert len(missed) <= 2, missed
    chatter = [s for s in fortune_sentences("train") if " by " in f" {s.lower()} "]
    drawn = rng.sample(chatter, min(300, len(chatter)))
    taken = [s for s in drawn if rec.names_a_song(s)]
    assert len(drawn) >= 100 and len(taken) <= len(drawn) // 100, taken
    sentences = fortune_sentences("train")
    described = [s for s in sentences if rec.describes(s)]  # "Falling rock."
    assert len(described) <= len(sentences) // 1000, described


def test_songs_named_with_tag_words_are_title_requests(rec: Recommender) -> None:
    """Playlist names become tag words, and playlists are named after artists and hits: a
    request made only of such words ("uprising by muse") is still a title request."""
    tag_words = {w for t in rec.catalog.tracks for g in t.tags for w in words(g)}
    named = [
        t
        for t in rec.catalog.tracks
        if all(w in tag_words | DESCRIPTIVE_WORDS for w in words(f"{t.name} by {t.artist}"))
    ]
    assert len(named) >= 8, "the catalog has too few songs named only with tag words"
    for track in random.Random(TEST_SEED).sample(named, 8):
        rec.served.clear()
        first = rec.recommend(f"play {track.name} by {track.artist}", k=1)[0][0]
        assert _same_song(first, track), (track.name, track.artist, first.name, first.artist)


def test_tag_words_in_artist_names_stay_descriptions(rec: Recommender) -> None:
    """ "play some jazz" is a genre though an artist is called "Johnny Hates Jazz": tag words
    that are words of artist names (not whole names) stay descriptive, not title searches."""
    artists = {a for t in rec.catalog.tracks for a in [t.artist.lower()]}
    in_names = {w for a in artists for w in words(a)}
    tag_words = {w for t in rec.catalog.tracks for g in t.tags for w in words(g)}
    shared = sorted(w for w in tag_words & in_names if w not in artists and w.isalpha())
    for word in random.Random(TEST_SEED).sample(shared, 8):
        named = rec.named(f"play some {word}")
        assert named is None or named[0].kind == "artist", (word, named[0].track.name)


def test_title_with_like_in_it_is_a_title_request(rec: Recommender) -> None:
    """ "Falling Like The Stars by ..." is that song, not "more like the stars by ..."."""
    rng = random.Random(5)
    titled = [
        t for t in rec.catalog.tracks if " like " in f" {t.name.lower()} " and " - " not in t.name
    ]
    for track in rng.sample(titled, 5):
        results = rec.recommend(f"play {track.name} by {track.artist}", k=5)
        assert (results[0][0].name, results[0][0].artist) == (track.name, track.artist)


def test_generated_requests_are_not_taken_for_titles(rec: Recommender) -> None:
    """Mood, genre and era requests (the recommender's own templates, filled from random
    songs) reach the song index, not a title: "rage music for tonight" once played the song
    "For Tonight", its "rage music" taken for a misheard wake phrase (8 of 400 requests)."""
    rng = random.Random(TEST_SEED)
    parser = IntentParser(["hey music"])
    titled = []
    for _ in range(400):
        request = None
        while request is None or "artist" in request.wants:
            request = make_request(
                rng.choice(rec.catalog.tracks), rng.randrange(len(TEMPLATES)), rng
            )
        intent = parser.parse(f"hey music, play {request.text}")
        named = rec.named(intent.query or "")
        if named is not None:
            titled.append((request.text, named[0].track.name))
    assert not titled, titled


def test_artist_request_and_more_like_artist(rec: Recommender) -> None:
    artists = Counter(t.artist for t in rec.catalog.tracks)
    artist = random.Random(4).choice([a for a, n in artists.items() if n >= 8])
    results = rec.recommend(f"play something by {artist}", k=5)
    assert [t.artist for t, _ in results] == [artist] * 5
    like = rec.recommend(f"play more like {artist}", k=5)
    assert len(like) == 5
    assert (
        max(Counter(t.artist for t, _ in like).values()) <= rec.settings.recommender.max_per_artist
    )


def test_unknown_title_falls_back_to_semantic(rec: Recommender) -> None:
    rng = random.Random(8)
    vocab = [
        w
        for w in Path("/usr/share/dict/words").read_text().split()
        if w.isalpha() and w.islower() and 6 <= len(w) <= 9
    ]
    for _ in range(5):
        text = f"play {' '.join(rng.sample(vocab, 3))} by {' '.join(rng.sample(vocab, 2))}"
        assert rec.named(text) is None, text
        assert len(rec.recommend(text, k=5)) == 5


def test_diversity_session_and_more_like(rec: Recommender) -> None:
    rec.served.clear()
    first = rec.recommend("chill house music", k=5)
    cap = rec.settings.recommender.max_per_artist
    assert max(Counter(t.artist for t, _ in first).values()) <= cap
    # The catalog holds some songs several times (album, single, compilation): serve one.
    twins = Counter((t.artist, t.name) for t in rec.catalog.tracks)
    for text in ("slow sad love songs", "russian rap", "christmas songs"):
        heard = [(t.artist, t.name) for t, _ in rec.recommend(text, k=10)]
        assert len(set(heard)) == len(heard), heard
    assert max(twins.values()) > 1  # the check above would prove nothing otherwise
    again = rec.recommend("chill house music", k=5)
    assert not {t.track_id for t, _ in first} & {t.track_id for t, _ in again}
    seed = first[0][0]
    similar = rec.more_like(seed, k=5, exclude=[again[0][0].track_id])
    ids = [t.track_id for t, _ in similar]
    assert seed.track_id not in ids and again[0][0].track_id not in ids and len(ids) == 5
    # Similar songs share most of the seed's genre.
    assert sum(t.genre == seed.genre for t, _ in similar) >= 3


def test_ask_json_contract_and_no_torch(
    state: Path,
    rec: Recommender,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    assert main(["ask", "sad songs from the nineties", "-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == "sad songs from the nineties" and len(out["tracks"]) == 5
    for track in out["tracks"]:
        assert set(track) == {"track_id", "name", "artist", "genre", "year", "score"}
        assert 0.0 <= track["score"] <= 1.0
    sad = sum(
        mood_of(t) == "sad"
        for t in map(rec.catalog.get, [x["track_id"] for x in out["tracks"]])
        if t is not None
    )
    assert sad >= 3
    probe = (
        "import sys; from heymusic.config import load_settings; "
        "from heymusic.music.recommender import load_recommender; "
        "r = load_recommender(load_settings()); r.recommend('upbeat workout songs'); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, env={**os.environ}, timeout=120)


def _decade_forms(decade: int) -> list[str]:
    """The ways people name `decade`: "the sixties", "the 60s", "the '60s", "the 1960s"."""
    two = f"{decade % 100:02d}"
    forms = [f"the {two}s", f"the '{two}s", f"the {decade}s"]
    return forms + [w for w, start in DECADE_WORDS.items() if start == decade]


def test_a_named_decade_is_the_years_searched(rec: Recommender) -> None:
    """Random genres and decades, named every way: all five songs are from the years
    asked for, "early" and "late" ones included (the search alone mixed in other decades)."""
    rng = random.Random(TEST_SEED)
    by_pair = Counter((t.genre, d) for t in rec.catalog.tracks if (d := decade_of(t)) and t.genre)
    pairs = sorted(p for p, n in by_pair.items() if n >= 60 and p[1] <= 2010)
    for genre, decade in rng.sample(pairs, 6):
        part = rng.choice(["", "", *PARTS])
        said = rng.choice(SPOKEN.get(genre, (genre,)))
        era = f"{part} {rng.choice(_decade_forms(decade)).removeprefix('the ')}".strip()
        text = rng.choice([f"play {said} from the {era}", f"put on some {era} {said}"])
        first, end = PARTS.get(part, (0, 10))
        rec.served.clear()
        results = rec.recommend(text, k=5)
        assert len(results) == 5, text
        years = [t.year for t, _ in results]
        assert all(decade + first <= (y or 0) < decade + end for y in years), (text, years)


def test_requests_naming_no_decade_name_no_years() -> None:
    rng = random.Random(TEST_SEED)
    era_words = {w for phrase in DECADE_WORDS for w in phrase.split()}
    vocab = sorted(w for w in DESCRIPTIVE_WORDS - era_words if not any(c.isdigit() for c in w))
    for _ in range(200):
        text = f"play {' '.join(rng.sample(vocab, 3))} {rng.randint(1, 99)} songs"
        assert named_years(text) is None, text
    for decade in (1950, 1960, 1970, 1980, 1990, 2000, 2010):
        for form in _decade_forms(decade):
            assert named_years(f"songs from {form}") == range(decade, decade + 10), form
