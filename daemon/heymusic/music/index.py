"""Song vectors as one float32 matrix of unit rows, memory-mapped from the state dir.

Cosine top-k is a matrix-vector product and `argpartition`; row i is catalog track i.
The matrix is written atomically beside a small JSON saying which catalog and
which song encoder made it, so a stale index is noticed and rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.atomic import atomic_open

INDEX_FILE = "index.npy"
META_FILE = "index.json"


class VectorIndex:
    """Unit vectors (n, dim); `search` returns (rows, cosines) best first."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def scores(self, query: np.ndarray) -> np.ndarray:
        return np.asarray(self.vectors @ query.astype(np.float32), dtype=np.float32)

    def search(
        self, query: np.ndarray, k: int, exclude: Iterable[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k rows with the highest cosine to `query`, skipping `exclude` rows."""
        scores = self.scores(query)
        drop = np.fromiter(exclude, dtype=np.int64)
        if drop.size:
            scores[drop] = -np.inf
        k = min(k, len(scores) - int(drop.size))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top, scores[top]


def save_index(directory: Path, vectors: np.ndarray, meta: dict[str, Any]) -> None:
    """Write matrix then meta, each through a temp file and os.replace."""
    with atomic_open(directory / INDEX_FILE, binary=True) as f:
        np.save(f, np.ascontiguousarray(vectors, dtype=np.float32))
    with atomic_open(directory / META_FILE) as f:
        json.dump({**meta, "rows": int(vectors.shape[0])}, f)


def load_index(directory: Path, expect: dict[str, Any]) -> VectorIndex | None:
    """The stored index memory-mapped, or None when absent or made for another catalog/model."""
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        vectors = np.load(directory / INDEX_FILE, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if any(meta.get(key) != value for key, value in expect.items()):
        return None
    if meta.get("rows") != vectors.shape[0]:
        return None
    return VectorIndex(vectors)
