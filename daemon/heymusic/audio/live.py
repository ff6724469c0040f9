"""Live audio for the always-on daemon: the microphone, reopened whenever it fails, or a
file paced as a microphone would deliver it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from heymusic.audio.echo import EchoCanceller
from heymusic.audio.format import CHUNK_SECONDS
from heymusic.audio.sources import AudioSource, MicSource, open_input
from heymusic.config import Settings
from heymusic.errors import UserError
from heymusic.events import Event, Notice, StageError

OVERRUN_REPORT_S = 5.0
"""Shortest time between two overrun notices (the count in them is always complete)."""


def live_chunks(
    spec: str | None,
    settings: Settings,
    emit: Callable[[Event], None],
    now: Callable[[], float],
    alive: Callable[[], None],
    echo: EchoCanceller | None = None,
) -> Iterator[np.ndarray]:
    """Chunks in real time. A file is paced like a microphone; a lost mic is reopened
    (calling `alive` while it waits: the watchdog is for a stuck loop, not an unplugged mic)."""
    if spec:
        return _paced(open_input(spec), spec != "-")
    return _microphone(settings, emit, now, alive, echo)


def _paced(source: AudioSource, pace: bool) -> Iterator[np.ndarray]:
    start = time.monotonic()
    try:
        for n, chunk in enumerate(source.chunks(), 1):
            if pace:
                time.sleep(max(0.0, start + n * CHUNK_SECONDS - time.monotonic()))
            yield chunk
    finally:
        source.close()


def _microphone(
    settings: Settings,
    emit: Callable[[Event], None],
    now: Callable[[], float],
    alive: Callable[[], None],
    echo: EchoCanceller | None = None,
) -> Iterator[np.ndarray]:
    """The mic, reopened with growing waits (up to 30 s) whenever it fails."""
    wait = settings.audio.reconnect_seconds
    try:
        mic = MicSource(settings.audio.input_device, echo=echo)
    except UserError as err:  # no microphone yet: only reached as a service
        emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
        mic = _reopen(settings, emit, now, wait, alive, echo)
    try:
        while True:
            seen, reported_at = 0, float("-inf")
            try:
                for chunk in mic.chunks():
                    # Every loss is counted; a loop that stays behind reports every few seconds,
                    # not once per dropped chunk.
                    if mic.overruns != seen and time.monotonic() - reported_at >= OVERRUN_REPORT_S:
                        seen, reported_at = mic.overruns, time.monotonic()
                        emit(Notice(now(), f"audio overrun: {seen} chunks dropped so far"))
                    yield chunk
                    wait = settings.audio.reconnect_seconds
            except UserError as err:
                emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
            mic.close()
            mic = _reopen(settings, emit, now, wait, alive, echo)
    finally:
        mic.close()


def _reopen(
    settings: Settings,
    emit: Callable[[Event], None],
    now: Callable[[], float],
    wait: float,
    alive: Callable[[], None],
    echo: EchoCanceller | None,
) -> MicSource:
    while True:
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0:
            alive()
            time.sleep(min(left, 1.0))
        try:
            mic = MicSource(settings.audio.input_device, echo=echo)
        except UserError as err:
            wait = min(wait * 2, 30.0)
            emit(StageError(now(), f"{err}; retrying in {wait:.0f} s"))
            continue
        emit(Notice(now(), "microphone reopened"))
        return mic
