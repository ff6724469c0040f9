"""Wake word: openWakeWord streaming scores, a threshold and a refractory period.

Model-agnostic: it loads whatever ONNX files `[wake] models` names (a bare name is
looked up in the shipped models dir, then in openwakeword's own resources), and
reports which one fired. Later stages check each candidate before it becomes a Wake:
an embedding verifier (heymusic.wake.verifier) and Whisper hearing the phrase
(heymusic.wake.asr_check).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np

from heymusic.audio.format import CHUNK_SAMPLES, CHUNK_SECONDS, SAMPLE_RATE
from heymusic.audio.room import quiet_room
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Wake, WakeCandidate
from heymusic.text import wake_phrases_from_models
from heymusic.wake.asr_check import AsrCheck
from heymusic.wake.features import EMB_OFFSET, MEL_CHUNKS, VoiceGate
from heymusic.wake.models import load_wake_model, resolve_wake_model
from heymusic.wake.personal import load_people, load_personal
from heymusic.wake.verifier import load_verifier

_LOGGER = logging.getLogger(__name__)

GROUP_CHUNKS = 4
"""Chunks scored back to back per call while no burst waits for Whisper. Scored one per
80 ms, each chunk finds the feature models' weights gone from the CPU caches: 4 at a time
took 4.6-4.9 % of one core paced while someone talks, against 5.8-6.0 % one at a time
(bench/wake.py). Only when every model's wake waits `AsrCheck.after_seconds` for Whisper
anyway, and no more chunks than fit in that wait (3 at 0.3 s: 4.7-5.1 %): a fire scored
late is then checked, and reported, on the same chunk as one scored at once. A fire the
verifier is sure of skips that wait (`verifier_sure`), so its Wake can come up to two chunks
late (160 ms; 80 ms on average, on the sixth of wakes that are sure); scoring one chunk at a
time would cost about a point of a core whenever someone talks."""


class WakeDetector:
    """Feed 80 ms int16 chunks; returns a Wake when a model's score crosses the threshold
    and the later stages agree, a WakeCandidate when one of them does not.

    Stages: the openWakeWord model (every chunk, except that while webrtcvad hears no voice
    chunks are stored, not scored: heymusic.wake.features), on each frame over the threshold
    the embedding verifier and, once someone enrolled, the personal verifier (which may vouch
    for a frame the embedding verifier doubts), then Whisper (`AsrCheck`, once per burst,
    `AFTER_S` later, when a Whisper model is given). After a fire it stays quiet for
    `refractory_seconds` so one utterance wakes once; a Whisper rejection also starts that
    period (one check per burst, not one per frame). While every model waits for Whisper,
    chunks are scored `group_chunks` at a time (GROUP_CHUNKS), with the same scores and
    a Whisper-checked Wake on the same chunk.
    """

    def __init__(self, settings: Settings, whisper: Any = None) -> None:
        """`whisper`: the loaded faster-whisper model for the last stage (None = skip it)."""
        cfg = settings.wake
        if not cfg.models:
            raise UserError("[wake] models is empty; name at least one wake model")
        self._paths = [resolve_wake_model(settings, name) for name in cfg.models]
        self._model = load_wake_model(self._paths)
        self.model_names: list[str] = list(self._model.models)
        self.phrases = wake_phrases_from_models(self.model_names)
        """What each model listens for, as a transcript starts ("hey_jarvis_v0.1" -> "hey jarvis")."""
        self._threshold = cfg.threshold
        self._refractory_s = cfg.refractory_seconds
        self._last_fire_s = float("-inf")
        self._verifier = load_verifier(settings) if cfg.verifier else None
        self._personal = load_personal(settings, self.model_names)
        self._people = load_people(settings, self.model_names)
        self._identify_threshold = cfg.identify_threshold
        self._personal_threshold = cfg.personal_threshold
        self._personal_override = cfg.personal_override
        self._asr_checks = (
            {
                name: AsrCheck(whisper, phrase)
                for name, phrase in zip(self.model_names, self.phrases, strict=True)
            }
            if cfg.asr_check and whisper is not None
            else {}
        )
        self._asr_threshold = cfg.asr_check_threshold
        keep_s = max((c.window_seconds for c in self._asr_checks.values()), default=0.0)
        self._whisper_window_s = keep_s
        self._recent: deque[np.ndarray] = deque(maxlen=math.ceil(keep_s / CHUNK_SECONDS - 1e-9) + 1)
        """Audio for Whisper's check, one chunk more than its window: the check is settled
        on the first chunk ending `after_seconds` or more after the fire, and that chunk's
        overhang is cut off. The verifier reads openWakeWord's own embeddings."""
        self._verifier_threshold = cfg.verifier_threshold
        self._verifier_threshold_playing = cfg.verifier_threshold_playing
        self._verifier_sure = cfg.verifier_sure
        self.music_playing = False
        """Set by the daemon while its player plays: the verifier's bar is then
        `verifier_threshold_playing` (music masks the phrase)."""
        features = self._model.preprocessor
        features.read_frames = max(
            [*self._model.model_inputs.values(), *(p.frames for p in self._personal.values())]
            + ([self._verifier.frames] if self._verifier is not None else [])
        )
        # a wake score reads the last 16 embeddings (stock and ours), 26 chunks of audio; the
        # verifiers read further back, but only on chunks the wake model fired on
        hold = max(self._model.model_inputs.values()) + MEL_CHUNKS
        self._gate = VoiceGate(hold) if cfg.skip_silence else None
        self._rejected = False
        self._samples = 0
        """Samples heard: openWakeWord's buffer starts out as embeddings of digital silence."""
        self._heard_s = 0.0
        """Where the last chunk scored ends, in seconds of input."""
        self._pending: tuple[float, float, str, float, float | None, str | None, float] | None = (
            None
        )
        """A burst waiting for Whisper: (fire time, score, model, verifier, personal score,
        person identified, seconds of compute spent on it so far)."""
        # a fire scored k chunks late is still checked on time while k <= wait / 80 ms
        waits = [check.after_seconds for check in self._asr_checks.values()]
        self.group_chunks = (
            max(1, min(GROUP_CHUNKS, int(min(waits) / CHUNK_SECONDS + 1e-6)))
            if len(waits) == len(self.model_names)
            else 1
        )
        """Chunks taken per scoring (GROUP_CHUNKS); 1 when a model wakes without Whisper."""
        self._held: list[tuple[np.ndarray, float]] = []
        self._events: deque[Wake | WakeCandidate] = deque()
        """Events of chunks scored together, handed out one per call."""
        _LOGGER.info("wake models: %s (threshold %.2f)", ", ".join(self.model_names), cfg.threshold)

    @property
    def context_seconds(self) -> float:
        """Audio the stages read back from a fire: the verifiers' embeddings (each one
        reads 76 mel frames, so the first needs EMB_OFFSET + 1 chunks) and Whisper's window.
        Their training and evaluation windows always lay wholly inside heard audio."""
        frames = self._model.preprocessor.read_frames
        return max((frames + EMB_OFFSET) * CHUNK_SECONDS, self._whisper_window_s)

    def lead_in(self) -> None:
        """Hear `context_seconds` of a quiet room (heymusic.audio.room), timed before 0 s.

        A microphone has always heard the room before someone speaks; a file or a pipe
        may start with the phrase. There the verifier found no embedding at all (a fire
        at 0.56 s: the first one needs 0.8 s of audio) or one of speech, which it pads to
        its 32 frames by repetition, a window unlike any it was trained on: it turned the
        phrase down. 0.5 s of silence before it passed only by luck (the repeated oldest
        frame was then mostly silence). Nothing is said during the lead-in, so its
        events (openWakeWord's first frames) are dropped."""
        room = quiet_room(self.context_seconds)
        chunks = len(room) // CHUNK_SAMPLES
        for k in range(chunks):
            chunk = room[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES]
            self.process(chunk, (k + 1 - chunks) * CHUNK_SECONDS)
        self._score_held()
        self._events.clear()
        self._rejected = False
        self._pending = None

    @property
    def enrolled(self) -> list[str]:
        """Models with a personal verifier from `heymusic enroll`."""
        return sorted(self._personal)

    def process(self, chunk: np.ndarray, audio_s: float) -> Wake | WakeCandidate | None:
        """Take one chunk ending at `audio_s` seconds into the input; every `group_chunks`
        calls (every call while a burst waits for Whisper) score the chunks taken, in order.
        A Wake Whisper checked comes on the call it would one chunk at a time; one the
        verifier was sure of, and a WakeCandidate (a log line), up to `group_chunks` - 1
        calls later."""
        self._held.append((chunk, audio_s))
        if self._pending is not None or len(self._held) >= self.group_chunks:
            self._score_held()
        return self._events.popleft() if self._events else None

    def finish(self) -> list[Wake | WakeCandidate]:
        """End of input: score the chunks still held, and give a burst still waiting for
        Whisper its verdict on the audio there is (a recording that ends right after the
        phrase; wake-eval scores it so); the events not handed out yet."""
        self._score_held()
        if self._pending is not None:
            self._events.append(self._verdict(self._heard_s))
        events = list(self._events)
        self._events.clear()
        return events

    def events(self, audio: np.ndarray) -> list[Wake | WakeCandidate]:
        """A whole recording (int16 16 kHz, timed from its start), 80 ms at a time as a
        microphone feeds it, then `finish`: every event (evals, benches, tests)."""
        out = []
        for k in range(len(audio) // CHUNK_SAMPLES):
            event = self.process(
                audio[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES], (k + 1) * CHUNK_SECONDS
            )
            if event is not None:
                out.append(event)
        return out + self.finish()

    def _score_held(self) -> None:
        """Score the chunks held. A Wake the verifier was sure of (no wait for Whisper) is
        handed out on this call, up to `group_chunks` - 1 chunks after the one it fired on:
        its `latency_ms` counts that wait, and it goes ahead of the log lines queued."""
        now_s = self._held[-1][1] if self._held else 0.0
        for chunk, audio_s in self._held:
            event = self._step(chunk, audio_s)
            if isinstance(event, Wake):
                held_ms = 1000.0 * max(0.0, now_s - audio_s)
                self._events.appendleft(replace(event, latency_ms=event.latency_ms + held_ms))
            elif event is not None:
                self._events.append(event)
        self._held.clear()

    def _step(self, chunk: np.ndarray, audio_s: float) -> Wake | WakeCandidate | None:
        """Score one chunk; its event, if any."""
        started = time.perf_counter()
        self._recent.append(chunk)
        self._samples += len(chunk)
        self._heard_s = audio_s
        scores: dict[str, float] = {}
        if self._gate is None or self._gate.open(chunk) or not self._skip(chunk):
            scores = self._model.predict(chunk)
        if self._pending is not None:
            return self._settle(audio_s)
        if not scores:
            return None
        model, score = max(scores.items(), key=lambda item: item[1])
        if score < self._threshold or audio_s - self._last_fire_s < self._refractory_s:
            self._rejected = False
            return None
        personal = None
        if model in self._personal:
            check = self._personal[model]
            personal = check.score(self._heard_embeddings(check.frames))
        verified, sure = 1.0, False
        if self._verifier is not None and self._verifier.covers(model):
            verified = self._verifier.score(self._heard_embeddings(self._verifier.frames), model)
            sure = verified >= self._verifier_sure
        vouched = personal is not None and personal >= self._personal_override
        bar = self._verifier_threshold_playing if self.music_playing else self._verifier_threshold
        doubted = verified < bar and not vouched
        if doubted or (personal is not None and personal < self._personal_threshold):
            # A rejected frame starts no refractory period: the next frames of the same
            # burst (the phrase completing) are checked again; one event per burst.
            return self._reject(
                WakeCandidate(audio_s, float(score), model, verified, None, personal)
            )
        self._rejected = False
        person = None
        if model in self._people:
            people = self._people[model]
            person = people.identify(
                self._heard_embeddings(people.frames), self._identify_threshold
            )
        spent_s = time.perf_counter() - started
        if model in self._asr_checks and not sure:
            self._pending = (audio_s, float(score), model, verified, personal, person, spent_s)
            return None
        self._last_fire_s = audio_s
        return Wake(audio_s, float(score), model, latency_ms=1000.0 * spent_s, person=person)

    def _skip(self, chunk: np.ndarray) -> bool:
        """Store a chunk no score can need yet (heymusic.wake.features); False = not stored."""
        if not self._model.preprocessor.defer(chunk):
            return False
        for name in self.model_names:  # openwakeword zeroes its first 5 scores: count this one
            self._model.prediction_buffer[name].append(0.0)
        return True

    def _reject(self, candidate: WakeCandidate) -> WakeCandidate | None:
        """The first rejected frame of a burst is reported, the rest are not."""
        first, self._rejected = not self._rejected, True
        return candidate if first else None

    def _heard_embeddings(self, frames: int) -> np.ndarray:
        """The last `frames` embeddings of openWakeWord's buffer, without the silence it starts
        with (the verifier never saw that in training and passed it: a check at start-up)."""
        heard = (
            self._samples // CHUNK_SAMPLES - EMB_OFFSET
        )  # one embedding per 80 ms once warmed up
        n = min(frames, heard)
        if n <= 0:
            return np.zeros((0, 96), np.float32)
        return np.asarray(self._model.preprocessor.get_features(n))

    def _settle(self, audio_s: float) -> Wake | WakeCandidate | None:
        """Once `AFTER_S` of audio followed the fire: Whisper's verdict on the burst."""
        assert self._pending is not None
        fire_s, _, model, _, _, _, _ = self._pending
        if audio_s - fire_s < self._asr_checks[model].after_seconds - 1e-6:
            return None
        return self._verdict(audio_s)

    def _verdict(self, audio_s: float) -> Wake | WakeCandidate:
        """Whisper's verdict on the burst waiting for it, from the audio up to `audio_s`."""
        assert self._pending is not None
        fire_s, score, model, verified, personal, person, spent_s = self._pending
        check = self._asr_checks[model]
        self._pending = None
        self._last_fire_s = fire_s
        started = time.perf_counter()
        heard = check.score(
            _cut(np.concatenate(self._recent), audio_s - fire_s - check.after_seconds)
        )
        if heard < self._asr_threshold:
            return WakeCandidate(fire_s, score, model, verified, heard, personal)
        spent_s += time.perf_counter() - started  # + the audio waited for, to the chunk settling it
        latency_ms = 1000.0 * (audio_s - fire_s + spent_s)
        return Wake(fire_s, score, model, latency_ms=latency_ms, person=person)

    def reset(self) -> None:
        """Forget recent scores (after a command), so stale frames cannot fire again."""
        self._score_held()  # their features are the next chunks' context; events are stale
        self._events.clear()
        self._model.reset()
        self._recent.clear()
        self._rejected = False
        self._pending = None


def _cut(audio: np.ndarray, overhang_s: float) -> np.ndarray:
    """`audio` without its last `overhang_s` seconds: Whisper hears exactly `after_seconds`
    after the fire, as wake-eval measured it (AFTER_S is not a whole number of chunks: 0.3 s
    is 3.75, so the chunk that settles a check ends 20 ms later; such an overhang had made
    the daemon's windows differ from the eval's)."""
    overhang = round(overhang_s * SAMPLE_RATE)
    return audio[: len(audio) - overhang] if overhang > 0 else audio
