"""Recommender benchmark, JSON on stdout.

Speed and memory of the shipped two-tower recommender over the whole catalog:
query -> top-5 latency (int8 ONNX query encoder + numpy index, per-artist cap),
index build time for every catalog song, and the resident memory of a process
that holds the recommender. Baselines in the same run: BM25 over song text and
a full sort instead of argpartition. --quality also runs `heymusic eval` (held-out
playlists and templates, bootstrap intervals, BM25 and zero-shot baselines).

    .venv/bin/python bench/retrieval.py [--quality] [--data spotify_songs.csv]
"""

from __future__ import annotations

import os

# One query at a time: BLAS threads only add wake-up latency on a busy 2-core box.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.config import load_settings, models_dir
from heymusic.music.song_features import song_text
from heymusic.text import words
from heymusic.training.retrieval.requests import TEMPLATES, make_request

QUERIES = 200

_RSS_PROBE = """
import json, resource, sys
from heymusic.config import load_settings
from heymusic.music.recommender import load_recommender
rec = load_recommender(load_settings())
for text in sys.argv[1:]:
    rec.recommend(text)
with open("/proc/self/status") as f:
    kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k.startswith("Rss")
          or k == "VmRSS"}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_mb": round(kb["VmRSS"] / 1024, 1),
                  "private_anon_mb": round(kb["RssAnon"] / 1024, 1),
                  "file_backed_mb": round(kb["RssFile"] / 1024, 1),
                  "peak_rss_mb": round(peak / 1024, 1)}))
"""


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def requests(tracks: list[Any], n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        request = make_request(rng.choice(tracks), rng.randrange(len(TEMPLATES)), rng)
        if request is not None:
            out.append(request.text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="Spotify songs CSV (default [catalog] source)")
    parser.add_argument("--quality", action="store_true", help="also run the held-out eval")
    args = parser.parse_args()
    settings = load_settings()
    source = args.data or settings.catalog.source
    result: dict[str, Any] = {"models": str(models_dir())}

    with tempfile.TemporaryDirectory() as state:
        os.environ["XDG_STATE_HOME"] = state
        from heymusic.music.catalog import import_catalog
        from heymusic.music.recommender import SongModels, build_index, load_recommender

        t0 = time.perf_counter()
        catalog, _ = import_catalog(source)
        result["catalog_import_s"] = round(time.perf_counter() - t0, 2)
        result["catalog_tracks"] = len(catalog)
        models = SongModels(settings)
        t0 = time.perf_counter()
        build_index(settings, catalog, models)
        result["index_build_s"] = round(time.perf_counter() - t0, 2)

        rec = load_recommender(settings)
        texts = requests(catalog.tracks, QUERIES)
        rec.recommend(texts[0])  # warm-up: first run allocates onnxruntime buffers
        encode_ms, search_ms, total_ms = [], [], []
        for text in texts:
            t0 = time.perf_counter()
            vector = rec.models.query.encode([text])[0]
            t1 = time.perf_counter()
            rec.index.search(vector, 5)
            t2 = time.perf_counter()
            rec.served.clear()
            rec.recommend(text, k=5)
            t3 = time.perf_counter()
            encode_ms.append(1000 * (t1 - t0))
            search_ms.append(1000 * (t2 - t1))
            total_ms.append(1000 * (t3 - t2))
        result["query_top5"] = percentiles(total_ms)
        result["query_encode"] = percentiles(encode_ms)
        result["index_search_argpartition"] = percentiles(search_ms)

        matrix = np.asarray(rec.index.vectors)
        sort_ms = []
        for text in texts[:50]:
            vector = rec.models.query.encode([text])[0]
            t0 = time.perf_counter()
            np.argsort(-(matrix @ vector))[:5]
            sort_ms.append(1000 * (time.perf_counter() - t0))
        result["baseline_index_search_full_sort"] = percentiles(sort_ms)

        from rank_bm25 import BM25Okapi

        bm25 = BM25Okapi([words(song_text(t)) or ["_"] for t in catalog.tracks])
        bm25_ms = []
        for text in texts[:30]:
            t0 = time.perf_counter()
            np.argpartition(-bm25.get_scores(words(text)), 5)[:5]
            bm25_ms.append(1000 * (time.perf_counter() - t0))
        result["baseline_bm25_query_top5"] = percentiles(bm25_ms)

        probe = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, *texts[:20]],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ},
        )
        result["recommender_memory"] = json.loads(probe.stdout.strip().splitlines()[-1])

    result["targets"] = {
        "query_top5_p50_ms<=15": result["query_top5"]["p50_ms"] <= 15,
        "index_build_s<=60": result["index_build_s"] <= 60,
        "rss_mb<=150": result["recommender_memory"]["rss_mb"] <= 150,
    }
    if args.quality:
        from heymusic.training.retrieval.evaluate import evaluate
        from heymusic.training.retrieval.train import default_base_model

        result["quality"] = evaluate(
            Path(source), models_dir(), settings.recommender.base_model or default_base_model()
        )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
