"""Two-tower training smoke test (a few steps on a subset), export + parity, and the split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from heymusic.music.catalog import STOPWORDS, tag_words, words  # noqa: E402
from heymusic.music.encoders import QueryEncoder, SongEncoder  # noqa: E402
from heymusic.music.song_features import SongFeaturizer  # noqa: E402
from heymusic.training.retrieval.train import (  # noqa: E402
    TrainConfig,
    default_base_model,
    is_held_out,
    load_data,
    train,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _export_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_onnx", PROJECT_DIR / "export_onnx.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_keeps_held_out_playlist_names_out_of_tags(shared_csv: Path) -> None:
    data = load_data(shared_csv, seed=0)
    train_keys = {p.key for p in data.train_playlists}
    eval_keys = {p.key for p in data.eval_playlists}
    assert train_keys and eval_keys and not train_keys & eval_keys
    assert 0.05 < len(eval_keys) / (len(train_keys) + len(eval_keys)) < 0.3
    # Same seed, same split; another seed, another split.
    assert all(is_held_out(key, 0) for key in eval_keys)
    assert not any(is_held_out(key, 0) for key in train_keys)
    assert {key for key in train_keys | eval_keys if is_held_out(key, 1)} != eval_keys
    train_words = {w for p in data.train_playlists for w in tag_words(p.name)}
    labels = {w for t in data.tracks for g in (t.genre, t.subgenre) for w in [g, *words(g)]}
    all_tags = {tag for t in data.tracks for tag in t.tags}
    only_eval = {w for p in data.eval_playlists for w in tag_words(p.name)} - train_words - labels
    assert only_eval, "expected some words only held-out playlists use"
    assert not only_eval & all_tags
    assert not (STOPWORDS - labels) & all_tags  # filler words never become tags


def test_training_smoke_loss_export_parity(shared_csv: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        base_model=default_base_model(),
        seed=3,
        batch_size=32,
        max_steps=24,
        generated=200,
        limit_tracks=2000,
        max_minutes=5,
    )
    info = train(shared_csv, tmp_path / "ckpt", cfg)
    losses = json.loads((tmp_path / "ckpt" / "losses.json").read_text())
    assert info["steps"] == len(losses) == 24
    assert np.mean(losses[-6:]) < np.mean(losses[:6]) - 0.2, losses

    models = tmp_path / "models"
    entries = _export_module().export_checkpoint(tmp_path / "ckpt", models, "test")
    assert entries["query_encoder"]["parity_min_cosine"] >= 0.99
    assert entries["song_encoder"]["parity_min_cosine"] >= 0.99
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["query_encoder"]["training_data_sha256"] == info["data_sha256"]
    assert manifest["song_encoder"]["sha256"] == entries["song_encoder"]["sha256"]

    # The exported pair works without torch: same dimension, unit vectors.
    query = QueryEncoder(models / "query_encoder").encode(["sad songs from the nineties", "rock"])
    featurizer = SongFeaturizer.load(models / "song_features.json")
    data = load_data(shared_csv, seed=3)
    songs = SongEncoder(models / "song_encoder.onnx").encode(featurizer.transform(data.tracks[:50]))
    assert query.shape == (2, 128) and songs.shape == (50, 128)
    np.testing.assert_allclose(np.linalg.norm(songs, axis=1), 1.0, rtol=1e-5)
    assert (models / "query_encoder" / "model.onnx").stat().st_size < 40_000_000  # int8
