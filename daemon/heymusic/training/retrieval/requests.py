"""Training requests: what people might say, generated from a song's own metadata.

The two-tower recommender trains on these and its evaluation scores on the templates held
out of training; `satisfies` says whether a song has what a request asked for. The
daemon never needs them (heymusic.music.song_features holds the vocabulary it does use).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from heymusic.music.song_features import (
    ENERGIES,
    ERA_WORDS,
    MOODS,
    SPOKEN,
    decade_of,
    energies_of,
    mood_of,
)
from heymusic.track import Track

#: Request templates. Slots: {genre} (genre or subgenre), {mood}, {energy}, {era}, {artist}.
#: Templates at positions in HELD_OUT_TEMPLATES are never trained on: evaluation uses them.
TEMPLATES: tuple[str, ...] = (
    "{genre}",
    "play some {genre}",
    "play {genre} music",
    "put on {genre}",
    "{mood} songs",
    "something {mood}",
    "play me something {mood}",
    "{mood} {genre}",
    "{genre} from {era}",
    "songs from {era}",
    "music from {era}",
    "{energy} {genre}",
    "something {energy}",
    "{energy} songs",
    "{mood} {genre} from {era}",
    "{energy} {genre} from {era}",
    "{genre} {energy}",
    "something like {artist}",
    "music like {artist}",
    "{mood} music for tonight",
    "i want to hear {genre}",
    "could you play some {mood} {genre}",
    "best {genre} of {era}",
    "put on something {energy} from {era}",
    "give me {mood} tracks",
    "{genre} hits from {era}",
    "a {mood} {genre} playlist",
    "songs that sound like {artist}",
)
HELD_OUT_TEMPLATES = frozenset({20, 21, 22, 23, 24, 25, 26, 27})
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Request:
    """A generated request and the attributes a right answer must have."""

    text: str
    template: int
    wants: dict[str, str | int]
    """genre/subgenre/mood/energy/decade/artist the request asked for."""


def genre_phrases(label: str) -> tuple[str, ...]:
    return SPOKEN.get(label, (label,))


def make_request(track: Track, template: int, rng: random.Random) -> Request | None:
    """Fill `template` from `track`'s metadata; None when the track lacks a needed attribute."""
    text = TEMPLATES[template]
    wants: dict[str, str | int] = {}
    values: dict[str, str] = {}
    for slot in _SLOT.findall(text):
        if slot == "genre":
            use_sub = bool(track.subgenre) and (not track.genre or rng.random() < 0.5)
            key, label = ("subgenre", track.subgenre) if use_sub else ("genre", track.genre)
            if not label:
                return None
            wants[key] = label
            values[slot] = rng.choice(genre_phrases(label))
        elif slot == "mood":
            mood = mood_of(track)
            if mood is None:
                return None
            wants["mood"] = mood
            values[slot] = rng.choice(MOODS[mood])
        elif slot == "energy":
            options = energies_of(track)
            if not options:
                return None
            energy = rng.choice(options)
            wants["energy"] = energy
            values[slot] = rng.choice(ENERGIES[energy])
        elif slot == "era":
            decade = decade_of(track)
            if decade is None:
                return None
            wants["decade"] = decade
            values[slot] = rng.choice(ERA_WORDS[decade])
        elif slot == "artist":
            if not track.artist:
                return None
            wants["artist"] = track.artist.lower()
            values[slot] = track.artist.lower()
    return Request(text.format(**values), template, wants)


def satisfies(track: Track, wants: dict[str, str | int]) -> bool:
    """Whether `track` is a right answer to a request asking for `wants`."""
    for key, value in wants.items():
        if key in ("genre", "subgenre") and value not in track.tags:
            return False
        if key == "mood" and mood_of(track) != value:
            return False
        if key == "energy" and value not in energies_of(track):
            return False
        if key == "decade" and decade_of(track) != value:
            return False
        if key == "artist" and track.artist.lower() != value:
            return False
    return True


_CONFUSIONS = {
    "for": "four",
    "to": "two",
    "by": "buy",
    "songs": "sons",
    "some": "sum",
    "music": "musics",
    "from": "for",
    "the": "a",
    "chill": "shill",
    "rap": "wrap",
    "rock": "rok",
    "sad": "said",
    "pop": "pup",
    "house": "how's",
    "soul": "sole",
    "trap": "trip",
    "dance": "dens",
}
_LEADS = ("", "", "", "play ", "hey music ", "hey music play ", "a music ", "hey new sick ", "um ")


def asr_noise(text: str, rng: random.Random) -> str:
    """A misheard variant: recogniser confusions, dropped words, letter slips, junk lead-in."""
    out: list[str] = []
    for word in text.split():
        roll = rng.random()
        if roll < 0.12 and word in _CONFUSIONS:
            word = _CONFUSIONS[word]
        elif roll < 0.18 and len(word) > 3:
            i = rng.randrange(len(word))
            word = word[:i] + rng.choice("aeioutnrsl") + word[i + 1 :]
        elif roll < 0.22 and len(out) > 0:
            continue
        out.append(word)
    return (rng.choice(_LEADS) + " ".join(out)).strip() or text
