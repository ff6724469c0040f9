"""`heymusic train-wake` is reproducible: the same seed gives the same models."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from heymusic.training.wake import train as wake_train
from heymusic.wake.verifier import Verifier


def _train(work_dir: Path, seed: int, workers: int, verifier_frames: int) -> dict[str, str]:
    wake_train.train(
        work_dir,
        work_dir / "models",
        seed=seed,
        workers=workers,
        rounds=2,
        steps=200,
        conv_members=1,  # the shipped recipe averages both kinds of net
        train_plan={"pos": 2, "speech": 2, "music_speech": 1},
        eval_plan={"pos": 1, "speech": 1},
        verifier_frames=verifier_frames,
    )
    files = sorted((work_dir / "models").glob("*.onnx")) + sorted(work_dir.rglob("*.npz"))
    return {str(f.relative_to(work_dir)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_the_same_seed_trains_the_same_models_with_any_number_of_workers(tmp_path: Path) -> None:
    """Two workers take streams in the order they finish, and train two members at a time
    in their own processes; one worker takes streams in turn and trains the members one
    after another in this process. Before each stream seeded piper itself, the models came
    out different.

    It failed now and then (~4 of ~30 runs on 2026-11-26): three times the models
    differed from byte-identical features (torch on two threads), once a music-and-speech
    stream's features differed; both cases checked were the first (two-worker) training. Feature
    workers are now spawned, not forked, and it passed 32 runs in a row since; a failure this
    rare is not proven gone (README), so this stays strict. Torch trains every member on one
    thread, which rules that source out too."""
    rng = np.random.default_rng()
    seed, frames = int(rng.integers(1000)), int(rng.integers(16, 33))  # --verifier-frames
    two = _train(tmp_path / "two", seed, workers=2, verifier_frames=frames)
    one = _train(tmp_path / "one", seed, workers=1, verifier_frames=frames)
    assert "models/hey_music.onnx" in two and "models/hey_music_verifier.onnx" in two
    assert two == one, seed
    verifier = Verifier({"hey_music": tmp_path / "one" / "models" / wake_train.VERIFIER_FILE})
    assert verifier.frames == frames  # the daemon reads back as far as the verifier was trained


def test_an_averaged_model_scores_the_mean_of_its_members(tmp_path: Path) -> None:
    """Stage 1 and the verifier ship as one ONNX file each, whatever the member count and
    kind (`--conv-members`): the daemon and openWakeWord see one model with the stock I/O."""
    import onnxruntime as ort
    import torch

    frames = wake_train.STAGE1_FRAMES
    members = [wake_train._mlp(frames, 16, seed) for seed in (1, 2)]
    members.append(wake_train._conv(frames, 16, 3))
    for net in members:
        net.eval()
    path = tmp_path / "mean.onnx"
    wake_train.export_onnx(wake_train.mean_of(members), frames, path)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.shape == [1, frames, 96]
    rng = np.random.default_rng()
    for _ in range(5):
        x = rng.normal(size=(1, frames, 96)).astype(np.float32)
        (got,) = session.run(None, {inp.name: x})
        with torch.no_grad():
            each = [float(net(torch.from_numpy(x))) for net in members]
        assert got.shape == (1, 1)
        assert abs(float(got[0, 0]) - sum(each) / 3) < 1e-6, each
        assert max(each) - min(each) > 1e-4  # the members differ, so the mean is a mean
