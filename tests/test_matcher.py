"""Title/artist matching of spoken requests on random songs of the shared catalog."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from rapidfuzz.utils import default_process

from heymusic.music.catalog import read_source
from heymusic.music.matcher import TitleMatcher, request_words
from heymusic.track import Track
from heymusic.training.wake import data as wake_data
from tests.conftest import TEST_SEED


@pytest.fixture(scope="module")
def matcher(shared_csv: Path) -> TitleMatcher:
    return TitleMatcher(read_source(shared_csv).tracks)


def _corrupt(word: str, rng: random.Random) -> str:
    """A misheard word: one letter changed, dropped or doubled."""
    i = rng.randrange(len(word))
    kind = rng.choice(["change", "drop", "double"]) if len(word) > 3 else "change"
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice([c for c in "aeiouybdkmnrst" if c != word[i]]) + word[i + 1 :]


def _same_song(a: Track, b: Track) -> bool:
    return default_process(a.name) == default_process(b.name) and (
        default_process(a.artist) == default_process(b.artist)
    )


def _pick(tracks: list[Track], rng: random.Random) -> Track:
    while True:
        t = rng.choice(tracks)
        if len(default_process(t.name).split()) >= 2 and default_process(t.artist):
            return t


@pytest.mark.parametrize("seed", [1, 2])
def test_random_songs_with_misheard_words(matcher: TitleMatcher, seed: int) -> None:
    rng = random.Random(seed)
    misses = []
    n = 40
    for _ in range(n):
        track = _pick(matcher.tracks, rng)
        title = default_process(track.name).split()
        artist = default_process(track.artist).split()
        spoken = title + ["by"] + artist
        # One or two words of the title/artist misheard, and often the "by" too.
        for i in rng.sample(
            [i for i, w in enumerate(spoken) if w != "by" and len(w) > 2],
            k=min(rng.choice([1, 2]), sum(len(w) > 2 for w in spoken) - 1),
        ):
            spoken[i] = _corrupt(spoken[i], rng)
        by = rng.choice(["by", "buy", "bye", "my", None])
        spoken = [w if w != "by" else by for w in spoken if w != "by" or by]
        request = "play " + " ".join(w for w in spoken if w)
        match = matcher.best_title(request)
        assert match is not None
        if not _same_song(match.track, track):
            misses.append((request, track.name, track.artist, match.track.name))
    assert len(misses) <= n * 0.1, misses


def test_exact_requests_and_missing_by(matcher: TitleMatcher) -> None:
    rng = random.Random(7)
    for _ in range(20):
        track = _pick(matcher.tracks, rng)
        for request in (
            f"play {track.name} by {track.artist}",
            f"hey music, play {track.name} {track.artist}",
        ):
            match = matcher.best_title(request)
            assert match is not None and _same_song(match.track, track), request
            assert match.score >= 90


def test_artist_requests(matcher: TitleMatcher) -> None:
    rng = random.Random(3)
    for _ in range(15):
        track = _pick(matcher.tracks, rng)
        match = matcher.best_artist(f"play something by {track.artist}")
        assert match is not None
        assert default_process(match.track.artist) == default_process(track.artist)
        songs = matcher.artist_tracks(match.track)
        assert all(default_process(s.artist) == default_process(track.artist) for s in songs)
        pops = [s.popularity or 0 for s in songs]
        assert pops == sorted(pops, reverse=True)


def test_unknown_song_scores_low(matcher: TitleMatcher) -> None:
    rng = random.Random(11)
    vocab = [
        w.strip().lower()
        for w in Path("/usr/share/dict/words").read_text().split()
        if w.isalpha() and w.islower() and 5 <= len(w) <= 9
    ]
    for _ in range(10):
        request = "play " + " ".join(rng.sample(vocab, 4))
        match = matcher.best_title(request)
        assert match is not None and match.score < 80, (request, match.track.name, match.score)


def test_request_words_strip_the_lead_in() -> None:
    assert request_words("Hey music, play Blinding Lights!") == ["blinding", "lights"]
    assert request_words("a music please put on some hard rock") == ["hard", "rock"]


def test_a_request_starting_with_word_music_keeps_them() -> None:
    """ "party music for the weekend" is a request; only "hey <x> music" or "<x> music" before
    a verb is a misheard wake phrase (it once became the title "On The Weekend")."""
    rng = random.Random(TEST_SEED)
    vocab = [w for w in wake_data.dictionary_words() if w.isalpha() and w.islower()]
    for _ in range(50):
        lead, *rest = rng.sample(vocab, rng.randint(2, 6))
        assert request_words(f"{lead} music {' '.join(rest)}")[-len(rest) - 1 :] == [
            "music",
            *rest,
        ]
        assert request_words(f"{lead} music play {' '.join(rest)}") == rest
        assert request_words(f"hey {lead} music, {' '.join(rest)}") == rest


def test_songs_whose_long_words_are_heard_split_in_two(matcher: TitleMatcher) -> None:
    """Whisper writes a long word as two ("Strip These By Car Wash" for "Striptease by
    carwash"). Songs of one long word by one long word, both heard split, one part in three
    with a letter wrong: the song is still found, as split words are also looked up joined."""
    rng = random.Random(TEST_SEED)

    def split(word: str) -> str:
        cut = rng.randrange(3, len(word) - 2)
        tail = _corrupt(word[cut:], rng) if rng.random() < 0.3 else word[cut:]
        return f"{word[:cut]} {tail}"

    songs = [
        t
        for t in matcher.tracks
        if re.fullmatch(r"[a-z]{7,}", default_process(t.name))
        and re.fullmatch(r"[a-z]{7,}", default_process(t.artist))
    ]
    misses = []
    for track in rng.sample(songs, 30):
        request = (
            f"play {split(default_process(track.name))} by {split(default_process(track.artist))}"
        )
        match = matcher.best_title(request)
        if match is None or not _same_song(match.track, track):
            misses.append((request, track.name, track.artist, match and match.track.name))
    assert len(misses) <= 3, misses
