"""Typed pipeline events; their JSON form is the `simulate --json` contract.

Every event carries `audio_s`: seconds into the input where it happened (for
transcript, intent, results and player: the end of the speech they answer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from heymusic.track import Track


@dataclass(frozen=True)
class Event:
    """Base of all events; `type` is the JSON name, fixed per class."""

    type: ClassVar[str] = "event"
    audio_s: float

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):  # 3 decimals, but a tiny score keeps 2 digits
                value = round(value, 3) if abs(value) >= 0.01 else float(f"{value:.2g}")
            data[f.name] = value
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class WakeCandidate(Event):
    """The first stage fired but a later one rejected it (no reaction)."""

    type: ClassVar[str] = "wake_candidate"
    score: float
    model: str
    verifier_score: float
    asr_score: float | None = None
    """Whisper's check (None: rejected before it ran)."""
    personal_score: float | None = None
    """The enrolled household's verifier (None: not enrolled, or rejected before it ran)."""


@dataclass(frozen=True)
class Wake(Event):
    """The wake word, heard at `audio_s` (the chunk the phrase was found in)."""

    type: ClassVar[str] = "wake"
    score: float
    model: str
    latency_ms: float = field(default=0.0, compare=False)
    """How long a person waits for it after that chunk: the audio the checks waited for
    (Whisper's 0.3 s) plus their compute time. A measurement, not what was heard: two
    runs' wakes are the same wake whatever it measured."""
    person: str | None = None
    """Who said it, among the people enrolled by name (None: nobody sure, the household)."""


@dataclass(frozen=True)
class SpeechEnd(Event):
    type: ClassVar[str] = "speech_end"


@dataclass(frozen=True)
class Timeout(Event):
    """Woken, but no speech followed within the no-speech timeout."""

    type: ClassVar[str] = "timeout"


@dataclass(frozen=True)
class Transcript(Event):
    """What Whisper wrote; `clarity`: how sure it was (heymusic.speech.asr.Hearing)."""

    type: ClassVar[str] = "transcript"
    text: str
    asr_ms: float
    clarity: float | None = None


@dataclass(frozen=True)
class IntentEvent(Event):
    """`name` is one of intents.INTENT_NAMES; `value` is a volume percent or "+10"/"-10"."""

    type: ClassVar[str] = "intent"
    name: str
    query: str | None = None
    value: int | str | None = None


@dataclass(frozen=True)
class TrackResult:
    """One recommended track as printed by `simulate` and `ask --json`."""

    track_id: str
    name: str
    artist: str
    genre: str
    year: int | None
    score: float

    @classmethod
    def of(cls, track: Track, score: float) -> TrackResult:
        return cls(track.track_id, track.name, track.artist, track.genre, track.year, float(score))

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "name": self.name,
            "artist": self.artist,
            "genre": self.genre,
            "year": self.year,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class Results(Event):
    type: ClassVar[str] = "results"
    tracks: tuple[TrackResult, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "audio_s": round(self.audio_s, 3),
            "tracks": [t.to_dict() for t in self.tracks],
        }


@dataclass(frozen=True)
class PlayerCommand(Event):
    """A command issued to the player; latency is from end of speech to issuing it."""

    type: ClassVar[str] = "player"
    action: str
    latency_ms: float
    detail: str | None = None


@dataclass(frozen=True)
class StageError(Event):
    type: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True)
class Notice(Event):
    """Operational news that is not an error (mic reconnected, audio overrun counted)."""

    type: ClassVar[str] = "notice"
    message: str
