"""Oversized requests, JSON on stdout: what a request far longer than anyone can say
costs (issue #35: a 20 kB `ask` took 57 s in the title split search).

Times, on the catalog of the current config: `recommend` on a request of ordinary length
(the baseline, same run), then the title matcher (`best_title`, `best_artist`) and
`recommend` on a request of --kb kilobytes made of random catalog words. `recommend` on
the long one is refused (heymusic.text.MAX_REQUEST_CHARS) after the cap; before it, it
ran the whole search.

    nice -n 5 .venv/bin/python bench/long_request.py [--kb 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from typing import Any

from heymusic.config import load_settings
from heymusic.errors import UserError
from heymusic.music.recommender import load_recommender


def timed(call: Callable[[], Any]) -> tuple[float, str]:
    """Seconds taken, and how it ended ("ok" or the one-line refusal)."""
    start = time.perf_counter()
    try:
        call()
        outcome = "ok"
    except UserError as err:
        outcome = f"refused: {err}"
    return round(time.perf_counter() - start, 3), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rec = load_recommender(load_settings())
    vocab = sorted({w for t in rec.catalog.tracks for w in t.name.split()})
    track = rng.choice(rec.catalog.tracks)
    ordinary = f"play {track.name} by {track.artist}"
    words: list[str] = []
    while len(" ".join(words)) < args.kb * 1000:
        words.append(rng.choice(vocab))
    long_text = "play " + " ".join(words)
    out: dict[str, Any] = {"catalog_tracks": len(rec.catalog.tracks), "kb": args.kb}
    out["ordinary_recommend_s"], _ = timed(lambda: rec.recommend(ordinary))
    out["long_best_title_s"], _ = timed(lambda: rec.matcher.best_title(long_text))
    out["long_best_artist_s"], _ = timed(lambda: rec.matcher.best_artist(long_text))
    out["long_recommend_s"], out["long_recommend"] = timed(lambda: rec.recommend(long_text))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
