"""`heymusic train-wake` is reproducible: the same seed gives the same models."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from heymusic import wake_train


def _train(work_dir: Path, seed: int, workers: int) -> dict[str, str]:
    wake_train.train(
        work_dir,
        work_dir / "models",
        seed=seed,
        workers=workers,
        rounds=2,
        steps=200,
        train_plan={"pos": 2, "speech": 2, "music_speech": 1},
        eval_plan={"pos": 1, "speech": 1},
    )
    files = sorted((work_dir / "models").glob("*.onnx")) + sorted(work_dir.rglob("*.npz"))
    return {str(f.relative_to(work_dir)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_the_same_seed_trains_the_same_models_with_any_number_of_workers(
    tmp_path: Path,
) -> None:
    """Two workers take streams in the order they finish; one worker takes them in turn.
    Before each stream seeded piper itself, the models came out different."""
    seed = int(np.random.default_rng().integers(1000))
    two = _train(tmp_path / "two", seed, workers=2)
    one = _train(tmp_path / "one", seed, workers=1)
    assert "models/hey_music.onnx" in two and "models/hey_music_verifier.onnx" in two
    assert two == one, seed
