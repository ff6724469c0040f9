"""Simulated rooms: far-field audio for training and evaluation.

People talk to a speaker on a shelf from the sofa, 1-5 m away, in a room that echoes; a
voice said into the microphone is not what the daemon hears there. pyroomacoustics' image
method gives the impulse response of a shoebox room for a talker and a microphone placed
in it, and the room's hum sits 20-25 dB under the voice. Training and evaluation draw
from different room sizes, so evaluation rooms are held out like evaluation voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from heymusic.audio.format import SAMPLE_RATE
from heymusic.audio.room import colored_noise
from heymusic.training.wake.levels import rms

RT60_S = (0.2, 1.0)
DISTANCE_M = (0.5, 5.0)
HEIGHT_M = (2.4, 3.0)
LENGTHS_M = {"train": ((3.0, 4.5), (6.5, 9.0)), "eval": ((4.5, 6.5),)}
"""Room lengths by split (width is 0.6-1.0 of the length): evaluation rooms are sizes that
training never had, so a far-field figure is not a figure on rooms learnt by heart."""
MAX_ORDER = 40
"""Image-source reflections kept: the full order a long RT60 asks for (100+) costs seconds a
room and overshoots the RT60 as pyroomacoustics measures it; 40 lands within ~15 %."""
ROOM_NOISE_DB = (20.0, 25.0)
"""How far under the voice the room's own noise sits (a quiet living room, a fridge)."""


@dataclass(frozen=True)
class Room:
    """One drawn room, talker and microphone; `impulse` is their impulse response."""

    size_m: tuple[float, float, float]
    rt60_s: float
    distance_m: float
    impulse: np.ndarray


def draw_room(
    split: str,
    rng: np.random.Generator,
    rt60_s: tuple[float, float] = RT60_S,
    distance_m: tuple[float, float] = DISTANCE_M,
) -> Room:
    """A random shoebox room of `split` ("train" or "eval") with a talker and a mic in it;
    `rt60_s` and `distance_m` narrow the draw (a condition of its own)."""
    import pyroomacoustics as pra

    lo, hi = LENGTHS_M[split][rng.integers(len(LENGTHS_M[split]))]
    length = rng.uniform(lo, hi)
    size = (length, length * rng.uniform(0.6, 1.0), rng.uniform(*HEIGHT_M))
    rt60 = rng.uniform(*rt60_s)
    absorption, order = pra.inverse_sabine(rt60, size)
    room = pra.ShoeBox(
        size, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, MAX_ORDER)
    )
    mic = np.array([rng.uniform(0.3, size[0] - 0.3), rng.uniform(0.3, size[1] - 0.3), 1.0])
    talker, distance = _talker(size, mic, distance_m, rng)
    room.add_source(talker)
    room.add_microphone(mic)
    room.compute_rir()
    impulse = np.asarray(room.rir[0][0], np.float32)
    return Room(size, rt60, distance, impulse / np.sqrt(np.sum(impulse**2)))


BANK_ROOMS = 64
"""Rooms per split that training's augmentation draws from (`banked_room`)."""


@cache
def banked_room(split: str, i: int) -> Room:
    """Room `i` of `split`'s bank: the same room in every process and run, drawn once per
    process when first used (a room costs ~0.13 s, a stream uses dozens of clips)."""
    return draw_room(split, np.random.default_rng([BANK_ROOMS, i, split == "eval"]))


def _talker(
    size: tuple[float, float, float],
    mic: np.ndarray,
    distance_m: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """A standing or seated talker `distance_m` from the mic, inside the room (in the far
    corner when the room is too small for the distance drawn)."""
    for _ in range(100):
        distance = rng.uniform(*distance_m)
        angle = rng.uniform(0, 2 * np.pi)
        spot = mic[:2] + distance * np.array([np.cos(angle), np.sin(angle)])
        if all(0.3 <= spot[i] <= size[i] - 0.3 for i in range(2)):
            height = rng.uniform(1.1, 1.7)
            talker = np.array([spot[0], spot[1], height])
            return talker, float(np.linalg.norm(talker - mic))
    corner = (
        np.array([size[0] - 0.3, size[1] - 0.3, 1.5])
        if mic[0] < size[0] / 2
        else np.array([0.3, 0.3, 1.5])
    )
    return corner, float(np.linalg.norm(corner - mic))


def reverberate(audio: np.ndarray, room: Room) -> np.ndarray:
    """`audio` (float, 16 kHz) as the room's microphone hears it, at the same level; the echo's
    tail is kept, so the result is longer by the impulse response."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio, room.impulse)
    return (wet * rms(audio) / (rms(wet) + 1e-12)).astype(np.float32)


def room_tone(n: int, voice_rms: float, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of the room's own noise, 20-25 dB under a voice of `voice_rms`."""
    snr = rng.uniform(*ROOM_NOISE_DB)
    return (colored_noise("pink", n, rng) * voice_rms / 10 ** (snr / 20)).astype(np.float32)
