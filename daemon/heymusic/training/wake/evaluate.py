"""`heymusic wake-eval`: misses and false wakes of both wake stages on held-out audio.

Everything here is held out from training: speakers (whole espeak voices/variants,
the slowest piper settings), fortune files and music tracks. Misses are counted on
streams of "hey music" (often followed by a command) clean, over noise, over babble
and over music; false wakes on ~1.45 h (`--negative-hours`) of speech, confusables, music,
speech over music, noise and recorded human voices (real speech, never trained on). Each
rate comes with its 95 % interval: a few false wakes in an hour or two say little about a
0.5/h target.

The threshold sweep scores every 80 ms frame offline with the same feature code
the verifier uses (bit-identical to openWakeWord's streaming features); the chosen
operating point is then run end to end through the daemon's `WakeDetector`, which
also gives the CPU cost.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from heymusic.atomic import atomic_path, write_atomic
from heymusic.audio.format import CHUNK_SAMPLES, CHUNK_SECONDS, SAMPLE_RATE
from heymusic.audio.front_end import path_settings
from heymusic.config import FrontEndSettings, Settings
from heymusic.events import Wake, WakeCandidate
from heymusic.training.wake import data as wake_data
from heymusic.training.wake import rooms
from heymusic.training.wake import train as wake_train
from heymusic.wake.features import Features

_LOGGER = logging.getLogger(__name__)

CONDITIONS = ("clean", "noise_10db", "music_10db", "music_0db", "babble_10db")
"""noise_10db is stationary noise (a third each of white, pink and brown); babble, a room of
3-6 other synthetic talkers, is its own condition: earlier reports drew one of the two for the whole
"noise" stream and got babble, far harder for a wake word whose negatives are speech."""
FAR_FIELD = "room"
"""`--room`: the clean phrases said across held-out simulated rooms (heymusic.training.rooms),
the room's own noise 20-25 dB under them."""
AFTER_SPEECH = "after_speech"
"""Each phrase 0.2-1 s after another held-out speaker's sentence (at home the phrase often
follows talk), clean. Every report has it: the other conditions put 1.5-2.5 s of silence
before each phrase, and hid that the verifier had learned that silence."""
AFTER_SPEECH_PAUSE_S = (0.2, 1.0)
ALL_CONDITIONS = (*CONDITIONS, FAR_FIELD, AFTER_SPEECH)
"""Appended to, never reordered: a condition's stream seed is its place here."""
PHRASES_PER_CONDITION = 150
BACKGROUND_SEGMENT_S = 30.0
"""Each half-minute of a condition's stream draws its own background (a real track or
rendered MIDI, another room of talkers). One draw for a whole stream made a condition's
misses hang on a coin flip: two draws of "music 0 dB" missed 22 % and 47 %."""
POSITIVES_LAYOUT = "pos2"
"""Name prefix of the cached positive streams; a new one when their making changes, so
that no cached audio, features or Whisper scores of the old ones are reused."""
HIT_AFTER_S = 1.0
"""A wake this long after the phrase end still answers it."""
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
V_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ASR_GRID = ((0.5, 0.8), (0.5, 0.6, 0.7, 0.8, 0.9))
"""First-stage x verifier thresholds whose fires Whisper checks: 0.3-0.7 s each, so not all.
Scores are cached per stream and frame in the work dir (they do not depend on the model)."""
WITH_MUSIC = ("music_10db", "music_0db", "music", "music_speech")
"""Streams with music in them (positives by condition, negatives by kind): what the mic
hears while our player plays, where `verifier_threshold_playing` applies."""
KOKORO_GROUPS = {"eval_voice": "kokoro_voice", "eval_mix": "kokoro_mix"}
"""Held-out Kokoro voice groups of `heymusic wake-speech`'s cache and their conditions'
prefix: the base table no training voice holds, and new mixtures of the seen tables
(held out as speakers, blends of trained-on voices: reported apart)."""
KOKORO_PHRASES = 100
KOKORO_NEGATIVE_STREAMS = 10
"""Minutes of held-out Kokoro near misses and sentences ("kokoro_near_miss" false wakes)."""
ASR_THRESHOLDS = (0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.0007, 0.001, 0.002, 0.005, 0.01)


@dataclass
class EvalStream:
    name: str
    kind: str
    audio: np.ndarray
    phrases: np.ndarray

    @property
    def condition(self) -> str:
        """A positive stream's condition (pos_clean, pos2_music_0db,
        pos2_kokoro_mix_clean@<cache>, ...; a front end's tag is cut off too); else its kind."""
        return self.name.split("@")[0].split("_", 1)[1] if self.kind == "pos" else self.kind

    @property
    def with_music(self) -> bool:
        return self.condition.endswith(WITH_MUSIC)


def _say_as(spk: wake_data.Speaker, text: str, rng: np.random.Generator) -> np.ndarray:
    return wake_data.say(text, spk, rng)


def positive_stream(
    condition: str, n_phrases: int, seed: int, voice: Callable[[str, Any], np.ndarray] | None = None
) -> EvalStream:
    """Held-out speakers saying the wake phrase, 2-3 s apart, under `condition`.

    `voice(text, rng)`: one person saying everything (default: a random held-out speaker
    per phrase)."""
    rng = np.random.default_rng(seed)
    wake_data.seed_piper(seed)
    parts: list[np.ndarray] = []
    phrases = []
    pos = 0
    levels = []
    for _ in range(n_phrases):
        gap = np.zeros(int(rng.uniform(1.5, 2.5) * SAMPLE_RATE), np.float32)
        if condition == AFTER_SPEECH:
            gap = np.concatenate([gap, _sentence_before(rng)])
        spk = wake_data.speakers("eval", rng)
        say = voice or functools.partial(_say_as, spk)
        text = wake_data.POSITIVE_TEXTS[rng.integers(len(wake_data.POSITIVE_TEXTS))]
        dbfs = rng.uniform(-30, -18)
        clip = wake_data.at_dbfs(say(text, rng), dbfs)
        said = len(clip)  # a room's echo goes on after the phrase; the phrase ends here
        if rng.random() < 0.5:
            cmd = say(wake_data.COMMANDS[rng.integers(len(wake_data.COMMANDS))], rng)
            pause = np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE), np.float32)
            clip = np.concatenate([clip, pause, wake_data.at_dbfs(cmd, dbfs)])
        if condition == FAR_FIELD:
            clip = rooms.reverberate(clip, rooms.draw_room("eval", rng))
        levels.append(10 ** (dbfs / 20))
        parts += [gap, clip]
        pos += len(gap)
        phrases.append((pos / SAMPLE_RATE, (pos + said) / SAMPLE_RATE))
        pos += len(clip)
    parts.append(np.zeros(2 * SAMPLE_RATE, np.float32))
    audio = np.concatenate(parts)
    voice_rms = float(np.sqrt(np.mean(np.square(levels))))
    if condition == FAR_FIELD:
        audio = audio + rooms.room_tone(len(audio), voice_rms, rng)
    elif condition not in ("clean", AFTER_SPEECH):
        snr = float(condition.split("_")[1].removesuffix("db"))
        kind = condition.split("_")[0]
        if kind == "noise":
            cuts = np.linspace(0, len(audio), 4).astype(int)
            bg = np.concatenate(
                [
                    wake_data.colored_noise(colour, int(b - a), rng)
                    for colour, a, b in zip(
                        ("white", "pink", "brown"), cuts, cuts[1:], strict=False
                    )
                ]
            )
        else:
            step = round(BACKGROUND_SEGMENT_S * SAMPLE_RATE)
            bg = np.concatenate(
                [
                    wake_data.background(kind, "eval", min(step, len(audio) - a), rng)
                    for a in range(0, len(audio), step)
                ]
            )
        audio = audio + voice_rms / 10 ** (snr / 20) * bg
    return EvalStream(f"pos_{condition}", "pos", wake_data.to_int16(audio), np.asarray(phrases))


def _sentence_before(rng: np.random.Generator) -> np.ndarray:
    """Another held-out speaker's sentence at -30 to -18 dBFS, then a short pause."""
    sentences = wake_data.fortune_sentences("eval")
    said = wake_data.say(
        sentences[rng.integers(len(sentences))], wake_data.speakers("eval", rng), rng
    )
    said = wake_data.at_dbfs(said, rng.uniform(-30, -18))
    pause = np.zeros(int(rng.uniform(*AFTER_SPEECH_PAUSE_S) * SAMPLE_RATE), np.float32)
    return np.concatenate([said.astype(np.float32), pause])


class CachedVoices:
    """A held-out Kokoro group as `positive_stream`'s voice: each wake phrase by one of its
    cached voices drawn at random, a command after it by the same voice. The cache holds
    one text per voice and category, so the clip's own text is said, not the one asked."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.voice = ""

    def __call__(self, text: str, rng: np.random.Generator) -> np.ndarray:
        if text in wake_data.COMMANDS and self.voice:
            return wake_data.cached_clip(self.group, self.voice, "command", rng)
        voices = sorted(wake_data.cached_speech(self.group))
        self.voice = voices[rng.integers(len(voices))]
        return wake_data.cached_clip(self.group, self.voice, "wake", rng)


def near_miss_stream(seconds: float, seed: int) -> EvalStream:
    """Held-out Kokoro voices saying near misses (and, a third of the time, a sentence),
    half the streams over steady noise or music at 5-20 dB."""
    rng = np.random.default_rng(seed)
    groups = [g for g in KOKORO_GROUPS if wake_data.cached_speech(g)]
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        group = groups[rng.integers(len(groups))]
        voices = sorted(wake_data.cached_speech(group))
        category = "near_miss" if rng.random() < 2 / 3 else "sentence"
        clip = wake_data.cached_clip(group, voices[rng.integers(len(voices))], category, rng)
        clip = wake_data.at_dbfs(clip, rng.uniform(-30, -18))
        gap = np.zeros(int(rng.uniform(0.3, 1.5) * SAMPLE_RATE), np.float32)
        parts += [clip.astype(np.float32), gap]
        total += len(clip) + len(gap)
    audio = np.concatenate(parts)
    if rng.random() < 0.5:
        speaking = np.abs(audio) > 1e-4
        snr = rng.uniform(5, 20)
        bg = wake_data.background(str(rng.choice(["noise", "music"])), "eval", len(audio), rng)
        audio = audio + wake_data.rms(audio[speaking]) / 10 ** (snr / 20) * bg
    return EvalStream(
        "kokoro_near_miss", "kokoro_near_miss", wake_data.to_int16(audio), np.zeros((0, 2))
    )


def kokoro_streams(work_dir: Path, seed: int) -> list[EvalStream]:
    """Held-out Kokoro voices from `heymusic wake-speech`'s cache: "hey music" under every
    condition for each group (KOKORO_GROUPS), and near misses; none without the cache.
    Names carry the cache's fingerprint: a changed cache is not scored from old audio."""
    files = sorted(
        str(p)
        for group in KOKORO_GROUPS
        for clips in wake_data.cached_speech(group).values()
        for paths in clips.values()
        for p in paths
    )
    if not files:
        _LOGGER.info("no held-out Kokoro speech cached: run `heymusic wake-speech` to add it")
        return []
    cache = hashlib.sha1("\n".join(files).encode()).hexdigest()[:10]
    streams = [
        _cached(
            work_dir,
            f"{POSITIVES_LAYOUT}_{label}_{c}@{cache}",
            "pos",
            functools.partial(
                positive_stream,
                c,
                KOKORO_PHRASES,
                95_000 + seed * 7 + 10 * g + i,
                voice=CachedVoices(group),
            ),
        )
        for g, (group, label) in enumerate(KOKORO_GROUPS.items())
        if wake_data.cached_speech(group)
        for i, c in enumerate(CONDITIONS)
    ]
    return streams + [
        _cached(
            work_dir,
            f"kokoro_near_miss_{i:04d}@{cache}",
            "kokoro_near_miss",
            functools.partial(near_miss_stream, wake_train.STREAM_SECONDS, 97_000 + seed * 7 + i),
        )
        for i in tqdm(range(KOKORO_NEGATIVE_STREAMS), desc="Kokoro eval audio", unit="stream")
    ]


def negative_plan(hours: float | None) -> dict[str, int]:
    """Negative streams per kind for about `hours` of audio, in EVAL_PLAN's proportions.

    Streams are numbered and seeded by index, so a longer plan keeps every stream of a
    shorter one (cached audio and scores are reused) and adds new ones."""
    base = {k: n for k, n in wake_train.EVAL_PLAN.items() if k not in wake_data.POSITIVE_KINDS}
    if hours is None:
        return base
    scale = hours * 3600 / (sum(base.values()) * wake_train.STREAM_SECONDS)
    return {k: max(1, round(n * scale)) for k, n in base.items()}


def eval_streams(
    work_dir: Path, seed: int, negative_hours: float | None = None, room: bool = False
) -> list[EvalStream]:
    """The positive streams (`room`: with the far-field condition too), then the held-out
    negative ones (`negative_streams`), then the held-out Kokoro voices' (`kokoro_streams`,
    when cached)."""
    return (
        positive_streams(work_dir, seed, room)
        + negative_streams(work_dir, seed, negative_hours)
        + kokoro_streams(work_dir, seed)
    )


def positive_streams(work_dir: Path, seed: int, room: bool = False) -> list[EvalStream]:
    """ "hey music" under every condition, built once and cached as .npz. A condition's
    seed is its place in ALL_CONDITIONS, whichever are drawn."""
    conditions = [c for c in ALL_CONDITIONS if room or c != FAR_FIELD]
    return [
        _cached(
            work_dir,
            f"{POSITIVES_LAYOUT}_{c}",
            "pos",
            functools.partial(
                positive_stream,
                c,
                PHRASES_PER_CONDITION,
                90_000 + seed * 7 + ALL_CONDITIONS.index(c),
            ),
        )
        for c in tqdm(conditions, desc="eval phrases", unit="condition")
    ]


def through_front_end(streams: list[EvalStream], settings: FrontEndSettings) -> list[EvalStream]:
    """The streams as the daemon's wake detector hears them behind its front end (a fresh
    one per stream, as a stream is its own recording). They get names of their own, so
    features and Whisper's scores cached for the raw audio are not reused for them."""
    from heymusic.audio.front_end import FrontEnd

    wake = path_settings(settings, "wake")
    if not wake.processed:
        return streams
    tag = f"@ns{wake.noise_suppression}g{wake.auto_gain_dbfs}"
    return [
        EvalStream(s.name + tag, s.kind, FrontEnd(settings).process_all(s.audio, "wake"), s.phrases)
        for s in tqdm(streams, desc="front end", unit="stream")
    ]


def negative_streams(
    work_dir: Path, seed: int, negative_hours: float | None = None
) -> list[EvalStream]:
    """Held-out negative streams (EVAL_PLAN's ~1.45 h unless `negative_hours` says
    otherwise), built once and cached as .npz."""
    specs = [
        (kind, i, wake_train.stream_seed("eval", kind, i, seed))
        for kind, count in sorted(negative_plan(negative_hours).items())
        for i in range(count)
    ]
    return [
        _cached(
            work_dir,
            f"{kind}_{i:04d}",
            kind,
            functools.partial(
                wake_data.build_stream, kind, "eval", wake_train.STREAM_SECONDS, stream_seed
            ),
        )
        for kind, i, stream_seed in tqdm(specs, desc="eval audio", unit="stream")
    ]


def _cached(
    work_dir: Path, name: str, kind: str, make: Callable[[], EvalStream | wake_data.Stream]
) -> EvalStream:
    folder = work_dir / "eval_audio"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.npz"
    if not path.exists():
        made = make()
        phrases = np.asarray(made.phrases, float).reshape(-1, 2)
        with atomic_path(path) as tmp:
            np.savez(tmp, audio=made.audio, phrases=phrases)
    with np.load(path) as data:
        return EvalStream(name, kind, data["audio"], data["phrases"])


def frame_scores(session: Any, emb: np.ndarray, frames: int) -> np.ndarray:
    """Score of every frame with a full window (0 before: openWakeWord's warm-up)."""
    scores = np.zeros(len(emb), np.float32)
    if len(emb) < frames:
        return scores
    wins = np.lib.stride_tricks.sliding_window_view(emb, frames, axis=0).transpose(0, 2, 1)
    name = session.get_inputs()[0].name
    out = []
    for w in wins:  # the stock model's shape is fixed at batch 1
        out.append(session.run(None, {name: np.ascontiguousarray(w[None], np.float32)})[0])
    scores[frames - 1 :] = np.asarray(out).reshape(-1)
    return scores


def window_scores(
    emb: np.ndarray, score: Callable[[np.ndarray], float], frames: int, where: np.ndarray
) -> np.ndarray:
    """`score` of the `frames` embeddings ending at each frame in `where` (0 elsewhere):
    a later stage, asked only where stage 1 fired. Near a stream's start it gets the
    embeddings there are, as the detector's verifiers do (they pad them): scoring 0 there
    had made the eval miss each condition's first phrase, which the daemon hears."""
    out = np.zeros(len(emb), np.float32)
    for i in where:
        out[i] = score(emb[max(0, i - frames + 1) : i + 1])
    return out


class WhisperScores:
    """Whisper's check of the audio ending `AFTER_S` after a fire frame (or where the
    stream's last whole chunk ends, as the detector's input does), cached on disk by stream
    name and frame (the streams' audio is cached, or keyed by its hash)."""

    def __init__(self, whisper: Any, phrase: str, work_dir: Path) -> None:
        from heymusic.wake.asr_check import SCORING, AsrCheck

        self._check = AsrCheck(whisper, phrase)
        self._path = work_dir / f"whisper_scores_{phrase.replace(' ', '_')}_{SCORING}.json"
        self._cache: dict[str, float] = self._saved()

    def _saved(self) -> dict[str, float]:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def score(self, name: str, audio: np.ndarray, frame: int) -> float:
        from heymusic.wake.asr_check import AFTER_S

        end = round((wake_data.frame_end_s(frame + 1)[-1] + AFTER_S) * SAMPLE_RATE)
        heard = len(audio) - len(audio) % CHUNK_SAMPLES  # near the end: what the detector heard
        # a window cut at the end is keyed apart: caches before the cut scored partial chunks
        ref = f"{name}:{frame}" if end <= heard else f"{name}:{frame}:to_end"
        if ref not in self._cache:
            self._cache[ref] = self._check.score(audio[: min(end, heard)])
        return self._cache[ref]

    def save(self) -> None:
        """Merged with what another eval (of another model, on the same audio) saved
        meanwhile, and written atomically: two evals side by side keep both's scores."""
        self._cache = {**self._saved(), **self._cache}
        write_atomic(self._path, json.dumps(self._cache))


def cascade(
    s1: np.ndarray, s2: np.ndarray | None, t1: float, t2: float, refractory_frames: int
) -> np.ndarray:
    """Frames where the detector wakes: mirrors WakeDetector.process exactly."""
    out: list[int] = []
    last = -(10**9)
    for i in np.nonzero(s1 >= t1)[0]:
        if i - last < refractory_frames:
            continue
        if s2 is not None and s2[i] < t2:
            continue  # rejected: no refractory, the next frame is checked again
        out.append(int(i))
        last = int(i)
    return np.asarray(out, np.int64)


def answered(stream: EvalStream, t: float) -> int | None:
    """The phrase a wake at `t` seconds answers (None: a false wake)."""
    inside = (t >= stream.phrases[:, 0] + 0.2) & (t <= stream.phrases[:, 1] + HIT_AFTER_S)
    return int(np.argmax(inside)) if inside.any() else None


def count_hits(stream: EvalStream, wakes_s: np.ndarray) -> tuple[int, int]:
    """(phrases answered, false wakes) for wake times in seconds."""
    hit = np.zeros(len(stream.phrases), bool)
    false = 0
    for t in wakes_s:
        phrase = answered(stream, t)
        if phrase is None:
            false += 1
        else:
            hit[phrase] = True
    return int(hit.sum()), false


def poisson_ci(count: int, hours: float) -> list[float]:
    """Exact (Garwood) 95 % interval of a rate per hour from `count` events in `hours`."""
    from scipy.stats import chi2

    lo = chi2.ppf(0.025, 2 * count) / 2 if count else 0.0
    hi = chi2.ppf(0.975, 2 * count + 2) / 2
    return [round(float(lo) / hours, 2), round(float(hi) / hours, 2)]


def wilson_ci(misses: int, n: int) -> list[float]:
    """Wilson 95 % interval of a miss rate (`misses` of `n`)."""
    from scipy.stats import binomtest

    ci = binomtest(misses, n).proportion_ci(method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def summarize(streams: list[EvalStream], wakes: list[np.ndarray]) -> dict[str, Any]:
    """False-reject rate per condition and false accepts per hour per kind, with 95 %
    intervals (150 phrases and an hour or two of negatives leave them wide)."""
    frr: dict[str, float] = {}
    frr_ci: dict[str, list[float]] = {}
    fa: dict[str, int] = {}
    hours: dict[str, float] = {}
    for stream, w in zip(streams, wakes, strict=True):
        hits, false = count_hits(stream, w)
        if stream.kind == "pos":
            condition = stream.condition
            frr[condition] = round(1 - hits / len(stream.phrases), 4)
            frr_ci[condition] = wilson_ci(len(stream.phrases) - hits, len(stream.phrases))
        else:
            fa[stream.kind] = fa.get(stream.kind, 0) + false
            hours[stream.kind] = (
                hours.get(stream.kind, 0.0) + len(stream.audio) / SAMPLE_RATE / 3600
            )
    total_h = max(sum(hours.values()), 1e-9)
    false_total = sum(fa.values())
    return {
        "frr": frr,
        "frr_clean_noise_music10": round(  # the conditions a stream set has of the three
            float(np.mean([frr[c] for c in ("clean", "noise_10db", "music_10db") if c in frr])), 4
        ),
        "frr_clean_noise_music10_kokoro": {
            label: round(
                float(
                    np.mean([frr[f"{label}_{c}"] for c in ("clean", "noise_10db", "music_10db")])
                ),
                4,
            )
            for label in KOKORO_GROUPS.values()
            if f"{label}_clean" in frr
        },
        "frr_ci95": frr_ci,
        "fa_per_hour": round(false_total / total_h, 3),
        "fa_per_hour_ci95": poisson_ci(false_total, total_h),
        "false_accepts": false_total,
        "fa_per_hour_by_kind": {k: round(fa[k] / hours[k], 2) for k in sorted(fa)},
        "fa_per_hour_by_kind_ci95": {k: poisson_ci(fa[k], hours[k]) for k in sorted(fa)},
        "negative_hours": round(total_h, 2),
    }


def stream_embeddings(feats: Features, stream: EvalStream, work_dir: Path) -> np.ndarray:
    """Features of a stream, cached beside its audio (they do not depend on the model)."""
    path = work_dir / "eval_audio" / f"{stream.name}.emb.npy"
    if path.exists():
        return np.load(path)
    emb = feats.embed(stream.audio)
    np.save(path, emb)
    return emb


@dataclass
class Sweep:
    """What the threshold sweep found: its DET points, and what later choices are made from."""

    points: list[dict[str, Any]]
    wakes_at: dict[tuple[float, float, float], list[np.ndarray]]
    """Wake times per stream of each (first stage, verifier, Whisper) point."""
    scores: list[tuple[np.ndarray, np.ndarray | None]]
    """Per stream: every frame's first-stage score, the verifier's where stage 1 could fire."""
    fired: dict[tuple[float, float], list[np.ndarray]]
    """Frames where the first two stages pass, per (first stage, verifier) bars and stream."""
    heard: dict[tuple[int, int], float]
    """Whisper's score of each (stream, frame) of the fires it checked."""


def sweep(
    streams: list[EvalStream], settings: Settings, work_dir: Path, whisper: Any = None
) -> Sweep:
    """DET points for stage 1 alone and the cascade, from per-frame scores; and the wakes
    of each point with Whisper's check (`asr_points`)."""
    from heymusic.wake.features import cpu_session
    from heymusic.wake.models import resolve_wake_model
    from heymusic.wake.verifier import Verifier, verifier_path

    name = settings.wake.models[0]
    s1_path = resolve_wake_model(settings, name)
    v_path = verifier_path(s1_path)
    stage1 = cpu_session(s1_path)
    verifier = Verifier({name: v_path}) if v_path.exists() else None
    frames1 = int(stage1.get_inputs()[0].shape[1])
    feats = Features()
    scores = []
    for stream in tqdm(streams, desc="scoring frames", unit="stream"):
        emb = stream_embeddings(feats, stream, work_dir)
        s1 = frame_scores(stage1, emb, frames1)
        s2 = None
        if verifier is not None:
            cand = np.nonzero(s1 >= min(THRESHOLDS))[0]
            s2 = window_scores(emb, verifier.score, verifier.frames, cand)
        scores.append((s1, s2))
    refractory = round(settings.wake.refractory_seconds / CHUNK_SECONDS)
    fired = {}
    points = []
    for t1 in THRESHOLDS:
        for t2 in V_THRESHOLDS if verifier is not None else (0.0,):
            fired[t1, t2] = [
                cascade(s1, s2 if t2 > 0 else None, t1, t2, refractory) for s1, s2 in scores
            ]
            wakes = [
                wake_data.frame_end_s(len(s1))[f]
                for (s1, _), f in zip(scores, fired[t1, t2], strict=True)
            ]
            points.append({"threshold": t1, "verifier_threshold": t2, **summarize(streams, wakes)})
    found = Sweep(points, {}, scores, fired, {})
    if whisper is not None:
        asr, found.wakes_at, found.heard = asr_points(
            streams, scores, fired, settings, work_dir, whisper
        )
        points += asr
    return found


def asr_points(
    streams: list[EvalStream],
    scores: list[tuple[np.ndarray, np.ndarray | None]],
    fired: dict[tuple[float, float], list[np.ndarray]],
    settings: Settings,
    work_dir: Path,
    whisper: Any,
) -> tuple[
    list[dict[str, Any]],
    dict[tuple[float, float, float], list[np.ndarray]],
    dict[tuple[int, int], float],
]:
    """DET points with Whisper's check on the fires of the first two stages, the wake
    times (per stream) of each (first stage, verifier, Whisper) point, and Whisper's scores.

    A burst Whisper rejects still starts the refractory period (as in WakeDetector), so
    the fires are the same with or without it and Whisper only removes some of them.
    """
    from heymusic.text import wake_phrases_from_models

    phrase = wake_phrases_from_models([Path(settings.wake.models[0]).stem])[0]
    whisper_scores = WhisperScores(whisper, phrase, work_dir)
    heard: dict[tuple[int, int], float] = {}
    todo = {
        (k, int(i))
        for key in itertools.product(*ASR_GRID)
        if key in fired
        for k, f in enumerate(fired[key])
        for i in f
    }
    for n, (k, i) in enumerate(tqdm(sorted(todo), desc="Whisper check", unit="candidate")):
        heard[k, i] = whisper_scores.score(streams[k].name, streams[k].audio, i)
        if n % 100 == 99 or n == len(todo) - 1:
            whisper_scores.save()
    points = []
    wakes_at = {}
    for key in itertools.product(*ASR_GRID):
        if key not in fired:
            continue
        for t3 in ASR_THRESHOLDS:
            wakes_at[(*key, t3)] = wakes = [
                wake_data.frame_end_s(len(s1))[[i for i in f if heard[k, int(i)] >= t3]]
                for k, ((s1, _), f) in enumerate(zip(scores, fired[key], strict=True))
            ]
            points.append(
                {
                    "threshold": key[0],
                    "verifier_threshold": key[1],
                    "asr_threshold": t3,
                    **summarize(streams, wakes),
                }
            )
    return points, wakes_at, heard


def playing_point(
    streams: list[EvalStream],
    wakes_at: dict[tuple[float, float, float], list[np.ndarray]],
    chosen: dict[str, Any],
) -> dict[str, Any] | None:
    """The verifier's bar while our music plays: the lowest one that wakes no more often by
    mistake on the streams with music than the chosen point does (music masks the phrase,
    so a lower bar there buys back misses). Its point: that bar on the streams with music,
    the chosen one on the rest (None: the chosen point has no Whisper check)."""
    t1, t2, t3 = chosen["threshold"], chosen["verifier_threshold"], chosen.get("asr_threshold")
    if t3 is None or (t1, t2, t3) not in wakes_at:
        return None

    def false_with_music(wakes: list[np.ndarray]) -> int:
        """False wakes on the negative streams with music (as `summarize` counts them)."""
        pairs = zip(streams, wakes, strict=True)
        return sum(count_hits(s, w)[1] for s, w in pairs if s.with_music and s.kind != "pos")

    limit = false_with_music(wakes_at[t1, t2, t3])
    bars = sorted(v for (a, v, c) in wakes_at if (a, c) == (t1, t3) and v <= t2)
    bar = next(v for v in bars if false_with_music(wakes_at[t1, v, t3]) <= limit)
    mixed = [
        p if s.with_music else q
        for s, p, q in zip(streams, wakes_at[t1, bar, t3], wakes_at[t1, t2, t3], strict=True)
    ]
    return {**chosen, "verifier_threshold_playing": bar, **summarize(streams, mixed)}


SURE_BARS = (0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
"""Verifier scores a candidate may wake at without Whisper's check, tried lowest first."""


def sure_bars(
    streams: list[EvalStream], found: Sweep, chosen: dict[str, Any]
) -> list[dict[str, Any]]:
    """The faster yes at each of SURE_BARS: a candidate whose verifier score reaches the bar
    wakes at once, without waiting `AFTER_S` for Whisper's check and its decode. Each row is the
    chosen point with that bar: its misses and false wakes, and the share of answered
    phrases that took the fast path. Empty when the chosen point has no Whisper check."""
    t1, t2, t3 = chosen["threshold"], chosen["verifier_threshold"], chosen.get("asr_threshold")
    if t3 is None or (t1, t2) not in found.fired:
        return []
    rows = []
    for bar in SURE_BARS:
        wakes, answered_fast, answered_all = [], 0, 0
        for k, (stream, (s1, s2), frames) in enumerate(
            zip(streams, found.scores, found.fired[t1, t2], strict=True)
        ):
            times = wake_data.frame_end_s(len(s1))
            sure = {int(i) for i in frames if s2 is not None and s2[i] >= bar}
            kept = [int(i) for i in frames if int(i) in sure or found.heard[k, int(i)] >= t3]
            wakes.append(times[kept] if kept else np.zeros(0))
            if stream.kind == "pos":
                hits = [i for i in kept if answered(stream, float(times[i])) is not None]
                answered_all += len(hits)
                answered_fast += sum(i in sure for i in hits)
        skipped = round(answered_fast / max(answered_all, 1), 3)
        point = summarize(streams, wakes)
        rows.append({**chosen, "verifier_sure": bar, "answered_without_whisper": skipped, **point})
    return rows


def sure_point(rows: list[dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any] | None:
    """The lowest sure bar (`sure_bars`' rows) that wakes no more often by mistake than the
    chosen point; None when no bar does, or the point has no Whisper check."""
    return next((r for r in rows if r["false_accepts"] <= chosen["false_accepts"]), None)


def _sure_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`sure_bars`' rows as the report shows them: what each bar costs and buys."""
    keys = ("verifier_sure", "answered_without_whisper", "false_accepts", "fa_per_hour")
    return [
        {
            **{k: r[k] for k in keys},
            "frr": {c: r["frr"][c] for c in ("clean", "room") if c in r["frr"]},
        }
        for r in rows
    ]


def choose(points: list[dict[str, Any]], max_fa: float) -> dict[str, Any] | None:
    """Fewest misses (clean, noise, music 10 dB) among points with at most `max_fa` per hour."""
    ok = [p for p in points if p["fa_per_hour"] <= max_fa]
    return min(ok, key=lambda p: (p["frr_clean_noise_music10"], p["fa_per_hour"])) if ok else None


MAX_CLEAN_MISSES = 0.10
"""When the target is out of reach: a wake word that ignores one clean "hey music" in
ten is about as much as people put up with; fewer false wakes beyond that are bought
with misses of the person actually talking to it."""


TARGET_MISSES = 0.05
"""The issue's target: at most 5 % misses (clean, noise and music at 10 dB) ..."""
TARGET_FA_PER_HOUR = 0.5
"""... at no more than 0.5 false wakes an hour (openWakeWord's published target)."""


def operating_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The target (fewest misses among points meeting it) if reachable; else the fewest
    false accepts among points missing at most MAX_CLEAN_MISSES of clean phrases. A point
    under 0.5/h that misses a third of the phrases does not meet the target."""
    best = choose(points, TARGET_FA_PER_HOUR)
    if best is not None and best["frr_clean_noise_music10"] <= TARGET_MISSES:
        return best
    usable = [p for p in points if p["frr"]["clean"] <= MAX_CLEAN_MISSES] or points
    return min(usable, key=lambda p: (p["fa_per_hour"], p["frr_clean_noise_music10"]))


def run_detector(
    streams: list[EvalStream], settings: Settings, whisper: Any = None
) -> dict[str, Any]:
    """The daemon's own WakeDetector, chunk by chunk: wakes, candidates, CPU. On streams
    with music it is told music plays, as the daemon tells it while its player plays."""
    from heymusic.wake.detector import WakeDetector

    if not settings.wake.asr_check:
        whisper = None
    wakes = []
    waits_ms: list[float] = []
    candidates = 0
    busy = 0.0
    audio_s = 0.0
    for stream in tqdm(streams, desc="streaming detector", unit="stream"):
        det = WakeDetector(settings, whisper)
        det.music_playing = stream.with_music
        n = len(stream.audio) // CHUNK_SAMPLES
        t0 = time.process_time()
        events = det.events(stream.audio)
        busy += time.process_time() - t0
        candidates += sum(isinstance(e, WakeCandidate) for e in events)
        audio_s += n * CHUNK_SECONDS
        wakes.append(np.asarray([e.audio_s for e in events if isinstance(e, Wake)]))
        waits_ms += [w for e in events if (w := _wait_ms(stream, e)) is not None]
    out = summarize(streams, wakes)
    out["rejected_candidates"] = candidates
    if waits_ms:
        out["phrase_end_to_wake_ms_p50_p95"] = [
            round(float(np.percentile(waits_ms, q))) for q in (50, 95)
        ]
    out["cpu_percent_of_one_core"] = round(100 * busy / audio_s, 2)
    return out


def _wait_ms(stream: EvalStream, event: Wake | WakeCandidate) -> float | None:
    """How long after the end of the phrase it answers a wake came, as the person waits it:
    to where the phrase was found, then its `latency_ms` (audio waited for and checks)."""
    if not isinstance(event, Wake) or stream.kind != "pos":
        return None
    phrase = answered(stream, event.audio_s)
    if phrase is None:
        return None
    return 1000.0 * (event.audio_s - float(stream.phrases[phrase, 1])) + event.latency_ms


def _at(points: list[dict[str, Any]], t1: float, t2: float, t3: float | None) -> Any:
    """The sweep point with these thresholds (0 = that stage off; t3 None = no Whisper)."""
    return next(
        (
            p
            for p in points
            if p["threshold"] == t1
            and p["verifier_threshold"] == t2
            and p.get("asr_threshold") == t3
        ),
        None,
    )


def evaluate(
    settings: Settings,
    work_dir: Path,
    seed: int = 0,
    negative_hours: float | None = None,
    room: bool = False,
    stream: bool = True,
) -> dict[str, Any]:
    """The report of `heymusic wake-eval`, on the audio as the wake detector hears it behind
    the configured front end; `room` adds the far-field condition. `stream`: also run the
    daemon's detector over every stream at the chosen point (its latency and CPU; about a
    minute of CPU per stream here, hours with `--negative-hours 6`)."""
    streams = through_front_end(
        eval_streams(work_dir, seed, negative_hours, room), settings.front_end
    )
    whisper = None
    if settings.wake.asr_check:  # loaded once for the sweep and the streaming run
        from heymusic.speech.asr import Transcriber

        whisper = Transcriber(settings).model
    found = sweep(streams, settings, work_dir, whisper)
    points = found.points
    cfg = settings.wake
    stage1_only = [p for p in points if p["verifier_threshold"] == 0.0 and "asr_threshold" not in p]
    t2 = cfg.verifier_threshold if cfg.verifier else 0.0
    chosen = operating_point(points)
    playing = playing_point(streams, found.wakes_at, chosen)
    config_point = _at(
        points, cfg.threshold, t2, cfg.asr_check_threshold if cfg.asr_check else None
    )
    config_bars = sure_bars(streams, found, config_point) if config_point is not None else []
    chosen_bars = config_bars if config_point == chosen else sure_bars(streams, found, chosen)
    sure = sure_point(chosen_bars, chosen)
    at_chosen = settings.model_copy(
        update={
            "wake": cfg.model_copy(
                update={
                    "threshold": chosen["threshold"],
                    "verifier_threshold": chosen["verifier_threshold"],
                    "verifier_threshold_playing": playing["verifier_threshold_playing"]
                    if playing
                    else chosen["verifier_threshold"],
                    "verifier": chosen["verifier_threshold"] > 0,
                    "asr_check": "asr_threshold" in chosen,
                    "asr_check_threshold": chosen.get("asr_threshold", cfg.asr_check_threshold),
                    "verifier_sure": sure["verifier_sure"] if sure else 1.0,
                }
            )
        }
    )
    report = {
        "model": cfg.models,
        "front_end": path_settings(settings.front_end, "wake").__dict__,
        "refractory_seconds": cfg.refractory_seconds,
        "phrases_per_condition": PHRASES_PER_CONDITION,
        "best_at_0.5_fa_per_hour": choose(points, 0.5),
        "best_at_0.2_fa_per_hour": choose(points, 0.2),
        "best_stage1_only_at_0.5_fa_per_hour": choose(stage1_only, 0.5),
        "config_stage1_only": _at(points, cfg.threshold, 0.0, None),
        "config_stage1_verifier": _at(points, cfg.threshold, t2, None),
        "config_point_offline": config_point,
        "config_point_sure_skips_whisper": sure_point(config_bars, config_point)
        if config_point is not None
        else None,
        "config_point_each_sure_bar": _sure_table(config_bars),
        "operating_point": chosen,
        "operating_point_playing_aware": playing,
        "operating_point_sure_skips_whisper": sure,
        "det_points": points,
    }
    out = work_dir / "wake_eval.json"
    out.write_text(json.dumps(report, indent=1))  # the offline sweep, before the slow part
    if not stream:
        return report
    report["streaming_detector_at_operating_point"] = run_detector(streams, at_chosen, whisper)
    out.write_text(json.dumps(report, indent=1))
    return report
