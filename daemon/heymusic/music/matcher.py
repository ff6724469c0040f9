"""Fuzzy title/artist matching of spoken requests ("play blinding lights by the weekend").

Every split of the request words into title and artist is scored as
0.65 x title + 0.35 x artist similarity (rapidfuzz), so a misheard "by" or a
request without one still finds the song; ties go to the more popular track.
Scoring "title by artist" strings as a whole fails: the shared word "by" lifts
the whole catalog (see FINDINGS).
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from heymusic.track import Track

TITLE_WEIGHT = 0.65
ARTIST_WEIGHT = 0.35
#: The wake phrase (often misheard: "a music"), politeness, then one verb, then filler. Without
#: its "hey" (or "ok", "a") a wake phrase is only taken off before a verb: "some music for
#: tonight" is a request, not a misheard "hey music" before the title "For Tonight".
_WAKE = re.compile(r"^(?:(hey|ok|okay|a)\s+)?(?:\w+\s+)?(?:music|musics)\s+")
_POLITE = re.compile(
    r"^(?:(?:please|can you|could you|would you|i want to hear|i wanna hear|let's hear|"
    r"let s hear|i'd like)\s+)*"
)
_VERB = re.compile(r"^(?:play|put on|queue|start|listen to)\s+")
_FILLER = re.compile(r"^(?:(?:me|us|the song|the track|some|a song|song)\s+)+")
#: Request words are looked up among catalog words at least this similar (rapidfuzz ratio).
WORD_CUTOFF = 75.0
#: Words found in more songs than this ("the", "love") do not widen the candidates alone.
COMMON_WORD_ROWS = 400
#: A title without its version suffix: "Song - Radio Edit", "Song (feat. X)".
_VERSION = re.compile(r"\s*(?:\(.*?\)|\[.*?\]|\s-\s.*)$")


def plain_title(name: str) -> str:
    """A title without its version: "Iron Man - 2014 Remaster" -> "Iron Man"."""
    return _VERSION.sub("", name) or name


@dataclass(frozen=True)
class Match:
    """The best catalog match for a request: a song, or only an artist."""

    track: Track
    score: float
    """0-100; title matches combine title and artist, artist matches are artist-only."""
    kind: str
    """"title" (a named song) or "artist" (the request names only an artist)."""


def request_variants(text: str) -> list[list[str]]:
    """The request words without wake phrase and verb, with and without filler ("me", "some").

    Only one verb is dropped, so "play Play Me" keeps its title.
    """
    text = default_process(text)
    wake = _WAKE.match(text)
    if wake and (wake.group(1) or _VERB.match(_POLITE.sub("", text[wake.end() :]))):
        text = text[wake.end() :]
    cleaned = _VERB.sub("", _POLITE.sub("", text), count=1)
    variants = [cleaned.split()]
    bare = _FILLER.sub("", cleaned).split()
    if bare and bare != variants[0]:
        variants.append(bare)
    return [v for v in variants if v]


def last_by(words: list[str]) -> int:
    """Where the last "by" is in `words` (0 when there is none): the title is before it, the
    artist after, in "<title> by <artist>"."""
    return len(words) - 1 - words[::-1].index("by") if "by" in words else 0


def request_words(text: str) -> list[str]:
    """The words of the request proper (wake phrase, verb and filler removed)."""
    variants = request_variants(text)
    return variants[-1] if variants else []


class TitleMatcher:
    """Scores every (title, artist) split of a request against the catalog.

    An inverted index of title/artist words (looked up fuzzily) narrows the catalog
    to songs sharing a word with the request, so a request costs milliseconds.
    """

    def __init__(self, tracks: Sequence[Track]) -> None:
        self.tracks = list(tracks)
        titles = [default_process(t.name) for t in self.tracks]
        # Kept: the title without "(feat. X)" / "- Remix". Full titles are processed again for
        # the few candidate rows of a request, which costs less than holding 25k more strings.
        self.short_titles: list[str] = []
        for track, title in zip(self.tracks, titles, strict=True):
            short = default_process(_VERSION.sub("", track.name))
            self.short_titles.append(short if short else title)
        self.artist_names = [sys.intern(default_process(t.artist)) for t in self.tracks]
        pairs_words = zip(titles, self.artist_names, strict=True)
        self.max_words = 2 + max(
            (len(t.split()) + len(a.split()) for t, a in pairs_words), default=0
        )
        """Words in the longest "<title> by <artist>" here, and one before it (a misheard verb:
        "pay <title> by <artist>"): a request's later words cannot
        be part of any (title, artist) split, and the search stops there, so its cost is
        bounded whatever the request's length (the split search grows as words^2)."""
        artists = sorted(set(self.artist_names))
        self.artist_slot = {a: i for i, a in enumerate(artists)}
        """Processed artist name -> its index in `artists` (also: is this exactly an artist?)."""
        self.artists = artists
        self.artist_of = np.array([self.artist_slot[a] for a in self.artist_names], dtype=np.int32)
        self.popularity = np.array([t.popularity or 0.0 for t in self.tracks], dtype=np.float32)
        # Word -> rows as one CSR pair (a small array per word would cost ~100 bytes each).
        pairs: dict[str, list[int]] = {}
        for row, (title, artist) in enumerate(zip(titles, self.artist_names, strict=True)):
            for word in set(title.split()) | set(artist.split()):
                pairs.setdefault(word, []).append(row)
        self.vocab = sorted(pairs)
        self.offsets = np.cumsum([0] + [len(pairs[w]) for w in self.vocab]).astype(np.int64)
        self.rows = np.fromiter(
            (r for w in self.vocab for r in pairs[w]), dtype=np.int32, count=int(self.offsets[-1])
        )

    def _candidates(self, words: list[str]) -> np.ndarray:
        """Rows sharing a (fuzzily) similar word with the request; rare words first. Each
        two words side by side are looked up joined too: Whisper writes a long word as two
        ("strip these by car wash" for "Striptease by carwash")."""
        unique = sorted(set(words) | {a + b for a, b in itertools.pairwise(words)})
        similar = process.cdist(
            unique, self.vocab, scorer=fuzz.ratio, dtype=np.uint8, score_cutoff=WORD_CUTOFF
        )
        found = []
        for row in similar:
            hits = np.flatnonzero(row)
            if hits.size:
                found.append(
                    np.unique(
                        np.concatenate(
                            [self.rows[self.offsets[i] : self.offsets[i + 1]] for i in hits]
                        )
                    )
                )
        found.sort(key=len)
        keep = [rows for rows in found if len(rows) <= COMMON_WORD_ROWS] or found[:2]
        return np.unique(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)

    def best_title(self, text: str, exclude: Collection[str] = ()) -> Match | None:
        """The best song for a "play <title> [by <artist>]" request, whatever its score;
        never one whose track id is in `exclude`."""
        rows, best = self._title_scores(text, exclude)
        if not rows.size:
            return None
        top = float(best.max())
        tied = rows[best >= top - 1e-3]
        i = int(tied[np.argmax(self.popularity[tied])])
        return Match(self.tracks[i], top, "title")

    def title_candidates(
        self, text: str, n: int, min_score: float, exclude: Collection[str] = ()
    ) -> list[Match]:
        """The n best songs for a title request scoring at least `min_score`, best first,
        one per song: its versions ("Song", "Song - Remastered") count once, the most
        popular kept. For a second opinion from the audio when the best is not sure."""
        rows, best = self._title_scores(text, exclude)
        order = np.lexsort((-self.popularity[rows], -best))
        found: list[Match] = []
        seen: set[tuple[str, int]] = set()
        for j in order:
            if best[j] < min_score or len(found) >= n:
                break
            row = int(rows[j])
            song = (self.short_titles[row], int(self.artist_of[row]))
            if song not in seen:
                seen.add(song)
                found.append(Match(self.tracks[row], float(best[j]), "title"))
        return found

    def artist_first(
        self, text: str, artists: int, per_artist: int, exclude: Collection[str] = ()
    ) -> list[Match]:
        """For "<title> by <artist>" with the artist misheard ("by any action" for "by Janet
        Jackson"): the songs of the `artists` artists nearest the words after the last "by",
        each artist's `per_artist` titles nearest the words before it, best first. Such a
        song can be missing from `title_candidates`, whose score is mostly the title's."""
        words = request_words(text)
        cut = last_by(words)
        if not 0 < cut < len(words) - 1 or not self.tracks:
            return []
        title, artist = " ".join(words[:cut]), " ".join(words[cut + 1 :])
        near = self._artist_scores_by_slot(artist)
        found: list[Match] = []
        for slot in np.argsort(-near, kind="stable")[:artists]:
            rows = np.array(
                [
                    r
                    for r in np.flatnonzero(self.artist_of == slot)
                    if self.tracks[r].track_id not in exclude
                ],
                np.int64,
            )
            if not rows.size:
                continue
            titles = process.cdist(
                [title], [self.short_titles[r] for r in rows], scorer=fuzz.ratio, dtype=np.float32
            )[0]
            scores = TITLE_WEIGHT * titles + ARTIST_WEIGHT * float(near[slot])
            seen: set[str] = set()
            for j in np.lexsort((-self.popularity[rows], -scores)):
                if len(seen) == per_artist:
                    break
                if self.short_titles[rows[j]] not in seen:  # one version of each song
                    seen.add(self.short_titles[rows[j]])
                    found.append(Match(self.tracks[int(rows[j])], float(scores[j]), "title"))
        return sorted(found, key=lambda m: -m.score)

    def _artist_scores_by_slot(self, query: str) -> np.ndarray:
        return process.cdist([query], self.artists, scorer=fuzz.ratio, dtype=np.float32)[0]

    def _title_scores(
        self, text: str, exclude: Collection[str] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate rows and each one's best score over the request's (title, artist) splits."""
        variants = [words[: self.max_words] for words in request_variants(text)]
        rows = self._candidates(variants[0]) if variants and self.tracks else np.zeros(0, np.int64)
        if exclude:
            rows = np.array([r for r in rows if self.tracks[r].track_id not in exclude], np.int64)
        best = np.zeros(len(rows), dtype=np.float32)
        if not rows.size:
            return rows, best
        titles = [default_process(self.tracks[r].name) for r in rows]
        shorts = [self.short_titles[r] for r in rows]
        artists = [self.artist_names[r] for r in rows]
        for words in variants:
            for title, artist in self.splits(words):
                scores = np.maximum(
                    process.cdist([title], titles, scorer=fuzz.ratio, dtype=np.float32)[0],
                    process.cdist([title], shorts, scorer=fuzz.ratio, dtype=np.float32)[0],
                )
                if artist:
                    artist_scores = process.cdist(
                        [artist], artists, scorer=fuzz.ratio, dtype=np.float32
                    )[0]
                    scores = TITLE_WEIGHT * scores + ARTIST_WEIGHT * artist_scores
                np.maximum(best, scores, out=best)
        return rows, best

    def _artist_scores(self, query: str) -> np.ndarray:
        return self._artist_scores_by_slot(query)[self.artist_of]

    def splits(self, words: list[str]) -> list[tuple[str, str]]:
        """(title, artist) candidates: every cut, and every cut dropping the word at it ("by")."""
        out = {(" ".join(words), "")}
        for i in range(1, len(words)):
            out.add((" ".join(words[:i]), " ".join(words[i:])))
            if i + 1 < len(words):
                out.add((" ".join(words[:i]), " ".join(words[i + 1 :])))
        return sorted(out)

    def best_artist(self, text: str) -> Match | None:
        """The best artist for the whole request ("play drake", "something by daft punk")."""
        words = request_words(text)
        if words and words[0] in {"something", "songs", "music", "anything", "stuff"}:
            words = words[1:]
        if words and words[0] in {"by", "from", "like"}:
            words = words[1:]
        if not words or not self.tracks:
            return None
        scores = self._artist_scores(" ".join(words[: self.max_words]))
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
