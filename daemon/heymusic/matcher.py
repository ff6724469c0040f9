"""Fuzzy title/artist matching of spoken requests ("play blinding lights by the weekend").

Every split of the request words into title and artist is scored as
0.65 x title + 0.35 x artist similarity (rapidfuzz), so a misheard "by" or a
request without one still finds the song; ties go to the more popular track.
Scoring "title by artist" strings as a whole fails: the shared word "by" lifts
the whole catalog (see FINDINGS).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from heymusic.catalog import Track

TITLE_WEIGHT = 0.65
ARTIST_WEIGHT = 0.35
#: Leading words that introduce a request rather than name a song.
_LEAD = re.compile(
    r"^(?:(?:hey|ok|okay)?\s*\w*\s*music\W+)?"
    r"(?:(?:please|can you|could you|would you|i want to hear|i wanna hear|let's hear|"
    r"play|put on|queue|start|listen to|me|us|the song|the track|some|a song)\s+)*",
)
#: A title without its version suffix: "Song - Radio Edit", "Song (feat. X)".
_VERSION = re.compile(r"\s*(?:\(.*?\)|\[.*?\]|\s-\s.*)$")


@dataclass(frozen=True)
class Match:
    """The best catalog match for a request: a song, or only an artist."""

    track: Track
    score: float
    """0-100; title matches combine title and artist, artist matches are artist-only."""
    kind: str
    """"title" (a named song) or "artist" (the request names only an artist)."""


def request_words(text: str) -> list[str]:
    """The words after "play" and friends, normalised (lower case, no punctuation)."""
    cleaned = _LEAD.sub("", default_process(text))
    return cleaned.split()


class TitleMatcher:
    """Scores every (title, artist) split of a request against the whole catalog at once."""

    def __init__(self, tracks: Sequence[Track]) -> None:
        self.tracks = list(tracks)
        self.titles = [default_process(t.name) for t in self.tracks]
        self.short_titles = [
            default_process(_VERSION.sub("", t.name)) or n
            for t, n in zip(self.tracks, self.titles, strict=True)
        ]
        artists = sorted({default_process(t.artist) for t in self.tracks})
        slot = {a: i for i, a in enumerate(artists)}
        self.artists = artists
        self.artist_of = np.array([slot[default_process(t.artist)] for t in self.tracks])
        self.popularity = np.array([t.popularity or 0.0 for t in self.tracks])

    def _title_scores(self, query: str) -> np.ndarray:
        full = process.cdist([query], self.titles, scorer=fuzz.ratio, dtype=np.float32)[0]
        short = process.cdist([query], self.short_titles, scorer=fuzz.ratio, dtype=np.float32)[0]
        return np.maximum(full, short)

    def _artist_scores(self, query: str) -> np.ndarray:
        scores = process.cdist([query], self.artists, scorer=fuzz.ratio, dtype=np.float32)[0]
        return scores[self.artist_of]

    def splits(self, words: list[str]) -> list[tuple[str, str]]:
        """(title, artist) candidates: every cut, and every cut dropping the word at it ("by")."""
        out = {(" ".join(words), "")}
        for i in range(1, len(words)):
            out.add((" ".join(words[:i]), " ".join(words[i:])))
            if i + 1 < len(words):
                out.add((" ".join(words[:i]), " ".join(words[i + 1 :])))
        return sorted(out)

    def best_title(self, text: str) -> Match | None:
        """The best song for a "play <title> [by <artist>]" request, whatever its score."""
        words = request_words(text)
        if not words or not self.tracks:
            return None
        best = np.zeros(len(self.tracks), dtype=np.float32)
        for title, artist in self.splits(words):
            title_scores = self._title_scores(title)
            if artist:
                combined = TITLE_WEIGHT * title_scores + ARTIST_WEIGHT * self._artist_scores(artist)
            else:
                combined = title_scores
            np.maximum(best, combined, out=best)
        top = float(best.max())
        tied = np.flatnonzero(best >= top - 1e-3)
        i = int(tied[np.argmax(self.popularity[tied])])
        return Match(self.tracks[i], top, "title")

    def best_artist(self, text: str) -> Match | None:
        """The best artist for the whole request ("play drake", "something by daft punk")."""
        words = request_words(text)
        if words and words[0] in {"something", "songs", "music", "anything", "stuff"}:
            words = words[1:]
        if words and words[0] in {"by", "from", "like"}:
            words = words[1:]
        if not words or not self.tracks:
            return None
        scores = self._artist_scores(" ".join(words))
        top = float(scores.max())
        tied = np.flatnonzero(scores >= top - 1e-3)
        i = int(tied[np.argmax(self.popularity[tied])])
        return Match(self.tracks[i], top, "artist")

    def artist_tracks(self, track: Track) -> list[Track]:
        """All songs of `track`'s artist, most popular first."""
        slot = self.artist_of[self.tracks.index(track)] if track in self.tracks else -1
        rows = np.flatnonzero(self.artist_of == slot)
        rows = rows[np.argsort(-self.popularity[rows], kind="stable")]
        return [self.tracks[i] for i in rows]
