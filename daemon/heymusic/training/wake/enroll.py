"""Enrollment: record the household saying the wake phrase, and fit its personal verifier.

Runs from `heymusic enroll`, never in the daemon; the daemon loads the result with
heymusic.wake.personal (numpy only). Fitting needs scikit-learn and the wake data's
synthetic near-misses (espeak-ng): the `[enroll]` extra, which `make run` installs.
"""

from __future__ import annotations

import itertools
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.atomic import atomic_path
from heymusic.audio.format import CHUNK_SAMPLES, SAMPLE_RATE
from heymusic.audio.sources import FileSource, MicSource, open_input
from heymusic.config import Settings, VadSettings
from heymusic.errors import UserError
from heymusic.events import SpeechEnd, Wake
from heymusic.speech.asr import Transcriber
from heymusic.speech.vad import CommandRecorder
from heymusic.text import wake_phrases_from_models
from heymusic.training.wake import data as wake_data
from heymusic.wake.detector import WakeDetector
from heymusic.wake.models import load_wake_model, resolve_wake_model
from heymusic.wake.personal import FRAMES, enroll_dir, people_path, personal_path

_LOGGER = logging.getLogger(__name__)

WAKE_TAKES = 6
OTHER_PROMPTS = (
    "Hey mister, what time is it?",
    "Play some music.",
    "Hey Mike, are you there?",
    "The museum opens at nine.",
    "That was amusing, wasn't it?",
    "Music is on the radio all day.",
)
"""What a person reads as negatives: near-misses of the phrase, in their own voice."""
MIN_WAKE_CLIPS = 3
TRIES = 3
"""Times a prompt is repeated when nothing (or not the phrase) was heard."""
C = 0.01
"""Inverse regularisation of the logistic regression: strong, for a few hundred windows of
1,536 values (openWakeWord's custom verifiers use 0.001). Not tuned."""
PEOPLE_C = 0.1
"""The people identifier's inverse regularisation; any of 0.01-1 named all 60 held-out
takes of three synthetic people right (docs/profiles.md)."""
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
"""A person's name: a folder under the recordings and the profile's name in the history."""
GENERIC_CLIPS = 120
"""Near-misses by other synthetic voices among the negatives (~10 s to make)."""


# ---- features ----------------------------------------------------------------------------------


def clip_windows(
    model: Any, audio: np.ndarray, threshold: float, floor: np.ndarray
) -> tuple[np.ndarray, float]:
    """(windows, best score): FRAMES-embedding windows of `audio` (int16) at every frame the
    wake model scores >= `threshold` (0 = every frame). `floor` (room noise) pads both ends,
    so the windows see what the microphone hears before and after someone speaks."""
    model.reset()
    pad = np.resize(floor, 2 * SAMPLE_RATE)  # flushes the previous clip from every buffer
    stream = np.concatenate([pad, audio, pad[: SAMPLE_RATE // 2]]).astype(np.int16)
    name = next(iter(model.models))
    out, best = [], 0.0
    for k in range(len(stream) // CHUNK_SAMPLES):
        score = float(model.predict(stream[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES])[name])
        if k * CHUNK_SAMPLES < len(pad):
            continue  # the pad: neither the phrase nor the person's speech
        best = max(best, score)
        if score >= threshold:
            out.append(np.asarray(model.preprocessor.get_features(FRAMES)).reshape(FRAMES, 96))
    return np.asarray(out, np.float32).reshape(-1, FRAMES, 96), best


def room_floor(clips: Sequence[np.ndarray]) -> np.ndarray:
    """The quietest 0.4 s of the recordings: the room as this microphone hears it."""
    chunks = [
        c[i : i + CHUNK_SAMPLES]
        for c in clips
        for i in range(0, len(c) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES)
    ]
    if not chunks:
        return np.zeros(CHUNK_SAMPLES, np.int16)
    energy = [float(np.mean(np.square(c.astype(np.float32)))) for c in chunks]
    quiet = [chunks[i] for i in np.argsort(energy)[:5]]
    return np.concatenate(quiet).astype(np.int16)


def _noisy(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    x = audio.astype(np.float32)
    level = float(np.sqrt(np.mean(np.square(x)))) / 10 ** (snr_db / 20)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    noise = np.cumsum(noise) if rng.random() < 0.5 else noise  # brown or white
    noise *= level / (float(np.std(noise)) + 1e-9)
    return np.clip(x + noise, -32768, 32767).astype(np.int16)


def positive_windows(
    model: Any,
    wake_clips: Sequence[np.ndarray],
    other_clips: Sequence[np.ndarray],
    threshold: float,
    floor: np.ndarray,
    seed: int = 0,
) -> tuple[np.ndarray, list[float]]:
    """(positives, best score per wake clip; a clip under `threshold` gives none).

    Each wake clip is heard after silence, after one of the person's other sentences and
    in noise (10-20 dB), each at two offsets within a chunk: in use the phrase follows all
    of those.
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    pos, best = [], []
    for clip in tqdm(wake_clips, desc="wake takes", unit="take"):
        windows, top = clip_windows(model, clip, threshold, floor)
        best.append(top)
        if not len(windows):
            continue
        pos.append(windows)
        for _ in range(2):
            shifted = clip[int(rng.integers(CHUNK_SAMPLES)) :]
            before = other_clips[int(rng.integers(len(other_clips)))] if other_clips else floor
            gap = np.resize(floor, int(rng.uniform(0.1, 0.5) * SAMPLE_RATE))
            pos.append(
                clip_windows(model, np.concatenate([before, gap, shifted]), threshold, floor)[0]
            )
            pos.append(
                clip_windows(model, _noisy(shifted, rng.uniform(10, 20), rng), threshold, floor)[0]
            )
    return np.concatenate([np.zeros((0, FRAMES, 96), np.float32), *pos]), best


def negative_windows(model: Any, clips: Sequence[np.ndarray], floor: np.ndarray) -> np.ndarray:
    """Every frame of `clips`: the person's other sentences and other voices' near-misses
    (what the verifier must turn down)."""
    neg = [clip_windows(model, clip, 0.0, floor)[0] for clip in clips]
    return np.concatenate([np.zeros((0, FRAMES, 96), np.float32), *neg])


def generic_negatives(count: int = GENERIC_CLIPS, seed: int = 0) -> list[np.ndarray]:
    """Synthetic voices (espeak-ng, training speakers only) saying near-misses of the
    phrase and other wake words (int16, -25..-15 dBFS)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        audio = wake_data.say(
            wake_data.confusable_text(rng), wake_data.speakers("train", rng, piper=0), rng
        )
        audio = wake_data.at_dbfs(audio, rng.uniform(-25, -15))
        out.append(wake_data.to_int16(audio))
    return out


def fit(pos: np.ndarray, neg: np.ndarray, c: float = C) -> dict[str, np.ndarray]:
    """Standardised logistic regression, classes weighted equally (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([pos, neg]).reshape(len(pos) + len(neg), -1).astype(np.float64)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit((x - mean) / scale, y)
    return {
        "mean": mean.astype(np.float32),
        "scale": scale.astype(np.float32),
        "coef": clf.coef_.reshape(-1).astype(np.float32),
        "intercept": np.float32(clf.intercept_[0]),
    }


def save(weights: dict[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **weights)  # type: ignore[arg-type]


# ---- recording ---------------------------------------------------------------------------------


def record_takes(
    chunks: Iterator[np.ndarray],
    prompts: Sequence[str],
    check: Callable[[int, np.ndarray], str | None] | None = None,
) -> Iterator[np.ndarray]:
    """One utterance per prompt, cut by the same VAD the daemon uses (8 s to start).

    `check(i, take)` says what is wrong with take i (None: fine); such a take is asked
    for again, up to `TRIES` times, then kept (training leaves out what it cannot use).
    """
    vad = VadSettings(silence_seconds=0.6, max_seconds=6.0, no_speech_timeout_seconds=8.0)
    for i, prompt in enumerate(prompts):
        for attempt in range(1, TRIES + 1):
            print(f"  say: {prompt}", flush=True)
            recorder = CommandRecorder(vad)
            recorder.start(0.0)
            audio_s = 0.0
            result = None
            for chunk in chunks:
                audio_s += len(chunk) / SAMPLE_RATE
                result = recorder.process(chunk, audio_s)
                if result is not None:
                    break
            if result is None:
                raise UserError("the audio ended before every prompt was answered")
            take = recorder.utterance()
            problem = "heard nothing" if not isinstance(result, SpeechEnd) else None
            problem = problem or (check(i, take) if check else None)
            if problem is None or (attempt == TRIES and isinstance(result, SpeechEnd)):
                yield take
                break
            print(f"  ({problem}; again)", flush=True)
        else:
            raise UserError(
                f"heard nothing for {TRIES} tries; check the microphone with `heymusic doctor`"
            )


class _TakeCheck:
    """Would the daemon wake on a take (all stages but a personal verifier)? A take it would
    not wake on is not the phrase, or not one the personal verifier will ever be asked about."""

    def __init__(self, settings: Settings, phrase: str, takes: int) -> None:
        whisper = None
        if settings.wake.asr_check:
            whisper = Transcriber(settings).model
        wake = settings.wake.model_copy(update={"personal": False})
        self._detector = WakeDetector(settings.model_copy(update={"wake": wake}), whisper)
        self._phrase = phrase
        self._takes = takes
        self._audio_s = 0.0

    def __call__(self, index: int, take: np.ndarray) -> str | None:
        if index >= self._takes:
            return None
        pad = np.resize(room_floor([take]), 2 * SAMPLE_RATE)
        audio = np.concatenate([pad, take, pad[: SAMPLE_RATE // 2]])
        self._detector.reset()
        woke = False
        for k in range(len(audio) // CHUNK_SAMPLES):
            self._audio_s += CHUNK_SAMPLES / SAMPLE_RATE
            chunk = audio[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES]
            woke |= isinstance(self._detector.process(chunk, self._audio_s), Wake)
        self._audio_s += 30.0  # past any refractory period
        return None if woke else f'the wake word detector did not hear "{self._phrase}"'


def _wav(path: Path) -> np.ndarray:
    source = FileSource(path)
    try:
        return np.concatenate(list(source.chunks()))
    finally:
        source.close()


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.astype(np.int16), SAMPLE_RATE, subtype="PCM_16")


def _next_index(folder: Path) -> int:
    taken = [
        int(p.stem.split("_")[-1])
        for p in folder.glob("*_[0-9]*.wav")
        if p.stem.split("_")[-1].isdigit()
    ]
    return max(taken, default=0) + 1


def train_from_folder(settings: Settings, model: Any, name: str, folder: Path) -> dict[str, Any]:
    """Fit and save the personal verifier of wake model `name` on every take in `folder`
    (its subfolders are people enrolled by name), and, once two people or more did, the
    identifier that tells them apart."""
    groups = sorted({p.parent for p in folder.rglob("wake_*.wav")})
    wake = [p for g in groups for p in sorted(g.glob("wake_*.wav"))]
    other = sorted(folder.rglob("other_*.wav"))
    clips = {p: _wav(p) for p in [*wake, *other]}
    threshold = settings.wake.threshold
    floor = room_floor(list(clips.values()))
    pos, best, people = [], [], {}
    for group in groups:  # each person's takes follow their own other sentences
        mine = [clips[p] for p in other if p.parent == group] or [clips[p] for p in other]
        windows, top = positive_windows(
            model, [clips[p] for p in sorted(group.glob("wake_*.wav"))], mine, threshold, floor
        )
        pos.append(windows)
        best += top
        if group != folder and len(windows):
            people[group.name] = windows
    unheard = [p.name for p, b in zip(wake, best, strict=True) if b < threshold]
    if unheard:
        print(f"  the wake model did not fire on {', '.join(unheard)}: left out", flush=True)
    heard = len(wake) - len(unheard)
    if heard < MIN_WAKE_CLIPS or not other:
        raise UserError(
            f"{heard} of {len(wake)} wake takes in {folder} were heard by the wake model and "
            f"{len(other)} other takes were given; need {MIN_WAKE_CLIPS} heard takes and one "
            "other: run `heymusic enroll` again, closer to the microphone"
        )
    neg = negative_windows(model, [*(clips[p] for p in other), *generic_negatives()], floor)
    path = personal_path(name)
    save(fit(np.concatenate(pos), neg), path)
    if len(people) >= 2:
        save(fit_people(people), people_path(name))
    else:
        people_path(name).unlink(missing_ok=True)
    return {
        "model": name,
        "path": str(path),
        "wake_takes": heard,
        "other_takes": len(other),
        "positive_windows": sum(len(p) for p in pos),
        "negative_windows": len(neg),
        "people": sorted(people) if len(people) >= 2 else [],
    }


def fit_people(people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Who is who: a standardised multinomial logistic regression over the mean of each
    positive window's embeddings (the voice more than the words; the words are the same)."""
    from sklearn.linear_model import LogisticRegression

    names = sorted(people)
    x = np.concatenate([people[n].mean(axis=1) for n in names]).astype(np.float64)
    y = np.concatenate([np.full(len(people[n]), i) for i, n in enumerate(names)])
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3
    clf = LogisticRegression(C=PEOPLE_C, class_weight="balanced", max_iter=2000)
    clf.fit((x - mean) / scale, y)
    return {
        "names": np.array(names),
        "mean": mean.astype(np.float32),
        "scale": scale.astype(np.float32),
        "coef": clf.coef_.astype(np.float32),
        "intercept": clf.intercept_.astype(np.float32),
    }


def enrolled_model(settings: Settings) -> tuple[Path, str]:
    """(file, name openWakeWord loads it under) of the wake model enrollment is for: the
    first `[wake] models` entry."""
    if not settings.wake.models:
        raise UserError("[wake] models is empty; name the wake model to enroll for")
    path = resolve_wake_model(settings, settings.wake.models[0])
    return path, path.stem  # load_wake_model checks the name is the stem


def forget(settings: Settings) -> str:
    """Remove the personal verifier and the recordings; the model's name."""
    _, name = enrolled_model(settings)
    for target in (personal_path(name), people_path(name), enroll_dir() / name):
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return name


def record(settings: Settings, takes: int, input_spec: str | None) -> list[tuple[str, np.ndarray]]:
    """Prompt for `takes` wake phrases and the other sentences, recorded from the mic (or a
    file / stdin): [("wake" | "other", audio), ...]."""
    _, name = enrolled_model(settings)
    phrase = wake_phrases_from_models([name])[0]
    source = open_input(input_spec) if input_spec else MicSource(settings.audio.input_device)
    prompts = [f'"{phrase}" ({i + 1}/{takes})' for i in range(takes)]
    check = _TakeCheck(settings, phrase, takes)
    print(f"Enrolling for {name}. Speak as you would to the speaker, at your usual distance.")
    try:
        # the end of a recording is silence, so its last take ends like the others
        tail = [np.zeros(CHUNK_SAMPLES, np.int16)] * round(SAMPLE_RATE / CHUNK_SAMPLES)
        chunks = itertools.chain(source.chunks(), tail)
        recorded = list(record_takes(chunks, [*prompts, *OTHER_PROMPTS], check))
    finally:
        source.close()
    return [("wake", a) for a in recorded[:takes]] + [("other", a) for a in recorded[takes:]]


def read_takes(wake_wavs: Sequence[str], other_wavs: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """Takes recorded elsewhere, as `record` gives them."""
    return [("wake", _wav(Path(p))) for p in wake_wavs] + [
        ("other", _wav(Path(p))) for p in other_wavs
    ]


def check_name(person: str) -> str:
    """`person` as a profile name (lowercase), or a UserError saying what a name may hold."""
    if not NAME.match(person.lower()):
        raise UserError(
            f"--name {person!r}: use a letter, then up to 31 letters, digits, '-' or '_'"
        )
    return person.lower()


def enroll(
    settings: Settings, takes: list[tuple[str, np.ndarray]], person: str | None = None
) -> dict[str, Any]:
    """Keep `takes` beside the earlier ones (under `person`'s name when given) and fit the
    personal verifier, and the people identifier, on all of them."""
    path, name = enrolled_model(settings)
    model = load_wake_model([path])
    root = enroll_dir() / name
    folder = root / check_name(person) if person else root
    start = _next_index(folder)
    for i, (kind, audio) in enumerate(takes):
        _write_wav(folder / f"{kind}_{start + i:03d}.wav", audio)
    return train_from_folder(settings, model, name, root)
