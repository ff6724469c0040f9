"""The numpy index: argpartition top-k equals a brute-force sort; storage is checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heymusic.music.index import VectorIndex, load_index, save_index


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
def test_top_k_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, int(rng.integers(50, 3000)), 128)
    index = VectorIndex(vectors)
    for _ in range(20):
        query = _unit(rng, 1, 128)[0]
        k = int(rng.integers(1, 40))
        exclude = set(rng.choice(len(vectors), size=int(rng.integers(0, 30)), replace=False))
        rows, scores = index.search(query, k, exclude)
        brute = vectors @ query
        order = [int(i) for i in np.argsort(-brute, kind="stable") if int(i) not in exclude][:k]
        assert [int(r) for r in rows] == order
        np.testing.assert_allclose(scores, brute[order], rtol=1e-6)


def test_k_larger_than_index_and_everything_excluded() -> None:
    vectors = _unit(np.random.default_rng(0), 6, 8)
    index = VectorIndex(vectors)
    rows, _ = index.search(vectors[0], 50, exclude=[1])
    assert sorted(int(r) for r in rows) == [0, 2, 3, 4, 5]
    assert int(rows[0]) == 0
    rows, scores = index.search(vectors[0], 3, exclude=range(6))
    assert len(rows) == 0 and len(scores) == 0


def test_saved_index_is_memory_mapped_and_checked(tmp_path: Path) -> None:
    vectors = _unit(np.random.default_rng(1), 100, 16)
    save_index(tmp_path, vectors, {"catalog": "abc", "model": "m1"})
    loaded = load_index(tmp_path, {"catalog": "abc", "model": "m1"})
    assert loaded is not None
    assert isinstance(loaded.vectors, np.memmap)
    np.testing.assert_array_equal(np.asarray(loaded.vectors), vectors)
    # A different catalog or model makes the stored index stale.
    assert load_index(tmp_path, {"catalog": "abc", "model": "m2"}) is None
    assert load_index(tmp_path / "nothing", {"catalog": "abc"}) is None
    assert not list(tmp_path.glob(".index-*")), "temp files left behind"
