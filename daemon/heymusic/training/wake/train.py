"""`heymusic train-wake`: synthesize streams, cache features, train both wake stages.

Stage 1 (models/hey_music.onnx) is an openWakeWord-compatible classifier over the
last 16 speech embeddings. It is trained in hard-negative mining rounds: after each
round every negative frame of hours of synthetic speech, music and noise is scored
and the frames that fire are sampled far more often in the next round.

Stage 2 (models/hey_music_verifier.onnx) sees a longer context (32 embeddings,
~3.4 s of audio) and is trained only on what stage 1 lets through, so it spends its
capacity on exactly the near-misses that wake the first stage.

Each stage is the mean of MEMBERS nets trained the same way from different initial
weights and draws (each with its own mining rounds and its own verifier): one ONNX file
with openWakeWord's I/O, so nothing downstream knows. Averaging cuts the false wakes of
stages 1 + 2 by a third (docs/wake-word-log.md) for 0.05 ms more a chunk. CONV_MEMBERS
nets of another kind (`_conv`) join the mean: their errors differ from the MLPs', which
halves the false wakes again at the same misses (docs/wake-word.md's table of the shipped models).

Torch is used here only; the daemon runs both models with onnxruntime.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from tqdm import tqdm

from heymusic.atomic import atomic_path
from heymusic.audio.format import CHUNK_SECONDS
from heymusic.config import cache_dir
from heymusic.training.manifest import edited_manifest
from heymusic.training.wake import data as wake_data

_LOGGER = logging.getLogger(__name__)

STREAM_SECONDS = 60.0
TRAIN_PLAN = {
    "pos": 200,
    "speech": 240,
    "confusable": 90,
    "music": 16,
    "noise": 6,
    "music_speech": 40,
    "pos_music": 60,
    "near_miss": 60,
    "pos_after": 100,
    "pos_babble": 60,
}
"""Number of 60 s streams per kind: ~15 h of audio, ~5,400 wake phrases. The negative side
is what matters (FINDINGS: a small synthetic model wakes 100-250 times an hour on speech).
"pos_music" and "near_miss" came with the Kokoro voices: with 30 % of speakers Kokoro and
40 % of clips in rooms, the espeak phrases over music and the near misses had thinned out,
and the 2026-12-06 retrain missed more over music and woke on Kokoro near misses. "pos_after"
(data.AFTER_SPEECH_GAP_S) came when the verifier was found to turn down phrases said right
after someone else spoke. "pos_babble" (data.BABBLE_SNR_DB) came for the phrases said over
other people's talk: at as many false wakes, the retrain with it misses 55 % in babble
against 62 % (docs/wake-word.md)."""
EVAL_PLAN = {
    "pos": 10,
    "speech": 20,
    "confusable": 15,
    "music": 15,
    "music_speech": 15,
    "noise": 5,
    "recorded": 15,
    "pos_after": 10,
}
"""Held-out speakers, texts and tracks, and recorded human voices (never trained on): ~1.45 h
of negatives for false accepts per hour."""
KINDS = (
    "pos",
    "speech",
    "confusable",
    "music",
    "noise",
    "music_speech",
    "recorded",
    "pos_music",
    "near_miss",
    "pos_after",
    "pos_babble",
)
"""Appended to, never reordered: a stream's seed depends on its kind's place here."""
STAGE1_FRAMES = 16
VERIFIER_FRAMES = 32
"""The verifier's context (`--verifier-frames`): 32 embeddings read ~3.4 s ending at the
candidate. The daemon takes a verifier's size from its ONNX input."""
STAGE1_FILE = "hey_music.onnx"
VERIFIER_FILE = "hey_music_verifier.onnx"
MEMBERS = 2
"""Nets averaged per stage. Member m draws from seed + MEMBER_SEED_STEP * m."""
MEMBER_SEED_STEP = 1000
CONV_MEMBERS = 2
"""Temporal-conv nets averaged in beside the MEMBERS MLPs (conv member m: the same seeds)."""
HARD_SCORE = 0.05
"""Stage-1 score above which a negative frame counts as a near-miss (mined)."""


def default_work_dir() -> Path:
    return cache_dir() / "wake"


def stream_seed(split: str, kind: str, index: int, seed: int) -> int:
    """The generator seed of one stream: `wake-eval` rebuilds the same audio from it."""
    return (
        seed * 1_000_003 + (0 if split == "train" else 500_000) + 10_000 * KINDS.index(kind) + index
    )


# ---- features cache --------------------------------------------------------------------------


def build_features(
    work_dir: Path, split: str, plan: dict[str, int], seed: int, workers: int = 2
) -> Path:
    """Generate every stream of `plan` not yet cached; returns the split's folder (the
    training one named by the cached Kokoro speech it draws from, if any)."""
    speech = wake_data.speech_fingerprint() if split == "train" else ""
    name = f"{split}-{wake_data.RECIPE}" + (f"-kokoro-{speech}" if speech else "")
    out_dir = work_dir / "features" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for kind, count in sorted(plan.items()):
        for i in range(count):
            path = out_dir / f"{kind}_{i:04d}.npz"
            if not path.exists():
                jobs.append(
                    (path, (kind, split, STREAM_SECONDS, stream_seed(split, kind, i, seed)))
                )
    if not jobs:
        return out_dir
    # spawned, not forked: a forked worker inherits whatever the parent had initialized
    # (torch, onnxruntime sessions); the suspected cause of a rare feature difference (docs/wake-word.md)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        # one thread a worker; they spawn on submit. The parent's environment is put back
        # after (the stdlib's set-and-restore): its own torch or OpenBLAS start later must
        # not depend on whether this process built features first.
        with mock.patch.dict(os.environ, OMP_NUM_THREADS="1"):
            futures = {pool.submit(wake_data.stream_features, job): path for path, job in jobs}
        for fut in tqdm(futures, desc=f"{split} streams", unit="stream"):
            data = fut.result()
            path = futures[fut]
            with atomic_path(path) as tmp:
                np.savez(tmp, **data)
    return out_dir


@dataclass
class Corpus:
    """All streams of a split, concatenated: embeddings, labels and per-frame stream kind."""

    emb: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    pos_in_stream: np.ndarray
    seconds: dict[str, float]
    phrases: int

    def valid(self, frames: int) -> np.ndarray:
        """Frames whose window of `frames` embeddings lies inside one stream."""
        return self.pos_in_stream >= frames - 1

    def windows(self, idx: np.ndarray, frames: int) -> np.ndarray:
        offsets = np.arange(-frames + 1, 1)
        return self.emb[idx[:, None] + offsets[None, :]].astype(np.float32)


def load_corpus(folder: Path) -> Corpus:
    embs, labels, kinds, pos = [], [], [], []
    seconds: dict[str, float] = {}
    phrases = 0
    for path in sorted(folder.glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path) as data:
            kind = str(data["kind"])
            embs.append(data["emb"])
            labels.append(data["labels"])
            kinds.append(np.full(len(data["emb"]), KINDS.index(kind), np.int8))
            pos.append(np.arange(len(data["emb"])))
            seconds[kind] = seconds.get(kind, 0.0) + float(data["seconds"])
            phrases += len(data["phrases"])
    return Corpus(
        np.concatenate(embs),
        np.concatenate(labels),
        np.concatenate(kinds),
        np.concatenate(pos),
        seconds,
        phrases,
    )


# ---- models ----------------------------------------------------------------------------------


def _mlp(frames: int, hidden: int, seed: int) -> Any:
    """openWakeWord's own recipe: flatten, two LayerNorm'd hidden layers, sigmoid.

    Small and heavily regularized on purpose: with hours (not thousands of hours)
    of synthetic negatives, a wider net memorizes the training voices and texts.
    Its initial weights come from `seed`, not from whatever torch drew before.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Flatten(),
                nn.Linear(frames * 96, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(hidden, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net(x))

    return Mlp()


def _conv(frames: int, hidden: int, seed: int, channels: int = 32) -> Any:
    """A temporal-conv net: three 1-D convolutions along the frames (dilations 1, 2, 4,
    shared weights), then one hidden layer (the MLP has two) over what they keep of each
    frame.

    Alone it misses more held-out voices than `_mlp`; as extra members beside the MLPs
    (`--conv-members`) its errors differ from theirs, and the average wakes less often
    at the same misses (docs/wake-word-log.md: "Why four members").
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.Sequential(
                nn.Conv1d(96, channels, 3, padding=1),
                nn.GroupNorm(1, channels),
                nn.ReLU(),
                nn.Conv1d(channels, channels, 3, padding=2, dilation=2),
                nn.GroupNorm(1, channels),
                nn.ReLU(),
                nn.Conv1d(channels, channels // 2, 3, padding=4, dilation=4),
                nn.ReLU(),
            )
            self.head = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(0.5),
                nn.Linear(channels // 2 * frames, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.head(self.convs(x.transpose(1, 2))))

    return Conv()


def train_net(
    net: Any,
    corpus: Corpus,
    frames: int,
    pos_idx: np.ndarray,
    neg_idx: np.ndarray,
    neg_prob: np.ndarray,
    steps: int,
    seed: int,
    desc: str,
) -> Any:
    """Balanced batches: half positives, half negatives drawn with `neg_prob`."""
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=5e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    batch = 512
    net.train()
    cdf = np.cumsum(neg_prob)
    noise = 0.15 * float(corpus.emb[:: max(1, len(corpus.emb) // 10_000)].astype(np.float32).std())
    y = torch.cat([torch.ones(batch // 2), torch.zeros(batch // 2)])
    bar = tqdm(range(steps), desc=desc, unit="step", mininterval=2)
    for _step in bar:
        p = pos_idx[rng.integers(len(pos_idx), size=batch // 2)]
        draw = np.searchsorted(cdf, rng.random(batch // 2) * cdf[-1])
        n = neg_idx[np.minimum(draw, len(neg_idx) - 1)]
        x = torch.from_numpy(corpus.windows(np.concatenate([p, n]), frames))
        x += torch.randn_like(x) * noise  # embedding jitter: a cheap regularizer
        pred = net(x).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if _step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    net.eval()
    return net


def mean_of(nets: list[Any]) -> Any:
    """One net whose score is the mean of `nets`' scores (exported as one ONNX graph); a
    single net is returned as it is, so `--members 1` exports the plain net."""
    from torch import nn

    if len(nets) == 1:
        return nets[0]

    class Mean(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(nets)

        def forward(self, x: Any) -> Any:
            total = self.members[0](x)
            for member in self.members[1:]:
                total = total + member(x)
            return total * (1.0 / len(self.members))

    return Mean().eval()


def score(net: Any, corpus: Corpus, idx: np.ndarray, frames: int) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(idx), 8192):
            x = torch.from_numpy(corpus.windows(idx[i : i + 8192], frames))
            out.append(net(x).squeeze(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def export_onnx(net: Any, frames: int, path: Path) -> None:
    """The exact I/O of openWakeWord's stock models: float [1, frames, 96] -> [1, 1]."""
    import torch

    with atomic_path(path) as tmp:
        torch.onnx.export(
            net,
            (torch.zeros(1, frames, 96),),
            str(tmp),
            input_names=["x.1"],
            output_names=["score"],
            opset_version=13,
            dynamo=False,
        )


def update_manifest(
    out_dir: Path,
    frames: dict[str, int],
    seed: int,
    members: int,
    conv_members: int,
    hours: float,
    phrases: int,
) -> None:
    """Read-modify-write models/manifest.json: only this command's own entries (`frames`:
    file name -> the embeddings it reads) change."""
    import hashlib

    speech = wake_data.speech_fingerprint()
    kokoro = f"; Kokoro voices of the wake-speech cache {speech}" if speech else ""
    with edited_manifest(out_dir) as manifest:
        for name, n in frames.items():
            frames_flag = (
                "" if name == STAGE1_FILE or n == VERIFIER_FRAMES else f" --verifier-frames {n}"
            )
            manifest[name] = {
                "sha256": hashlib.sha256((out_dir / name).read_bytes()).hexdigest(),
                "data": (
                    f"synthetic only, made by heymusic.training.wake.data: {hours:.1f} h of 60 s streams "
                    f"({phrases} 'hey music' phrases; espeak-ng voices x variants, piper joe{kokoro}; Debian "
                    "fortunes and wamerican text; Debian game music and fluidsynth MIDI; noise)"
                ),
                "command": (
                    f"heymusic train-wake --seed {seed} --members {members} "
                    f"--conv-members {conv_members}{frames_flag}"
                ),
                "input": f"openWakeWord 0.4.0 speech embeddings [1, {n}, 96]",
            }


# ---- offline evaluation (same frames the streaming detector sees) -----------------------------


def fires(scores: np.ndarray, threshold: float, refractory_frames: int) -> np.ndarray:
    """Frame indices where the detector (threshold + refractory) fires."""
    out = []
    last = -(10**9)
    for i in np.nonzero(scores >= threshold)[0]:
        if i - last >= refractory_frames:
            out.append(i)
            last = int(i)
    return np.asarray(out, np.int64)


def stream_report(
    corpus: Corpus, s1: np.ndarray, s2: np.ndarray | None, threshold: float, v_threshold: float
) -> dict[str, Any]:
    """Recall on phrases and false accepts per hour by kind, from per-frame scores."""
    refractory = int(2.0 / CHUNK_SECONDS)
    # scores for frames without a full window are 0 (as openWakeWord's warm-up)
    fired = fires(s1, threshold, refractory)
    accepted = fired if s2 is None else fired[s2[fired] >= v_threshold]
    lab = corpus.labels
    positive_ids = [KINDS.index(k) for k in wake_data.POSITIVE_KINDS]
    neg_hours = (
        sum(v for k, v in corpus.seconds.items() if k not in wake_data.POSITIVE_KINDS) / 3600
    )
    report: dict[str, Any] = {}
    for name, sel in (("stage1", fired), ("both", accepted)):
        fa = {}
        positive = np.isin(corpus.kind[sel], positive_ids)
        for k, kind in enumerate(KINDS):
            if kind in wake_data.POSITIVE_KINDS:
                continue
            n = int(np.sum((corpus.kind[sel] == k) & (lab[sel] == 0)))
            fa[kind] = round(n / max(1e-9, corpus.seconds.get(kind, 0) / 3600), 2)
        n_fa = int(np.sum((lab[sel] == 0) & ~positive))
        # a fire from mid-phrase to 1 s after it answers the phrase (as in wake-eval)
        hits = int(np.sum((lab[sel] != 0) & positive))
        report[name] = {
            "fa_per_hour": round(n_fa / max(neg_hours, 1e-9), 2),
            "fa_by_kind": fa,
            "recall": round(hits / max(1, corpus.phrases), 3),
            "fa_in_pos_streams": int(np.sum((lab[sel] == 0) & positive)),
        }
    return report


# ---- command ---------------------------------------------------------------------------------


def train_member(
    tr: Corpus,
    ev: Corpus,
    seed: int,
    rounds: int,
    steps: int,
    hidden: int,
    name: str,
    make_net: Callable[[int, int, int], Any],
    verifier_frames: int,
) -> tuple[Any, Any]:
    """Stage 1 through its hard-negative mining rounds, then a verifier trained on what
    that stage 1 lets through, both nets made by `make_net(frames, hidden, seed)`.
    `seed` sets every initial weight and draw."""
    f1 = STAGE1_FRAMES
    valid = tr.valid(f1)
    pos_idx = np.nonzero(valid & (tr.labels == 1))[0]
    neg_idx = np.nonzero(valid & (tr.labels == 0))[0]
    neg_prob = np.full(len(neg_idx), 1.0 / len(neg_idx))
    net = None
    ev_idx = np.nonzero(ev.valid(f1))[0]
    for rnd in range(rounds):
        net = train_net(
            make_net(f1, hidden, seed + rnd),
            tr,
            f1,
            pos_idx,
            neg_idx,
            neg_prob,
            steps,
            seed + rnd,
            f"{name} stage 1 round {rnd + 1}/{rounds}",
        )
        neg_scores = score(net, tr, neg_idx, f1)
        hard = neg_scores >= HARD_SCORE
        _LOGGER.info(
            "%s round %d: %d of %d train negative frames score >= %.2f",
            name,
            rnd + 1,
            int(hard.sum()),
            len(neg_idx),
            HARD_SCORE,
        )
        # this round's mined frames get half of all negative draws (more the higher they
        # scored), the other half stay uniform over all negatives
        weight = np.full(len(neg_idx), 0.5 / len(neg_idx))
        if hard.any():
            weight[hard] += 0.5 / hard.sum() * (0.3 + neg_scores[hard])
        neg_prob = weight / weight.sum()
        s1 = np.zeros(len(ev.labels), np.float32)
        s1[ev_idx] = score(net, ev, ev_idx, f1)
        _LOGGER.info(
            "%s round %d eval: %s",
            name,
            rnd + 1,
            json.dumps(stream_report(ev, s1, None, 0.5, 0.5)["stage1"]),
        )
    assert net is not None

    # stage 2: longer context, trained on what stage 1 lets through
    f2 = verifier_frames
    valid2 = tr.valid(f2)
    idx2 = np.nonzero(valid2)[0]
    s1_tr = np.zeros(len(tr.labels), np.float32)
    s1_tr[idx2] = score(net, tr, idx2, f1)
    pos2 = np.nonzero(valid2 & (tr.labels == 1))[0]
    neg2 = np.nonzero(valid2 & (tr.labels == 0))[0]
    hard2 = s1_tr[neg2] >= HARD_SCORE
    prob2 = np.where(hard2, 0.7 / max(1, hard2.sum()), 0.3 / max(1, (~hard2).sum()))
    verifier = train_net(
        make_net(f2, hidden, seed + 100),
        tr,
        f2,
        pos2,
        neg2,
        prob2 / prob2.sum(),
        steps,
        seed + 100,
        f"{name} verifier",
    )
    return net, verifier


NET_KINDS: dict[str, Callable[[int, int, int], Any]] = {"mlp": _mlp, "conv": _conv}


@dataclass(frozen=True)
class MemberJob:
    """One member's training, as a worker process gets it (corpora by folder: a worker
    loads them itself rather than unpickle ~90 MB of them)."""

    train_dir: Path
    eval_dir: Path
    seed: int
    rounds: int
    steps: int
    hidden: int
    name: str
    kind: str
    log_level: int
    verifier_frames: int


def train_member_job(job: MemberJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """A member's stage-1 and verifier weights, trained on one torch thread: a member's
    weights then depend on its seed only, not on the thread count or on which members
    train beside it (two threads gave different models from the same features, docs/wake-word.md)."""
    import torch

    logging.basicConfig(
        level=job.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    torch.set_num_threads(1)
    tr, ev = load_corpus(job.train_dir), load_corpus(job.eval_dir)
    make_net = NET_KINDS[job.kind]
    net, verifier = train_member(
        tr, ev, job.seed, job.rounds, job.steps, job.hidden, job.name, make_net, job.verifier_frames
    )
    return net.state_dict(), verifier.state_dict()


def train_members(jobs: list[MemberJob], workers: int) -> list[tuple[Any, Any]]:
    """(stage 1, verifier) of every member, `workers` members at a time (one thread each;
    in this process when 1): the same nets either way."""
    if workers <= 1 or len(jobs) <= 1:
        weights = [train_member_job(job) for job in jobs]
    else:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            with mock.patch.dict(os.environ, OMP_NUM_THREADS="1"):
                futures = [pool.submit(train_member_job, job) for job in jobs]
            weights = [fut.result() for fut in futures]
    nets = []
    for job, (stage1, verifier) in zip(jobs, weights, strict=True):
        make_net = NET_KINDS[job.kind]
        net = make_net(STAGE1_FRAMES, job.hidden, 0)
        ver = make_net(job.verifier_frames, job.hidden, 0)
        net.load_state_dict(stage1)
        ver.load_state_dict(verifier)
        nets.append((net.eval(), ver.eval()))
    return nets


def train(
    work_dir: Path,
    out_dir: Path,
    seed: int = 0,
    workers: int = 2,
    rounds: int = 3,
    steps: int = 8000,
    hidden: int = 128,
    members: int = MEMBERS,
    conv_members: int = CONV_MEMBERS,
    train_plan: dict[str, int] = TRAIN_PLAN,
    eval_plan: dict[str, int] = EVAL_PLAN,
    verifier_frames: int = VERIFIER_FRAMES,
) -> dict[str, Any]:
    """The whole recipe; returns the offline report written beside the features.

    The same seed and plans give bit-identical models (each stream's audio depends on its
    own seed only), whatever the worker count and whatever was cached before (docs/wake-word.md: a rare
    difference before feature workers were spawned, none in 32 test runs since)."""
    import torch

    torch.set_num_threads(1)  # as the members train: the ensemble's scores below alike
    t0 = time.monotonic()
    train_dir = build_features(work_dir, "train", train_plan, seed, workers)
    eval_dir = build_features(work_dir, "eval", eval_plan, seed, workers)
    tr, ev = load_corpus(train_dir), load_corpus(eval_dir)
    _LOGGER.info(
        "train: %.1f h audio, %d phrases; eval: %.1f h, %d phrases",
        sum(tr.seconds.values()) / 3600,
        tr.phrases,
        sum(ev.seconds.values()) / 3600,
        ev.phrases,
    )

    # member m of each kind draws from seed + MEMBER_SEED_STEP * m
    plan = [(f"member {m + 1}/{members}", "mlp", m) for m in range(members)]
    plan += [(f"conv member {m + 1}/{conv_members}", "conv", m) for m in range(conv_members)]
    level = logging.getLogger().getEffectiveLevel()
    jobs = [
        MemberJob(
            train_dir,
            eval_dir,
            seed + MEMBER_SEED_STEP * m,
            rounds,
            steps,
            hidden,
            name,
            kind,
            level,
            verifier_frames,
        )
        for name, kind, m in plan
    ]
    trained = train_members(jobs, workers)
    net, verifier = mean_of([n for n, _ in trained]), mean_of([v for _, v in trained])
    f1, f2 = STAGE1_FRAMES, verifier_frames
    export_onnx(net, f1, out_dir / STAGE1_FILE)
    export_onnx(verifier, f2, out_dir / VERIFIER_FILE)

    ev_idx = np.nonzero(ev.valid(f1))[0]
    ev_idx2 = np.nonzero(ev.valid(f2))[0]
    s1 = np.zeros(len(ev.labels), np.float32)
    s1[ev_idx] = score(net, ev, ev_idx, f1)
    s2 = np.zeros(len(ev.labels), np.float32)
    s2[ev_idx2] = score(verifier, ev, ev_idx2, f2)
    report = {
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "train_hours": round(sum(tr.seconds.values()) / 3600, 2),
        "train_phrases": tr.phrases,
        "members": members,
        "conv_members": conv_members,
        "verifier_frames": verifier_frames,
        "eval_hours": round(sum(ev.seconds.values()) / 3600, 2),
        "eval_phrases": ev.phrases,
        "offline_eval": {
            f"{t}/{v}": stream_report(ev, s1, s2, t, v)
            for t in (0.3, 0.5, 0.7)
            for v in (0.3, 0.5, 0.7)
        },
    }
    (work_dir / "train_report.json").write_text(json.dumps(report, indent=1))
    hours = sum(tr.seconds.values()) / 3600
    update_manifest(
        out_dir,
        {STAGE1_FILE: f1, VERIFIER_FILE: f2},
        seed,
        members,
        conv_members,
        hours,
        tr.phrases,
    )
    return report
