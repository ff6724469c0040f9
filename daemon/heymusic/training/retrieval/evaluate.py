"""Held-out evaluation of the shipped two-tower model against BM25 and zero-shot MiniLM.

Queries: names of the held-out playlists (relevant = the playlist's own tracks) and
requests from the held-out templates (relevant = songs with the asked attributes), over
the full catalog. Song tags come from training playlists only, so a held-out playlist's
name never sits in its own tracks' tags. Metrics carry bootstrap 95 % intervals.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from heymusic.config import PROJECT_DIR, cache_dir
from heymusic.errors import UserError
from heymusic.music.encoders import QueryEncoder, SongEncoder
from heymusic.music.song_features import SongFeaturizer, song_text
from heymusic.text import words
from heymusic.track import Track
from heymusic.training.manifest import edited_manifest
from heymusic.training.retrieval.requests import (
    HELD_OUT_TEMPLATES,
    asr_noise,
    make_request,
    satisfies,
)

_LOGGER = logging.getLogger(__name__)

METRICS = ("genre_p5", "subgenre_p5", "recall10", "ndcg10", "mrr")
TEMPLATE_QUERIES = 400
BOOTSTRAP = 1000
DEPTH = 10


@dataclass
class Query:
    text: str
    kind: str
    """"playlist" or "template"."""
    genre: str | None
    subgenre: str | None
    relevant: set[int] | None
    """Playlist queries: rows of the playlist's tracks."""
    wants: dict[str, str | int] | None
    """Template queries: attributes a right answer has."""


Ranker = Callable[[list[str]], np.ndarray]
"""Query texts -> (n, DEPTH) catalog rows, best first."""


def build_queries(tracks: list[Track], playlists: Sequence[Any], seed: int) -> list[Query]:
    row = {t.track_id: i for i, t in enumerate(tracks)}
    queries = [
        Query(
            text=p.name.lower(),
            kind="playlist",
            genre=p.genre or None,
            subgenre=p.subgenre or None,
            relevant={row[t] for t in p.track_ids if t in row},
            wants=None,
        )
        for p in playlists
    ]
    rng = random.Random(seed + 1)
    held = sorted(HELD_OUT_TEMPLATES)
    while sum(q.kind == "template" for q in queries) < TEMPLATE_QUERIES:
        request = make_request(rng.choice(tracks), rng.choice(held), rng)
        if request is None:
            continue
        text = asr_noise(request.text, rng) if rng.random() < 0.3 else request.text
        queries.append(
            Query(
                text=text,
                kind="template",
                genre=str(request.wants["genre"]) if "genre" in request.wants else None,
                subgenre=str(request.wants["subgenre"]) if "subgenre" in request.wants else None,
                relevant=None,
                wants=request.wants,
            )
        )
    return queries


def score_query(
    query: Query, ranked: np.ndarray, tracks: list[Track], labels: dict[str, set[str]]
) -> dict[str, float]:
    """Per-query metrics (NaN where a metric does not apply).

    Genre and subgenre hits use the tracks' exact playlist labels, not tag words.
    """
    top = [tracks[int(r)] for r in ranked[:DEPTH]]
    top_labels = [labels.get(t.track_id, set()) for t in top]
    if query.relevant is not None:
        hits = [int(r) in query.relevant for r in ranked[:DEPTH]]
        n_rel = len(query.relevant)
    else:
        assert query.wants is not None
        wanted = {v for k, v in query.wants.items() if k in ("genre", "subgenre")}
        rest = {k: v for k, v in query.wants.items() if k not in ("genre", "subgenre")}
        hits = [
            wanted <= lab and satisfies(t, rest) for t, lab in zip(top, top_labels, strict=True)
        ]
        n_rel = DEPTH
    gains = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / np.log2(i + 2) for i in range(min(n_rel, DEPTH)))
    first = next((i for i, h in enumerate(hits) if h), None)
    nan = float("nan")
    return {
        "genre_p5": float(np.mean([query.genre in t.tags for t in top[:5]]))
        if query.genre
        else nan,
        "subgenre_p5": (
            float(np.mean([query.subgenre in t.tags for t in top[:5]])) if query.subgenre else nan
        ),
        "recall10": sum(hits) / n_rel if query.relevant is not None and n_rel else nan,
        "ndcg10": gains / ideal if ideal else nan,
        "mrr": 1.0 / (first + 1) if first is not None else 0.0,
        "p5": float(np.mean(hits[:5])),
    }


def summarize(rows: list[dict[str, float]], seed: int) -> dict[str, dict[str, float]]:
    """Mean and bootstrap 95 % interval of each metric over the queries it applies to."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in (*METRICS, "p5"):
        values = np.array([r[name] for r in rows], dtype=np.float64)
        values = values[~np.isnan(values)]
        if not values.size:
            continue
        samples = rng.choice(values, size=(BOOTSTRAP, values.size), replace=True).mean(axis=1)
        out[name] = {
            "mean": round(float(values.mean()), 4),
            "lo": round(float(np.percentile(samples, 2.5)), 4),
            "hi": round(float(np.percentile(samples, 97.5)), 4),
            "n": int(values.size),
        }
    return out


# --- rankers ------------------------------------------------------------------------------------


def vector_ranker(encoder: QueryEncoder, songs: np.ndarray) -> Ranker:
    def rank(texts: list[str]) -> np.ndarray:
        q = encoder.encode(texts)
        scores = q @ songs.T
        top = np.argpartition(-scores, DEPTH, axis=1)[:, :DEPTH]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    return rank


def bm25_ranker(tracks: list[Track]) -> Ranker:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([words(song_text(t)) or ["_"] for t in tracks])

    def rank(texts: list[str]) -> np.ndarray:
        out = []
        for text in tqdm(texts, desc="bm25", leave=False):
            scores = bm25.get_scores(words(text))
            out.append(np.argsort(-scores, kind="stable")[:DEPTH])
        return np.array(out)

    return rank


def zero_shot_ranker(tracks: list[Track], data_sha: str, base_model: str) -> Ranker:
    """MiniLM mean-pooled over song text, int8 ONNX like the shipped encoder (cached)."""
    out_dir = cache_dir() / "zero_shot"
    if not (out_dir / "model.onnx").exists():
        _export_module().export_zero_shot(base_model, out_dir)
    encoder = QueryEncoder(out_dir, threads=2)
    key = hashlib.sha256(
        (data_sha + (out_dir / "model.onnx").read_bytes().hex()[:4096]).encode()
    ).hexdigest()[:16]
    cached = out_dir / f"songs-{key}.npy"
    if cached.exists():
        songs = np.load(cached)
    else:
        texts = [song_text(t) for t in tracks]
        parts = [
            encoder.encode(texts[i : i + 512])
            for i in tqdm(range(0, len(texts), 512), desc="zero-shot songs", unit=" batch")
        ]
        songs = np.concatenate(parts)
        np.save(cached, songs)
    return vector_ranker(encoder, songs)


def _export_module() -> Any:
    """export_onnx.py lives at the project root (a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_onnx", PROJECT_DIR / "export_onnx.py")
    if spec is None or spec.loader is None:
        raise UserError(f"{PROJECT_DIR / 'export_onnx.py'} missing: run from a source checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the run ------------------------------------------------------------------------------------


def evaluate(
    csv_path: Path, models: Path, base_model: str, seed: int | None = None
) -> dict[str, Any]:
    """Every method on the same held-out queries; returns metrics, intervals and the verdict."""
    from heymusic.training.retrieval.train import load_data

    manifest = json.loads((models / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest.get("query_encoder", {})
    seed = entry.get("seed", 0) if seed is None else seed
    data = load_data(csv_path, seed)
    if entry.get("training_data_sha256") not in (None, data.data_sha256):
        _LOGGER.warning("the shipped model was trained on other data than %s", csv_path)
    tracks = data.tracks
    queries = build_queries(tracks, data.eval_playlists, seed)
    texts = [q.text for q in queries]

    featurizer = SongFeaturizer.load(models / "song_features.json")
    songs = SongEncoder(models / "song_encoder.onnx").encode(featurizer.transform(tracks))
    rankers: dict[str, Ranker] = {
        "two_tower": vector_ranker(QueryEncoder(models / "query_encoder", threads=2), songs),
        "bm25": bm25_ranker(tracks),
        "zero_shot_minilm": zero_shot_ranker(tracks, data.data_sha256, base_model),
    }
    results: dict[str, Any] = {}
    for name, rank in rankers.items():
        ranked = rank(texts)
        per_query = [
            score_query(q, r, tracks, data.genres) for q, r in zip(queries, ranked, strict=True)
        ]
        results[name] = {
            "all": summarize(per_query, seed),
            "playlists": summarize(
                [m for m, q in zip(per_query, queries, strict=True) if q.kind == "playlist"], seed
            ),
            "templates": summarize(
                [m for m, q in zip(per_query, queries, strict=True) if q.kind == "template"], seed
            ),
        }
    ours = results["two_tower"]["all"]["subgenre_p5"]
    beats = {
        name: ours["lo"] > results[name]["all"]["subgenre_p5"]["hi"]
        for name in ("bm25", "zero_shot_minilm")
    }
    return {
        "data_sha256": data.data_sha256,
        "seed": seed,
        "queries": {
            "playlists": sum(q.kind == "playlist" for q in queries),
            "templates": sum(q.kind == "template" for q in queries),
        },
        "catalog_tracks": len(tracks),
        "methods": results,
        "two_tower_beats_on_subgenre_p5": beats,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """The table in docs/recommender.md: one row per method and query set, mean [95 % interval]."""
    head = "| method | queries | " + " | ".join(METRICS + ("p5",)) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 3)]
    for method, sets in report["methods"].items():
        for set_name in ("playlists", "templates", "all"):
            cells = []
            for metric in (*METRICS, "p5"):
                m = sets[set_name].get(metric)
                cells.append(f"{m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]" if m else "-")
            lines.append(f"| {method} | {set_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def record_metrics(models: Path, report: dict[str, Any]) -> None:
    """Put the headline numbers into the shipped models' manifest entries."""
    metrics = {
        "eval": "heymusic eval (held-out playlists + templates, bootstrap 95 % CI)",
        "queries": report["queries"],
        **{
            method: {k: v["mean"] for k, v in sets["all"].items()}
            for method, sets in report["methods"].items()
        },
        "beats_baselines_on_subgenre_p5": report["two_tower_beats_on_subgenre_p5"],
    }
    with edited_manifest(models) as manifest:
        for name in ("query_encoder", "song_encoder"):
            if name in manifest:
                manifest[name]["metrics"] = metrics
