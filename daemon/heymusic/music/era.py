"""The years a request names ("rock from the sixties", "80s pop", "early 2000s hits").

The song search ranks by what a request means, and an era is only one of the things it
weighs: "play rock from the sixties" got one sixties song in its top five, next to the
seventies and eighties rock it also resembles. Someone who names a decade means it, so the
search keeps to the years named (heymusic.music.recommender).
"""

from __future__ import annotations

import re

DECADE_WORDS = {
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
    "aughts": 2000,
    "two thousands": 2000,
    "twenty tens": 2010,
    "the tens": 2010,
    "twenty twenties": 2020,
}
PARTS = {"early": (0, 4), "mid": (3, 7), "late": (6, 10)}
"""Years of a decade an "early" / "mid" / "late" before it keeps."""
_DECADE = re.compile(
    r"(?:\b(?P<part>early|mid|late)[\s-]+)?(?:"
    r"['’]?\b(?P<century>19|20)?(?P<digit>\d)0['’]?s\b"
    r"|\b(?:nineteen[\s-]+)?(?P<word>"
    + "|".join(sorted(DECADE_WORDS, key=len, reverse=True))
    + r")\b)"
)


def named_years(text: str) -> range | None:
    """The years of the first decade `text` names, None if it names none: "the 60s",
    "the '60s", "the 1960s", "the sixties" and "nineteen sixties" are 1960-1969, "the early
    two thousands" 2000-2003. A two-digit decade is of the last century from the 30s on
    ("00s", "10s" and "20s": this one's)."""
    found = _DECADE.search(text.lower())
    if found is None:
        return None
    if found["word"] is not None:
        start = DECADE_WORDS[found["word"]]
    else:
        digit = int(found["digit"])
        century = found["century"] or ("20" if digit <= 2 else "19")
        start = int(century) * 100 + digit * 10
    first, end = PARTS.get(found["part"] or "", (0, 10))
    return range(start + first, start + end)
