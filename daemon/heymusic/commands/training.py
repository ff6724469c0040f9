"""Training and measuring the models: `train` and `eval` (the two-tower recommender),
`train-wake`, `wake-blend`, `wake-speech` and `wake-eval` (the wake word). These need the
`[train]` extra."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from heymusic.config import Settings, cache_dir, models_dir
from heymusic.errors import UserError


def train_recommender(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic train`: train, then export to the models dir (run `heymusic eval` after)."""
    from heymusic.training.retrieval.train import TrainConfig, default_base_model
    from heymusic.training.retrieval.train import train as train_towers

    csv_path = Path(args.data or settings.catalog.source)
    if not csv_path.is_file():
        raise UserError(f"{csv_path}: training needs the Spotify songs CSV; pass --data PATH")
    out = args.out or cache_dir() / "train"
    cfg = TrainConfig(
        base_model=settings.recommender.base_model or default_base_model(),
        seed=args.seed,
        max_minutes=args.max_minutes,
        max_steps=args.max_steps,
    )
    info = train_towers(csv_path, out, cfg)
    print(json.dumps(info))
    print(f"checkpoint in {out}; export with: python export_onnx.py --checkpoint {out}")
    return 0


def eval_recommender(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic eval [--data CSV] [--json]`."""
    from heymusic.training.retrieval.evaluate import evaluate, markdown_table, record_metrics

    csv_path = Path(args.data or settings.catalog.source)
    if not csv_path.is_file():
        raise UserError(f"{csv_path}: evaluation needs the Spotify songs CSV; pass --data PATH")
    models = models_dir()
    if not (models / "song_encoder.onnx").exists():
        raise UserError(f"no trained song encoder in {models}; run `heymusic train` and export")
    from heymusic.training.retrieval.train import default_base_model

    report = evaluate(csv_path, models, settings.recommender.base_model or default_base_model())
    record_metrics(models, report)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(markdown_table(report))
        print(
            f"queries: {report['queries']}; two-tower beats on subgenre-P@5 "
            f"(intervals apart): {report['two_tower_beats_on_subgenre_p5']}"
        )
    return 0


def train_wake(args: argparse.Namespace, settings: Settings) -> int:
    """Train both stages into the shipped models dir (or --out)."""
    del settings
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise UserError("training needs torch: pip install -e '.[train]'") from err
    from heymusic.training.wake.train import (
        CONV_MEMBERS,
        MEMBERS,
        STAGE1_FRAMES,
        VERIFIER_FRAMES,
        default_work_dir,
        train,
    )

    members = MEMBERS if args.members is None else args.members
    if members < 1:
        raise UserError(f"--members {members}: train at least one net per stage")
    conv_members = CONV_MEMBERS if args.conv_members is None else args.conv_members
    if conv_members < 0:
        raise UserError(f"--conv-members {conv_members}: give 0 or more")
    verifier_frames = args.verifier_frames or VERIFIER_FRAMES
    if not STAGE1_FRAMES <= verifier_frames <= 48:
        raise UserError(
            f"--verifier-frames {verifier_frames}: give {STAGE1_FRAMES} to 48 embeddings "
            f"(80 ms each; the first stage reads {STAGE1_FRAMES})"
        )
    work_dir = args.work_dir or default_work_dir()
    out_dir = args.out or models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = train(
        work_dir,
        out_dir,
        seed=args.seed,
        members=members,
        conv_members=conv_members,
        verifier_frames=verifier_frames,
    )
    print(json.dumps(report["offline_eval"]["0.5/0.5"], indent=1))
    print(f"models written to {out_dir}; full report: {work_dir / 'train_report.json'}")
    return 0


def wake_blend(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic wake-blend DIR DIR... [--out DIR]`: both stages of several trained wake
    models averaged into one model per stage."""
    del settings
    from heymusic.training.wake.blend import blend_dirs

    out_dir = args.out or models_dir()
    written = blend_dirs(args.sources, out_dir)
    print(f"{', '.join(written)}: the mean of {len(args.sources)} models, written to {out_dir}")
    return 0


def wake_speech(args: argparse.Namespace, settings: Settings) -> int:
    """`heymusic wake-speech`: Kokoro speech for train-wake and wake-eval, cached."""
    del settings
    if args.sentences < 1 or args.workers < 1:
        raise UserError("--sentences and --workers take a whole number of 1 or more")
    from heymusic.training.wake.speech_cache import synthesize

    report = synthesize(args.sentences, seed=args.seed, workers=args.workers)
    print(json.dumps(report, indent=1))
    return 0


def eval_wake(args: argparse.Namespace, settings: Settings) -> int:
    from heymusic.training.wake.evaluate import evaluate
    from heymusic.training.wake.train import default_work_dir

    work_dir = args.work_dir or default_work_dir()
    if not settings.wake.models:
        raise UserError("[wake] models is empty; name the wake model to evaluate")
    if args.negative_hours is not None and not 0 < args.negative_hours <= 100:
        raise UserError(
            f"--negative-hours {args.negative_hours:g} is out of range; give hours of negative "
            "audio between 0 and 100 (1.45 when left out)"
        )
    if args.enroll:
        from heymusic.training.wake.enroll_eval import evaluate_enrollment

        whisper = None
        if settings.wake.asr_check:
            from heymusic.speech.asr import Transcriber

            whisper = Transcriber(settings).model
        report = evaluate_enrollment(
            settings, work_dir, whisper, negative_hours=args.negative_hours
        )
        print(json.dumps(report if args.json else report["mean"], indent=None if args.json else 1))
        return 0
    report = evaluate(
        settings,
        work_dir,
        negative_hours=args.negative_hours,
        room=args.room,
        stream=not args.offline,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    short = {k: v for k, v in report.items() if k != "det_points"}
    print(json.dumps(short, indent=1))
    print(f"DET points: {work_dir / 'wake_eval.json'}")
    return 0
