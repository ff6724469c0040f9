"""Echo cancellation: our own playback taken out of the microphone before wake and ASR.

The player ducks only after a wake, so "hey music" must be heard over the music we play
ourselves. Smart speakers solve this by subtracting what they play: the speaker's device
thread hands every block it plays to `PlaybackReference`, stamped with the time it took
it; the mic thread asks for the reference covering each captured chunk, and libspeexdsp's
adaptive echo canceller (MDF) learns the speaker -> room -> mic path and subtracts the
echo. Measured in docs/wake-word.md (`bench/echo.py`): ~10 dB less echo, and the wake misses
over our own music at 0 dB fall from ~60 % to ~24 %, also on two devices whose clocks
drift apart.

libspeexdsp is called through ctypes: the PyPI binding (speexdsp 0.1.1) is a SWIG sdist
that needs a compiler and exposes nothing more than the four calls used here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections import deque
from typing import Any

import numpy as np

from heymusic.audio.format import SAMPLE_RATE
from heymusic.errors import UserError

FRAME = 160
"""Samples per canceller step (10 ms, the frame speex is tuned for)."""
TAIL_S = 0.5
"""Echo the filter can model: output + input buffering (~0.1-0.3 s) plus the room's tail."""
SNAP_S = 0.03
"""The read position starts over from the clocks when they put it this far off: a
stretch of playback that began anew, chunks the mic lost."""
SETTLING_SNAP = 8
"""Samples: while a clock is new, the read position follows a better estimate this far off
at once (the first timestamps can be milliseconds late)."""
GAP_S = 0.5
"""A side silent this long was stopped (a closed speaker, a reopened mic): its clock
starts over. Late callbacks (tens of milliseconds) are not gaps."""
LEAST_LATE_S = 2.0
"""Window for the least late timestamp: long enough to hold an on-time one, short next to
the clocks' drift (1000 ppm moves 2 ms in it)."""
READ_LAG_S = 0.03
"""The mic reads the reference this far behind the clock: the resampler holds back a few
milliseconds, so the newest reference is not yet written. Sound takes longer than this
to come back (the speaker's buffer alone is 60 ms), so the echo still follows its cause."""
RATE_WINDOW_S = 120.0
"""Each side's clock rate is a least-squares fit of its sample count against the monotonic
clock over about this long: timestamps jitter by milliseconds, the fit to ~1 ppm."""
DRIFT_BAND = 16
"""Samples the read position may sit off where the clocks put it before it is pulled back:
within the band only the measured rates move it, so one clock gives a still reference."""
PULL_BACK = 0.01
"""Per mic chunk: the smoothing of that distance (timestamps jitter by milliseconds) and
the share of its excess over the band taken back."""
ONE_CLOCK = 3e-6
"""Fitted rates this close (the fit's own error) are one clock. Two devices that are
really this close slide 0.05 samples a second, which the band absorbs."""
TAPS = 16
"""Windowed-sinc taps for reading the reference between samples."""
HISTORY_S = 4.0
"""Reference kept: the filter's tail plus the read lag plus any lateness, several times."""

_SET_SAMPLING_RATE = 24  # speex_echo.h: SPEEX_ECHO_SET_SAMPLING_RATE


@functools.cache
def _speexdsp() -> Any:
    name = ctypes.util.find_library("speexdsp")
    try:
        lib = ctypes.CDLL(name or "libspeexdsp.so.1")
    except OSError as err:
        raise UserError(
            "echo cancellation needs libspeexdsp: install it (apt-get install libspeexdsp1) "
            "or set [audio] echo_cancel = false"
        ) from err
    ptr = ctypes.c_void_p
    lib.speex_echo_state_init.restype = ptr
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_cancellation.argtypes = [ptr, ptr, ptr, ptr]
    lib.speex_echo_ctl.argtypes = [ptr, ctypes.c_int, ptr]
    lib.speex_echo_state_destroy.argtypes = [ptr]
    return lib


class _Clock:
    """One device's sample count against the monotonic clock.

    Its timestamps are taken when a thread gets to run, so they are only ever late (by
    milliseconds, or by a hundred when a callback waits for the GIL): the rate is a least-
    squares fit over ~RATE_WINDOW_S, the offset the least late of the last LEAST_LATE_S."""

    def __init__(self) -> None:
        self._origin: tuple[float, float] | None = None
        self._last = 0.0
        self._sums = np.zeros(5)  # weight, t, count, t*t, t*count
        self._recent: deque[tuple[float, float]] = deque()
        """(time, count) of the last LEAST_LATE_S."""

    def add(self, when: float, count: float) -> None:
        if self._origin is None:
            self._origin = (when, count)
        t, c = when - self._origin[0], count - self._origin[1]
        self._sums *= np.exp(-max(t - self._last, 0.0) / RATE_WINDOW_S)
        self._sums += (1.0, t, c, t * t, t * c)
        self._last = t
        self._recent.append((when, count))
        while self._recent[0][0] < when - LEAST_LATE_S:
            self._recent.popleft()

    def fitted_rate(self) -> float | None:
        """Samples per second; None until about a minute has been seen. The speaker pulls
        silence while nothing plays, so both clocks are known before the music starts."""
        w, t, c, tt, tc = self._sums
        if w < 1:
            return None
        var = tt / w - (t / w) ** 2
        return float((tc / w - t / w * c / w) / var) if var > 300 else None

    def rate(self) -> float:
        return self.fitted_rate() or SAMPLE_RATE

    def settled(self, when: float) -> bool:
        """Seen for LEAST_LATE_S: its least late timestamp is an on-time one."""
        return self._origin is not None and when - self._origin[0] >= LEAST_LATE_S

    def _latest(self) -> tuple[float, float]:
        """(time, count) of the latest count, timed by the least late recent timestamp
        (counted back at the current rate over at most LEAST_LATE_S, so a better rate
        moves it by a fraction of a sample)."""
        count = self._recent[-1][1]
        rate = self.rate()
        return min(when + (count - c) / rate for when, c in self._recent), count

    def count_at(self, when: float) -> float:
        at, count = self._latest()
        return count + (when - at) * self.rate()

    def time_of(self, count: float) -> float:
        at, latest = self._latest()
        return at + (count - latest) / self.rate()


class PlaybackReference:
    """What the speaker played, as 16 kHz mono, read out on the mic's clock.

    The speaker and the mic count samples on their own crystals: one device (a USB
    speakerphone, a HAT) shares one, a USB mic beside the Pi's speaker is tens to hundreds
    of ppm off, and at 300 ppm the reference slides 5 samples a second past the echo, which
    no canceller follows. Both sides' clocks are measured against the monotonic one
    (`_Clock`) and the reference is read at their ratio, between samples when it must.

    `played` runs on the speaker's device thread, `window` on the mic thread."""

    def __init__(self) -> None:
        self._ring = np.zeros(round(HISTORY_S * SAMPLE_RATE), np.int16)
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._written = 0
        """Absolute sample index (since `_t0`) just past the last sample played."""
        self._fed = 0.0
        """Where `_written` would be without the resampler's buffering (input side)."""
        self._pos: float | None = None
        """Read position (input-side samples, fractional) of the next mic sample."""
        self._off = 0.0
        """Smoothed distance from the read position to where the clocks put it."""
        self._mic_samples = 0
        self._speaker = _Clock()
        self._mic = _Clock()
        self._last_pull = self._last_chunk = float("-inf")
        self._resampler: Any = None
        self._zeros = np.zeros(0, np.float32)

    def _index(self, when: float) -> int:
        if self._t0 is None:
            self._t0 = when
        return round((when - self._t0) * SAMPLE_RATE)

    def played(self, block: np.ndarray, rate: int, when: float) -> None:
        """`block` (frames, channels) int16 at `rate` was handed to the device at `when`."""
        import soxr

        # the device pulls silence all day while nothing plays: no downmix for it
        mono = block.mean(axis=1, dtype=np.float32) if block.any() else self._silence(len(block))
        with self._lock:
            if self._resampler is None or when - self._last_pull > GAP_S:
                # first block, or the device was stopped: a new stretch of playback
                at = self._index(when)
                self._clear(self._written, at)
                self._written = self._fed = at
                self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
                self._speaker = _Clock()
            self._speaker.add(when, self._fed)
            self._last_pull = when
            self._fed += len(block) * SAMPLE_RATE / rate
            samples = self._resampler.resample_chunk(mono)
            self._put(self._written, np.clip(samples, -32768, 32767).astype(np.int16))
            self._written += len(samples)

    def _silence(self, n: int) -> np.ndarray:
        if len(self._zeros) != n:
            self._zeros = np.zeros(n, np.float32)
        return self._zeros

    def window(self, n: int, end: float) -> np.ndarray:
        """The `n` reference samples for a mic chunk whose last sample arrived at `end`:
        zeros where nothing played."""
        with self._lock:
            if self._t0 is None:
                return np.zeros(n, np.int16)
            if end - self._last_chunk > GAP_S:  # first chunk, or the mic was reopened
                self._mic = _Clock()
            self._last_chunk = end
            self._mic_samples += n
            self._mic.add(end, self._mic_samples)
            chunk_end = self._mic.time_of(self._mic_samples) - READ_LAG_S
            due = self._speaker.count_at(chunk_end) - n
            # until both clocks have an on-time timestamp, `due` still improves by leaps
            settled = self._mic.settled(end) and self._speaker.settled(end)
            snap = SNAP_S * SAMPLE_RATE if settled else SETTLING_SNAP
            if self._pos is None or abs(due - self._pos) > snap:
                self._pos, self._off = float(round(due)), 0.0
            speaker, mic = self._speaker.fitted_rate(), self._mic.fitted_rate()
            ratio = speaker / mic if speaker and mic else 1.0
            if abs(ratio - 1.0) < ONE_CLOCK:
                ratio = 1.0  # whole-sample reads: no interpolation to blur the reference
            self._off += PULL_BACK * (due - self._pos - self._off)
            excess = np.sign(self._off) * max(abs(self._off) - DRIFT_BAND, 0.0)
            positions = self._pos + np.arange(n) * ratio
            self._pos += n * ratio + PULL_BACK * excess
            return self._interpolate(positions)

    def _interpolate(self, positions: np.ndarray) -> np.ndarray:
        """The ring read at fractional positions (windowed sinc); zeros where nothing
        played. Silence and whole-sample positions (one clock) skip the arithmetic."""
        half = TAPS // 2
        lo = int(np.floor(positions[0])) - half + 1
        idx = np.arange(lo, int(np.floor(positions[-1])) + half + 1)
        raw = self._ring[idx % len(self._ring)]
        raw[(idx >= self._written) | (idx < self._written - len(self._ring))] = 0
        if not raw.any():
            return np.zeros(len(positions), np.int16)
        base = np.floor(positions).astype(np.int64)
        frac = positions - base
        if not frac.any():
            return raw[base - lo]
        taps = np.lib.stride_tricks.sliding_window_view(raw.astype(np.float32), TAPS)
        x = frac[:, None] - np.arange(1 - half, half + 1)
        weights = np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / (half + 1)))
        out = (taps[base - lo - half + 1] * weights).sum(axis=1)
        return np.clip(out, -32768, 32767).astype(np.int16)

    def _put(self, at: int, samples: np.ndarray) -> None:
        samples = samples[-len(self._ring) :]
        idx = np.arange(at, at + len(samples)) % len(self._ring)
        self._ring[idx] = samples

    def _clear(self, start: int, end: int) -> None:
        if end > start:  # a gap in playback is silence
            self._put(start, np.zeros(min(end - start, len(self._ring)), np.int16))


class EchoCanceller:
    """libspeexdsp's echo canceller over mic chunks, with `reference` as the far end."""

    def __init__(self, reference: PlaybackReference, tail_s: float = TAIL_S) -> None:
        self._lib = _speexdsp()
        self.reference = reference
        self._tail = round(tail_s * SAMPLE_RATE)
        self._state = self._lib.speex_echo_state_init(FRAME, self._tail)
        rate = ctypes.c_int(SAMPLE_RATE)
        self._lib.speex_echo_ctl(self._state, _SET_SAMPLING_RATE, ctypes.byref(rate))
        self._quiet = self._tail  # samples since the reference last had sound
        self._out = np.zeros(FRAME, np.int16)
        self._lock = threading.Lock()
        """speex's state is not thread-safe, and a mic thread being replaced after a device
        loss may hand over one last chunk while its successor runs."""

    def process(self, chunk: np.ndarray, captured_at: float) -> np.ndarray:
        """`chunk` (int16, a multiple of FRAME samples) without the echo of what played."""
        with self._lock:
            return self._process(chunk, captured_at)

    def _process(self, chunk: np.ndarray, captured_at: float) -> np.ndarray:
        far = self.reference.window(len(chunk), captured_at)
        self._quiet = 0 if far.any() else self._quiet + len(chunk)
        if self._quiet > self._tail or not self._state:
            return chunk  # nothing played for a whole tail (or closed): no echo to remove
        near = np.ascontiguousarray(chunk, np.int16)
        out = near.copy()  # a partial last frame passes through
        for i in range(0, len(near) - FRAME + 1, FRAME):
            self._lib.speex_echo_cancellation(
                self._state,
                near[i:].ctypes.data,
                far[i:].ctypes.data,
                self._out.ctypes.data,
            )
            out[i : i + FRAME] = self._out
        return out

    def close(self) -> None:
        with self._lock:
            if self._state:
                self._lib.speex_echo_state_destroy(self._state)
                self._state = None
