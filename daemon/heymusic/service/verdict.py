"""One line at the end of every run saying what came of it, so a run that heard nothing
says why instead of exiting quietly."""

from __future__ import annotations

from dataclasses import dataclass, field

from heymusic.events import Event, StageError, Timeout, Transcript, Wake, WakeCandidate

SHOWN_CANDIDATES = 3
"""Turned-down candidates named one by one; more are counted."""


def _turned_down(candidate: WakeCandidate) -> str:
    """Which stage said no, with its score."""
    if candidate.asr_score is not None:
        return f"by Whisper's check ({candidate.asr_score:.2g})"
    if candidate.personal_score is not None:
        return (
            f"by the verifiers (shared {candidate.verifier_score:.2f}, "
            f"personal {candidate.personal_score:.2f})"
        )
    return f"by the verifier ({candidate.verifier_score:.2f})"


def _count(n: int, noun: str) -> str:
    return f"one {noun}" if n == 1 else f"{n} {noun}s"


@dataclass
class Verdict:
    """Counts the events of a run; `line()` sums them up for a person."""

    wakes: int = 0
    answered: int = 0
    timeouts: int = 0
    errors: int = 0
    candidates: list[WakeCandidate] = field(default_factory=list)

    def add(self, event: Event) -> None:
        if isinstance(event, Wake):
            self.wakes += 1
        elif isinstance(event, WakeCandidate):
            self.candidates.append(event)
        elif isinstance(event, Transcript):
            self.answered += 1
        elif isinstance(event, Timeout):
            self.timeouts += 1
        elif isinstance(event, StageError):
            self.errors += 1

    def line(self) -> str:
        if self.wakes:
            woke = "once" if self.wakes == 1 else f"{self.wakes} times"
            parts = [f"woke {woke}", f"{_count(self.answered, 'request')} answered"]
            if self.timeouts:
                parts.append(f"{_count(self.timeouts, 'wake')} with no request after it")
        else:
            parts = ["no wake word heard"]
        if self.errors:
            parts.append(_count(self.errors, "error") + " (above)")
        if self.candidates:
            turned = ", ".join(
                f"at {c.audio_s:.2f} s {_turned_down(c)}"
                for c in self.candidates[:SHOWN_CANDIDATES]
            )
            if len(self.candidates) > SHOWN_CANDIDATES:
                turned += f", and {len(self.candidates) - SHOWN_CANDIDATES} more"
            parts.append(f"{_count(len(self.candidates), 'candidate')} turned down {turned}")
        elif not self.wakes:
            parts.append("nothing came close to the wake phrase")
        return "; ".join(parts)
