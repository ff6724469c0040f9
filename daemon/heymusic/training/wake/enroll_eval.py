"""What enrollment buys: held-out synthetic people enroll, then the cascade is measured
with and without their personal verifier.

Each person is one held-out voice at its own speed and pitch, behind their own microphone
(a fixed band-limit and room noise floor), as in one household. They enroll the way
`heymusic enroll` asks (six wake takes, six other sentences), then say the wake phrase
30 times per condition among their own commands. False wakes are counted on the same
held-out hour of other speakers, music and noise as `heymusic wake-eval`, so a person's
verifier is judged on voices it never heard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from heymusic.audio.format import CHUNK_SECONDS, SAMPLE_RATE
from heymusic.config import Settings, WakeSettings
from heymusic.training.wake import data as wake_data
from heymusic.training.wake.enroll import (
    OTHER_PROMPTS,
    WAKE_TAKES,
    fit,
    generic_negatives,
    negative_windows,
    positive_windows,
    room_floor,
)
from heymusic.training.wake.evaluate import (
    WhisperScores,
    cascade,
    count_hits,
    negative_streams,
    positive_stream,
    window_scores,
)
from heymusic.wake.features import Features
from heymusic.wake.personal import FRAMES, PersonalVerifier

PEOPLE = 8
PHRASES = 30
CONDITIONS = ("clean", "noise_10db", "music_10db")
PERSONAL_THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Person:
    """One held-out voice with its own habits and microphone."""

    speaker: wake_data.Speaker
    speed: int
    pitch: int
    band: tuple[float, float]
    floor_db: float

    @staticmethod
    def draw(rng: np.random.Generator) -> Person:
        return Person(
            wake_data.speakers("eval", rng),
            int(rng.integers(130, 210)),
            int(rng.integers(25, 75)),
            (float(rng.uniform(80, 300)), float(rng.uniform(3500, 7500))),
            float(rng.uniform(-65, -50)),
        )

    def say(self, text: str, rng: np.random.Generator) -> np.ndarray:
        """The person saying `text` (a little faster or slower each time), float32."""
        from scipy.signal import butter, sosfilt

        if self.speaker.engine == "piper":
            audio = wake_data.trim(wake_data._piper().say(text, self.speaker))
            audio = wake_data.pitch_shift(audio, (self.pitch - 50) / 10)
        else:
            speed = self.speed + int(rng.integers(-12, 13))
            pitch = self.pitch + int(rng.integers(-4, 5))
            audio = wake_data.trim(wake_data.espeak(text, self.speaker, speed, pitch))
        sos = butter(2, self.band, btype="bandpass", fs=SAMPLE_RATE, output="sos")
        return sosfilt(sos, audio).astype(np.float32)

    def room(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return 10 ** (self.floor_db / 20) * wake_data.colored_noise("pink", n, rng)

    def take(self, text: str, rng: np.random.Generator) -> np.ndarray:
        """One enrollment recording as the VAD cuts it: room, the words, room (int16)."""
        speech = self.say(text, rng)
        speech = wake_data.at_dbfs(speech, rng.uniform(-28, -18))
        audio = np.concatenate(
            [np.zeros(int(0.8 * SAMPLE_RATE)), speech, np.zeros(int(0.7 * SAMPLE_RATE))]
        )
        return wake_data.to_int16(audio + self.room(len(audio), rng))


def _wakes(
    s1: np.ndarray,
    s2: np.ndarray | None,
    sp: np.ndarray | None,
    cfg: WakeSettings,
    tp: float,
    refractory: int,
) -> np.ndarray:
    """Fire frames of stages 1+2 (+ the personal verifier)."""
    gate = np.ones_like(s1) if s2 is None else (s2 >= cfg.verifier_threshold).astype(np.float32)
    if sp is not None:  # as in WakeDetector.process: a sure personal score overrides stage 2
        gate = np.maximum(gate, sp >= cfg.personal_override) * (sp >= tp)
    return cascade(s1, gate, cfg.threshold, 0.5, refractory)


def _asr_kept(
    heard: WhisperScores | None, name: str, audio: np.ndarray, fired: np.ndarray, t: float
) -> np.ndarray:
    """The fire frames Whisper's check lets through (all of them without Whisper)."""
    if heard is None:
        return fired
    return np.asarray([i for i in fired if heard.score(name, audio, int(i)) >= t], np.int64)


def evaluate_enrollment(
    settings: Settings,
    work_dir: Path,
    whisper: Any = None,
    seed: int = 0,
    negative_hours: float | None = None,
) -> dict[str, Any]:
    """Per person: misses and false wakes/h of the cascade with and without their verifier
    (with Whisper's check last when `whisper` is given)."""
    from heymusic.text import wake_phrases_from_models
    from heymusic.training.wake.evaluate import frame_scores as stage_scores
    from heymusic.training.wake.evaluate import stream_embeddings
    from heymusic.wake.features import cpu_session
    from heymusic.wake.models import load_wake_model, resolve_wake_model
    from heymusic.wake.verifier import Verifier, verifier_path

    cfg = settings.wake
    s1_path = resolve_wake_model(settings, cfg.models[0])
    stage1 = cpu_session(s1_path)
    frames1 = int(stage1.get_inputs()[0].shape[1])
    v_path = verifier_path(s1_path)
    verifier = Verifier({"m": v_path}) if v_path.exists() and cfg.verifier else None
    model = load_wake_model([s1_path])
    feats = Features()
    refractory = round(cfg.refractory_seconds / CHUNK_SECONDS)
    phrase = wake_phrases_from_models([s1_path.stem])[0]
    heard = WhisperScores(whisper, phrase, work_dir) if whisper is not None else None
    asr_t = cfg.asr_check_threshold

    def scores(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        s1 = stage_scores(stage1, emb, frames1)
        cand = np.nonzero(s1 >= cfg.threshold)[0]
        s2 = window_scores(emb, verifier.score, verifier.frames, cand) if verifier else None
        return s1, s2, cand

    negatives = negative_streams(work_dir, seed, negative_hours)
    neg_emb = [stream_embeddings(feats, s, work_dir).astype(np.float32) for s in negatives]
    neg_scores = [scores(emb) for emb in tqdm(neg_emb, desc="scoring negatives", unit="stream")]
    neg_hours = sum(len(s.audio) for s in negatives) / SAMPLE_RATE / 3600
    generic = generic_negatives()
    rng = np.random.default_rng(50_000 + seed)
    keys = (None, *PERSONAL_THRESHOLDS)
    people: list[dict[str, Any]] = []
    for p in tqdm(range(PEOPLE), desc="enrolled people", unit="person"):
        person = Person.draw(rng)
        wake = [person.take("hey music", rng) for _ in range(WAKE_TAKES)]
        other = [person.take(t, rng) for t in OTHER_PROMPTS]
        floor = room_floor([*wake, *other])
        pos, _ = positive_windows(model, wake, other, cfg.threshold, floor, seed=p)
        neg = negative_windows(model, [*other, *generic], floor)
        personal = PersonalVerifier(fit(pos, neg))
        rows: dict[Any, dict[str, Any]] = {k: {"frr": {}, "false_accepts": 0} for k in keys}
        for n, condition in enumerate(CONDITIONS):
            stream = positive_stream(condition, PHRASES, 60_000 + 97 * p + n, voice=person.say)
            emb = feats.embed(stream.audio)
            # made anew each run: cached Whisper scores are keyed by the audio itself
            key = "person_" + hashlib.sha1(stream.audio.tobytes()).hexdigest()[:16]
            s1, s2, cand = scores(emb)
            sp = window_scores(emb, personal.score, FRAMES, cand)
            for tp in keys:
                fired = _wakes(s1, s2, None if tp is None else sp, cfg, tp or 0.0, refractory)
                fired = _asr_kept(heard, key, stream.audio, fired, asr_t)
                hits, _ = count_hits(stream, wake_data.frame_end_s(len(s1))[fired])
                rows[tp]["frr"][condition] = round(1 - hits / len(stream.phrases), 3)
        for stream, emb, (s1, s2, cand) in zip(negatives, neg_emb, neg_scores, strict=True):
            sp = window_scores(emb, personal.score, FRAMES, cand)
            for tp in keys:
                fired = _wakes(s1, s2, None if tp is None else sp, cfg, tp or 0.0, refractory)
                fired = _asr_kept(heard, stream.name, stream.audio, fired, asr_t)
                _, false = count_hits(stream, wake_data.frame_end_s(len(s1))[fired])
                rows[tp]["false_accepts"] += false
        if heard is not None:
            heard.save()
        for row in rows.values():
            row["fa_per_hour"] = round(row["false_accepts"] / neg_hours, 2)
        people.append(
            {"speaker": person.speaker.name, **{f"personal_{k}": v for k, v in rows.items()}}
        )
    summary = {}
    for tp in keys:
        rows_tp = [person[f"personal_{tp}"] for person in people]
        summary[f"personal_{tp}"] = {
            "frr": {
                c: round(float(np.mean([r["frr"][c] for r in rows_tp])), 3) for c in CONDITIONS
            },
            "fa_per_hour": round(float(np.mean([r["fa_per_hour"] for r in rows_tp])), 2),
        }
    report = {
        "people": people,
        "mean": summary,
        "whisper_check": whisper is not None,
        "negative_hours": round(neg_hours, 2),
    }
    (work_dir / "wake_enroll_eval.json").write_text(json.dumps(report, indent=1))
    return report
