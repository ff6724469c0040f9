"""Song metadata -> the fixed-size input vector of the song tower (numpy, shared by train and run).

Layout: multi-hot tags | genre one-hot | subgenre one-hot | year (normalised, present,
decade buckets) | audio features (z-scored) | audio presence mask. The vocabulary
and statistics come from the training catalog and ship as JSON beside the model;
unknown tags are ignored, so songs imported later need no retraining.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.music.catalog import AUDIO_FEATURES
from heymusic.track import Track

DECADES = tuple(range(1950, 2030, 10))


@dataclass(frozen=True)
class SongFeaturizer:
    tags: tuple[str, ...]
    genres: tuple[str, ...]
    subgenres: tuple[str, ...]
    year_mean: float
    year_std: float
    audio: tuple[str, ...]
    audio_mean: tuple[float, ...]
    audio_std: tuple[float, ...]

    @property
    def dim(self) -> int:
        return (
            len(self.tags)
            + len(self.genres)
            + len(self.subgenres)
            + 2
            + len(DECADES)
            + 2 * len(self.audio)
        )

    @classmethod
    def fit(cls, tracks: Sequence[Track], min_tag_count: int = 2) -> SongFeaturizer:
        """Vocabulary and statistics of a training catalog."""
        tag_counts = Counter(tag for t in tracks for tag in t.tags)
        years = np.array([t.year for t in tracks if t.year], dtype=np.float64)
        means, stds = [], []
        for name in AUDIO_FEATURES:
            values = np.array([t.features[name] for t in tracks if name in t.features])
            means.append(float(values.mean()) if values.size else 0.0)
            stds.append(float(values.std()) if values.size and values.std() > 0 else 1.0)
        return cls(
            tags=tuple(sorted(t for t, n in tag_counts.items() if n >= min_tag_count)),
            genres=tuple(sorted({t.genre for t in tracks if t.genre})),
            subgenres=tuple(sorted({t.subgenre for t in tracks if t.subgenre})),
            year_mean=float(years.mean()) if years.size else 2000.0,
            year_std=float(years.std()) if years.size and years.std() > 0 else 10.0,
            audio=AUDIO_FEATURES,
            audio_mean=tuple(means),
            audio_std=tuple(stds),
        )

    def transform(self, tracks: Sequence[Track]) -> np.ndarray:
        """(n, dim) float32 feature matrix."""
        tag_slot = {t: i for i, t in enumerate(self.tags)}
        genre_slot = {g: i for i, g in enumerate(self.genres)}
        sub_slot = {g: i for i, g in enumerate(self.subgenres)}
        n_tags, n_gen, n_sub = len(self.tags), len(self.genres), len(self.subgenres)
        year_at = n_tags + n_gen + n_sub
        audio_at = year_at + 2 + len(DECADES)
        mean = np.array(self.audio_mean)
        std = np.array(self.audio_std)
        x = np.zeros((len(tracks), self.dim), dtype=np.float32)
        for row, track in enumerate(tracks):
            for tag in track.tags:
                if (i := tag_slot.get(tag)) is not None:
                    x[row, i] = 1.0
            if (i := genre_slot.get(track.genre)) is not None:
                x[row, n_tags + i] = 1.0
            if (i := sub_slot.get(track.subgenre)) is not None:
                x[row, n_tags + n_gen + i] = 1.0
            if track.year:
                x[row, year_at] = (track.year - self.year_mean) / self.year_std
                x[row, year_at + 1] = 1.0
                decade = min(max(track.year // 10 * 10, DECADES[0]), DECADES[-1])
                x[row, year_at + 2 + DECADES.index(decade)] = 1.0
            for j, name in enumerate(self.audio):
                if name in track.features:
                    z = (track.features[name] - mean[j]) / std[j]
                    x[row, audio_at + j] = float(np.clip(z, -5.0, 5.0))
                    x[row, audio_at + len(self.audio) + j] = 1.0
        return x

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> SongFeaturizer:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**fields)


def song_text(track: Track) -> str:
    """The text a text-only model sees for a song (baselines, zero-shot encoder)."""
    tags = " ".join(track.tags[:12])
    return f"{track.name} by {track.artist}. {tags}".strip()


# --- the language of requests -------------------------------------------------------------------
# Spoken-style requests are generated from song metadata for training and evaluation; the
# recommender also uses these words to tell a description ("play happy") from a title.

#: Mood from valence x energy: (name, test, phrasings).
MOODS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "cheerful", "feel good", "uplifting", "joyful", "sunny", "good mood"),
    "sad": ("sad", "melancholy", "heartbreak", "depressing", "gloomy", "crying", "lonely"),
    "chill": ("chill", "relaxing", "mellow", "calm", "laid back", "peaceful", "easy going"),
    "angry": ("angry", "aggressive", "intense", "dark", "furious", "rage", "hard hitting"),
}
#: Tempo/energy/texture classes: phrasings.
ENERGIES: dict[str, tuple[str, ...]] = {
    "workout": (
        "upbeat",
        "for a workout",
        "for a run",
        "high energy",
        "pump up",
        "for the gym",
        "fast",
        "energetic",
    ),
    "slow": ("slow", "slow tempo", "downtempo", "slow jams", "for falling asleep", "quiet"),
    "dance": ("danceable", "to dance to", "for a party", "groovy", "club", "party"),
    "acoustic": ("acoustic", "unplugged", "with guitar and voice", "stripped down"),
    "instrumental": ("instrumental", "no vocals", "without lyrics", "for studying", "to focus"),
}
ERA_WORDS: dict[int, tuple[str, ...]] = {
    1950: ("the fifties", "the 50s", "the 1950s"),
    1960: ("the sixties", "the 60s", "the 1960s"),
    1970: ("the seventies", "the 70s", "the 1970s"),
    1980: ("the eighties", "the 80s", "the 1980s"),
    1990: ("the nineties", "the 90s", "the 1990s"),
    2000: ("the two thousands", "the 2000s", "the early two thousands", "the noughties"),
    2010: ("the twenty tens", "the 2010s", "the last decade", "the tens"),
    2020: ("twenty twenty", "2020", "this year", "right now"),
}
#: Spoken forms of genre names ("r&b" is said "r and b").
SPOKEN: dict[str, tuple[str, ...]] = {
    "r&b": ("r&b", "r and b", "rnb", "rhythm and blues"),
    "edm": ("edm", "e d m", "electronic dance music", "electronic"),
    "rap": ("rap", "rap music"),
    "latin": ("latin", "latino", "latin music"),
    "hip hop": ("hip hop", "hip-hop", "hiphop"),
    "post-teen pop": ("post-teen pop", "post teen pop", "teen pop"),
}
FILLER = frozenset(
    "play put on some something songs song music tracks track me a an the from of for to by with "
    "and please i want hear like listen could can you would get give let's that is are era years "
    "year decade old new kind type stuff anything everything any more bit little".split()
)


def mood_of(track: Track) -> str | None:
    valence = track.features.get("valence")
    energy = track.features.get("energy")
    if valence is None or energy is None:
        return None
    if valence >= 0.6 and energy >= 0.6:
        return "happy"
    if valence <= 0.3 and energy <= 0.55:
        return "sad"
    if energy <= 0.5 and valence > 0.3:
        return "chill"
    if valence <= 0.35 and energy >= 0.75:
        return "angry"
    return None


def energies_of(track: Track) -> list[str]:
    f = track.features
    out = []
    if f.get("energy", 0) >= 0.8 and f.get("tempo", 0) >= 118:
        out.append("workout")
    if "tempo" in f and f["tempo"] < 100 and f.get("energy", 1) < 0.5:
        out.append("slow")
    if f.get("danceability", 0) >= 0.78:
        out.append("dance")
    if f.get("acousticness", 0) >= 0.6:
        out.append("acoustic")
    if f.get("instrumentalness", 0) >= 0.5:
        out.append("instrumental")
    return out


def decade_of(track: Track) -> int | None:
    return min(max(track.year // 10 * 10, DECADES[0]), DECADES[-1]) if track.year else None


def _phrase_words(groups: dict[object, tuple[str, ...]]) -> set[str]:
    return {w for phrases in groups.values() for p in phrases for w in p.split()}


#: Words that describe music rather than name a song (plus request filler).
DESCRIPTIVE_WORDS: frozenset[str] = frozenset(
    FILLER
    | _phrase_words(MOODS)  # type: ignore[arg-type]
    | _phrase_words(ENERGIES)  # type: ignore[arg-type]
    | _phrase_words(ERA_WORDS)  # type: ignore[arg-type]
    | _phrase_words(SPOKEN)  # type: ignore[arg-type]
)

GENRE_WORDS = frozenset(
    "jazz blues classical country folk metal punk reggae funk disco soul gospel techno trance "
    "ambient lofi lo-fi indie grunge ska opera bluegrass piano orchestral christmas rock pop "
    "hip-hop rap house edm electronic latin reggaeton trap swing r&b rnb dubstep drum bass "
    "acoustic instrumental".split()
)
"""Genres people ask for by name, whether or not the catalog's genres name them (those are
added per catalog: `describes_music`)."""


def describes_music(text: str, genres: Collection[str] = ()) -> bool:
    """Whether `text` only describes music ("something calm", "some jazz", "upbeat 80s
    stuff"): a mood, energy, era or genre (`genres`: the catalog's own names for them), and
    nothing but such words and request filler. Such words without a verb are a request."""
    said = _tokens(text)
    own = {t for g in genres for t in _tokens(g)}
    if not said or not all(t in _KNOWN or t in own for t in said):
        return False
    padded = f" {' '.join(said)} "
    own_phrases = {" ".join(_tokens(g)) for g in genres}
    return any(f" {p} " in padded for p in _DESCRIBING | own_phrases)


def _tokens(text: str) -> list[str]:
    """Lower-case letters and digits: "R&B" and "r and b" meet as "r b", "lo-fi" as "lo fi"."""
    return re.findall(r"[a-z0-9]+", text.lower().replace(" and ", " "))


_DESCRIBING = {
    " ".join(_tokens(p.removeprefix("the ")))
    for groups in (MOODS, ENERGIES, ERA_WORDS, SPOKEN)
    for phrases in groups.values()
    for p in phrases
} | {" ".join(_tokens(g)) for g in GENRE_WORDS}
"""What describes music on its own: "calm", "jazz", "the 80s", "laid back"; not "up" or
"back" alone, which do so only in a phrase ("pump up", "laid back")."""
_KNOWN = {t for w in DESCRIPTIVE_WORDS | GENRE_WORDS for t in _tokens(w)}
