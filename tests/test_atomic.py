"""Atomic writes by file name (np.savez, exporters): the old file or the new one, never half."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heymusic.atomic import atomic_path


def test_a_writer_that_fails_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "scores.npz"
    np.savez(target, x=np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        np.savez(tmp, x=np.arange(5))
        raise RuntimeError("disk full halfway")
    with np.load(target) as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]


def test_a_writer_that_finishes_replaces_the_file_with_its_suffix_kept(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "weights.npz"
    with atomic_path(target, mode=0o600) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == target.parent
        np.savez(tmp, w=np.ones(2))  # np.savez adds ".npz" unless the name ends with it
    with np.load(target) as data:
        assert data["w"].tolist() == [1.0, 1.0]
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["weights.npz"]
