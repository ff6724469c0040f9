"""`heymusic wake-speech`: Kokoro speech for the wake word, synthesized once into a cache.

At ~1-3 s of CPU a sentence, hours of Kokoro speech do not fit in `train-wake`'s hour, so
they are made here, in parallel, before it: one file per (voice group, voice, category,
text), written atomically (a kill -9 leaves whole files and stray dot-temps the readers
skip), and a second run with the same arguments synthesizes nothing. The plan depends on
the seed and the sentence count only, and a larger count keeps every voice of a smaller
one. `train-wake` then draws a share of its training speakers from the "train" group
(`wake_data.speakers`), and `wake-eval` reports the two eval groups as their own
conditions (`evaluate.kokoro_streams`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from tqdm import tqdm

from heymusic.atomic import atomic_path
from heymusic.training.wake import data as wake_data
from heymusic.training.wake.kokoro import VOICE_GROUPS, Kokoro, KokoroVoice, draw_voice

GROUP_SHARES = {"train": 0.8, "eval_voice": 0.1, "eval_mix": 0.1}
"""Of `--sentences`: the training voices' share and each eval group's."""


@dataclass(frozen=True)
class Job:
    """One clip to synthesize, and where it goes."""

    group: str
    voice: KokoroVoice
    category: str
    text: str

    def path(self, root: Path) -> Path:
        key = hashlib.sha1(self.text.encode()).hexdigest()[:16]
        return root / self.group / self.voice.name / f"{self.category}_{key}.npz"


@cache
def near_miss_phrases() -> tuple[str, ...]:
    """Phrases that are not "hey music" but start like it: "hey" and a word of the word list
    that begins like "music" (mus-, muz-, mew-) or holds "-muse-"/"-use-" (hey amusing, hey
    refuse), and those words alone."""
    words = sorted({w.lower() for w in wake_data.dictionary_words()} - {"music", "musics"})
    like = [w for w in words if w.startswith(("mus", "muz", "mew")) or "use" in w]
    return tuple(f"hey {w}" for w in like) + tuple(w for w in like if w.startswith("mu"))


def voice_texts(group: str, rng: np.random.Generator) -> dict[str, str]:
    """What one voice says, a text per `wake_data.SPEECH_CATEGORIES`."""
    split = "train" if group == "train" else "eval"
    near = near_miss_phrases()
    sentences = wake_data.fortune_sentences(split)
    return {
        "wake": wake_data.POSITIVE_TEXTS[rng.integers(len(wake_data.POSITIVE_TEXTS))],
        "command": wake_data.COMMANDS[rng.integers(len(wake_data.COMMANDS))],
        "near_miss": (
            near[rng.integers(len(near))] if rng.random() < 0.6 else wake_data.confusable_text(rng)
        ),
        "sentence": sentences[rng.integers(len(sentences))],
    }


def voices_in(group: str, sentences: int) -> int:
    per_voice = len(wake_data.SPEECH_CATEGORIES)
    share = round(sentences * GROUP_SHARES[group] / per_voice)
    return max(1, share) if group == "train" else share


def plan(sentences: int, seed: int = 0) -> list[Job]:
    """About `sentences` clips: voices of each group, each saying one text per category.
    Voice i of a group is drawn from (seed, group, i) alone."""
    jobs = []
    for g, group in enumerate(VOICE_GROUPS):
        for i in range(voices_in(group, sentences)):
            rng = np.random.default_rng([seed, g, i])
            voice = draw_voice(group, rng)
            for category, text in voice_texts(group, rng).items():
                jobs.append(Job(group, voice, category, text))
    return jobs


_kokoro: Kokoro | None = None


def synthesize_one(job: Job, root: Path) -> float:
    """Worker: say one clip and write it atomically; returns the CPU seconds it took."""
    global _kokoro
    t0 = time.process_time()
    if _kokoro is None:
        _kokoro = Kokoro()
    audio = _kokoro.say(job.text, job.voice)
    with atomic_path(job.path(root)) as tmp:
        np.savez(
            tmp,
            audio=wake_data.to_int16(audio),
            text=job.text,
            voice=json.dumps(job.voice.describe()),
        )
    return time.process_time() - t0


def _run(todo: list[Job], root: Path, workers: int) -> Iterator[float]:
    if workers <= 1:
        for job in todo:
            yield synthesize_one(job, root)
        return
    spawn = multiprocessing.get_context("spawn")  # as train-wake's feature workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        with mock.patch.dict(os.environ, OMP_NUM_THREADS="1"):
            futures = [pool.submit(synthesize_one, job, root) for job in todo]
        for fut in as_completed(futures):
            yield fut.result()


def synthesize(
    sentences: int, seed: int = 0, workers: int = 2, root: Path | None = None
) -> dict[str, Any]:
    """Synthesize every clip of `plan` not cached yet; returns counts and the speed."""
    from heymusic.training.wake.kokoro import model_path

    root = root or wake_data.speech_dir()
    jobs = plan(sentences, seed)
    todo = [job for job in jobs if not job.path(root).exists()]
    if todo:
        model_path()  # joined (and any missing part named) once, before the workers start
    t0 = time.monotonic()
    cpu = 0.0
    for seconds in tqdm(_run(todo, root, workers), total=len(todo), desc="Kokoro", unit="clip"):
        cpu += seconds
    wake_data.speech_index.cache_clear()
    return {
        "clips": len(jobs),
        "synthesized": len(todo),
        "cached_before": len(jobs) - len(todo),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "cpu_seconds": round(cpu, 1),
        "clips_per_cpu_second": round(len(todo) / cpu, 3) if cpu else None,
        "voices": {g: voices_in(g, sentences) for g in VOICE_GROUPS},
        "dir": str(root),
    }
