"""Requests are bounded in size (heymusic.text.MAX_REQUEST_CHARS) and the title search in
work, whatever its input: a 20 kB request took 57 s in the split search."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from rapidfuzz import process

from heymusic.errors import UserError
from heymusic.music.matcher import TitleMatcher
from heymusic.text import MAX_REQUEST_CHARS, check_request
from tests.conftest import TEST_SEED
from tests.test_cli import _run
from tests.test_matcher import matcher

__all__ = ["matcher"]  # the module fixture: the whole shared catalog


def _long_request(rng: random.Random, matcher: TitleMatcher, chars: int) -> str:
    song = matcher.tracks[rng.randrange(len(matcher.tracks))]
    vocab = matcher.vocab
    text = f"play {song.name} by {song.artist}"
    while len(text) < chars:
        text += " " + rng.choice(vocab)
    return text


def test_the_cap_is_exact() -> None:
    rng = random.Random(TEST_SEED)
    at_cap = "".join(rng.choice("abc de") for _ in range(MAX_REQUEST_CHARS))
    assert check_request(at_cap) == at_cap
    with pytest.raises(UserError, match=f"at most {MAX_REQUEST_CHARS}"):
        check_request(at_cap + "x")


def test_ask_refuses_a_20_kb_request_in_one_line() -> None:
    rng = random.Random(TEST_SEED)
    text = " ".join(
        rng.choice(["calm", "piano", "songs", "for", "a", "rainy", "day"]) for _ in range(3000)
    )
    out = _run("ask", text[:20_000])
    assert out.returncode == 2 and out.stdout == "", out.stderr[-500:]
    assert len(out.stderr.strip().splitlines()) == 1 and str(MAX_REQUEST_CHARS) in out.stderr


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every request string the matcher hands rapidfuzz to compare."""
    seen: list[str] = []
    cdist = process.cdist

    def record(queries: Any, choices: Any, **kwargs: Any) -> Any:
        seen.extend(queries)
        return cdist(queries, choices, **kwargs)

    monkeypatch.setattr(process, "cdist", record)
    yield seen


def test_the_title_search_is_bounded_whatever_the_length(
    matcher: TitleMatcher, compared: list[str]
) -> None:
    """A 20 kB request is searched like its first `max_words` words: same answer, and no
    longer string is ever compared (the work no longer grows with the input)."""
    rng = random.Random(TEST_SEED)
    text = _long_request(rng, matcher, 20_000)
    head = " ".join(text.split()[: matcher.max_words + 1])  # "play" is dropped first
    assert matcher.max_words < 60
    long_title, long_artist = matcher.best_title(text), matcher.best_artist(text)
    assert max(len(s.split()) for s in compared) <= matcher.max_words
    assert long_title is not None and long_artist is not None
    short_title, short_artist = matcher.best_title(head), matcher.best_artist(head)
    assert short_title is not None and short_artist is not None
    assert (long_title.track, long_title.score) == (short_title.track, short_title.score)
    assert (long_artist.track, long_artist.score) == (short_artist.track, short_artist.score)
