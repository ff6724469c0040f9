"""A profile's taste, learned from its history: a direction in the song-embedding space
(the mean of the liked songs minus a quarter of the mean of the disliked ones, recent
events weighing more: Rocchio's formula) and the songs said to be unwanted, kept in memory
and updated as events are recorded.

What counts: an explicit "I like this" (+1) or "I don't like this" (-1, and the song never
comes back by itself), a replay or "more like this" (+0.7), a song heard to its end (+0.5),
a skip within the first 30 s (-0.3, a mild dislike). A later skip, a stop or a start alone
say nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from heymusic.history.store import HOUSEHOLD, HistoryEvent

WEIGHTS = {"like": 1.0, "dislike": -1.0, "replay": 0.7, "more_like_this": 0.7, "finish": 0.5}
EARLY_SKIP_SECONDS = 30.0
EARLY_SKIP_WEIGHT = -0.3
DISLIKED_SHARE = 0.25
"""Rocchio's weights: the taste is the (weighted) mean of the liked songs minus a quarter of
the mean of the disliked ones, so thirty early skips do not drown three songs heard to the
end."""
HALF_LIFE_DAYS = 60.0
"""An event this old counts half as much as one today."""


def event_weight(event: HistoryEvent) -> float:
    """How much one event says the profile likes (+) or dislikes (-) its song."""
    if event.kind == "skip":
        early = event.seconds is not None and event.seconds < EARLY_SKIP_SECONDS
        return EARLY_SKIP_WEIGHT if early else 0.0
    return WEIGHTS.get(event.kind, 0.0)


@dataclass(frozen=True)
class TasteScores:
    """What `Taste.vector` gives: a unit direction, or None when history says nothing yet."""

    vector: np.ndarray | None
    events: int


class Taste:
    """One profile's taste; `add` is called from any thread, reads take a consistent copy."""

    def __init__(self, profile: str = HOUSEHOLD, events: Iterable[HistoryEvent] = ()) -> None:
        self.profile = profile
        self._lock = threading.Lock()
        self._signals: list[tuple[str, float, float]] = []
        """(track id, weight, unix time) of every event that says something."""
        self._verdict: dict[str, str] = {}
        """Latest explicit like/dislike (or a replay, which lifts a dislike) per song."""
        for event in events:
            self.add(event)

    def add(self, event: HistoryEvent) -> None:
        if event.profile != self.profile:
            return
        weight = event_weight(event)
        with self._lock:
            if weight:
                self._signals.append((event.track_id, weight, event.at))
            if event.kind in ("like", "dislike", "replay"):
                self._verdict[event.track_id] = "dislike" if event.kind == "dislike" else "like"

    @property
    def disliked(self) -> frozenset[str]:
        """Songs whose latest word was "I don't like this": never served unasked."""
        with self._lock:
            return frozenset(t for t, v in self._verdict.items() if v == "dislike")

    def track_weights(self, now: float | None = None) -> dict[str, float]:
        """Net recency-weighted weight per song (positive: liked)."""
        now = time.time() if now is None else now
        with self._lock:
            signals = list(self._signals)
        net: dict[str, float] = {}
        for track_id, weight, at in signals:
            age_days = max(0.0, now - at) / 86400.0
            net[track_id] = net.get(track_id, 0.0) + weight * math.pow(
                0.5, age_days / HALF_LIFE_DAYS
            )
        return net

    def favourites(self, n: int) -> list[str]:
        """The n most liked songs, best first (none that was disliked since)."""
        disliked = self.disliked
        ranked = sorted(self.track_weights().items(), key=lambda kv: -kv[1])
        return [t for t, w in ranked if w > 0 and t not in disliked][:n]

    def vector(self, row_of: Callable[[str], int | None], vectors: np.ndarray) -> TasteScores:
        """The taste direction in the space of `vectors` (row_of maps a song id to its row);
        None until something was liked."""
        weights = self.track_weights()
        rows, amounts = [], []
        for track_id, weight in weights.items():
            row = row_of(track_id)
            if row is not None and weight:
                rows.append(row)
                amounts.append(weight)
        if not any(a > 0 for a in amounts):
            return TasteScores(None, 0)  # skips alone point nowhere: wait for a first like
        signed = np.asarray(amounts, dtype=np.float32)
        songs = np.asarray(vectors[rows], dtype=np.float32)
        liked = np.clip(signed, 0, None)
        disliked = np.clip(-signed, 0, None)
        taste = liked @ songs / liked.sum()
        if disliked.any():
            taste -= DISLIKED_SHARE * (disliked @ songs / disliked.sum())
        norm = float(np.linalg.norm(taste))
        return TasteScores(taste / norm if norm > 1e-6 else None, len(rows))


class Tastes:
    """Every profile's taste, built from the stored history and kept up to date by it."""

    def __init__(self, events: Iterable[HistoryEvent] = ()) -> None:
        self._by_profile: dict[str, Taste] = {}
        self._lock = threading.Lock()
        for event in events:
            self.add(event)

    def get(self, profile: str) -> Taste:
        with self._lock:
            taste = self._by_profile.get(profile)
            if taste is None:
                taste = self._by_profile[profile] = Taste(profile)
            return taste

    def add(self, event: HistoryEvent) -> None:
        self.get(event.profile).add(event)
