"""`heymusic wake-blend`: the blend scores the mean of its sources, loads as a wake model,
and says what it was made of."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from heymusic.errors import UserError
from heymusic.training.wake.blend import blend_dirs
from heymusic.training.wake.train import (
    NET_KINDS,
    STAGE1_FILE,
    STAGE1_FRAMES,
    VERIFIER_FILE,
    VERIFIER_FRAMES,
    export_onnx,
)
from heymusic.wake.models import load_wake_model
from heymusic.wake.verifier import Verifier
from tests.conftest import PROJECT_DIR, TEST_SEED


def _untrained(out: Path, seed: int, verifier_frames: int = VERIFIER_FRAMES) -> Path:
    """Both stages of a net of random kind and weights: a model unlike the shipped one."""
    kind = random.Random(seed).choice(sorted(NET_KINDS))
    out.mkdir()
    export_onnx(NET_KINDS[kind](STAGE1_FRAMES, 32, seed).eval(), STAGE1_FRAMES, out / STAGE1_FILE)
    export_onnx(
        NET_KINDS[kind](verifier_frames, 32, seed).eval(), verifier_frames, out / VERIFIER_FILE
    )
    return out


def _score(path: Path, x: np.ndarray) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)[0])


def test_a_blend_scores_the_mean_of_its_sources(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in (STAGE1_FILE, VERIFIER_FILE, "manifest.json"):
        shutil.copy(PROJECT_DIR / "models" / name, shipped / name)
    other = _untrained(tmp_path / "other", TEST_SEED)
    out = tmp_path / "blend"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "heymusic",
            "wake-blend",
            str(shipped),
            str(other),
            "--out",
            str(out),
        ],
        check=True,
    )
    rng = np.random.default_rng(TEST_SEED)
    for name, frames in ((STAGE1_FILE, STAGE1_FRAMES), (VERIFIER_FILE, VERIFIER_FRAMES)):
        for _ in range(5):
            x = rng.normal(0, 1, (1, frames, 96)).astype(np.float32)
            want = (_score(shipped / name, x) + _score(other / name, x)) / 2
            assert _score(out / name, x) == pytest.approx(want, abs=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    shipped_manifest = json.loads((shipped / "manifest.json").read_text())
    parts = manifest[STAGE1_FILE]["blend_of"]
    assert parts[0]["sha256"] == shipped_manifest[STAGE1_FILE]["sha256"]
    assert parts[0]["command"] == shipped_manifest[STAGE1_FILE]["command"]
    assert "wake-blend" in manifest[STAGE1_FILE]["command"]
    model = load_wake_model([out / STAGE1_FILE])  # openWakeWord takes it as its own
    assert list(model.models) == ["hey_music"]


def test_a_broken_source_is_named(tmp_path: Path) -> None:
    good = _untrained(tmp_path / "good", TEST_SEED)
    bad = _untrained(tmp_path / "bad", TEST_SEED + 1)
    (bad / VERIFIER_FILE).write_bytes((bad / VERIFIER_FILE).read_bytes()[:100])
    with pytest.raises(UserError, match=str(bad / VERIFIER_FILE)):
        blend_dirs([good, bad], tmp_path / "out")
    (bad / VERIFIER_FILE).unlink()
    with pytest.raises(UserError, match="each dir needs both stages"):
        blend_dirs([good, bad], tmp_path / "out")
    assert not (tmp_path / "out" / STAGE1_FILE).exists()  # nothing half written


def test_verifiers_reading_back_different_lengths_blend(tmp_path: Path) -> None:
    """A verifier trained with `--verifier-frames` fewer than another's: the blend reads the
    longer context, and the shorter one scores its own last frames of it."""
    short_frames = int(np.random.default_rng(TEST_SEED).integers(STAGE1_FRAMES, VERIFIER_FRAMES))
    long = _untrained(tmp_path / "long", TEST_SEED)
    short = _untrained(tmp_path / "short", TEST_SEED + 1, verifier_frames=short_frames)
    out = tmp_path / "blend"
    blend_dirs([short, long], out)
    rng = np.random.default_rng(TEST_SEED)
    for _ in range(5):
        x = rng.normal(0, 1, (1, VERIFIER_FRAMES, 96)).astype(np.float32)
        want = (
            _score(long / VERIFIER_FILE, x) + _score(short / VERIFIER_FILE, x[:, -short_frames:])
        ) / 2
        assert _score(out / VERIFIER_FILE, x) == pytest.approx(want, abs=1e-5)
    verifier = Verifier({"hey_music": out / VERIFIER_FILE})
    assert verifier.frames == VERIFIER_FRAMES
