"""What a music file's signal says on the song tower's own scales: tempo (BPM) and loudness.

A folder import calls `analyse_files`: each file is decoded (miniaudio, as the player does)
and measured in a process pool, with a progress bar; results are cached per file (path,
size, mtime) in the cache dir, so an import of an unchanged folder measures nothing again.

Only the features the signal measures on the scale of the Spotify table the tower learned
are filled: `tempo` (librosa's beat tracker; octave errors happen, docs/music-folder.md) and
`loudness` (ITU-R BS.1770 integrated loudness in LUFS by pyloudnorm, which is the scale of
Spotify's `loudness` in dB). Valence, energy and the others stay unknown, exactly as for
a file without tags: they are masked in the song tower's input, never guessed.

librosa and pyloudnorm (and through them scipy) come with the `analysis` extra and are
imported only inside the worker processes, never by the importing process or the daemon.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heymusic.atomic import write_atomic
from heymusic.config import cache_dir

_LOGGER = logging.getLogger(__name__)

CACHE_FILE = "audio_analysis.json"
#: Bumped whenever a measurement changes: older cached results are then measured again.
ANALYSIS_VERSION = 1
#: librosa's beat tracker works at this rate (its default); loudness uses the file's own.
TEMPO_RATE = 22050
#: Longer files are measured on their first ten minutes (a DJ mix of an hour would take
#: ~2.5 GB per worker in float64 whole).
MAX_SECONDS = 600
#: Below this many beats a tempo is no measurement (a jingle, a drone, a sound effect).
MIN_BEATS = 8
INSTALL_HINT = "pip install 'heymusic[analysis]' (make run installs it)"


@dataclass(frozen=True)
class Analysis:
    """The measured features of one file; `problem` says why there are none (decoding failed)."""

    features: dict[str, float] = field(default_factory=dict)
    problem: str = ""


def analysis_available() -> bool:
    """Whether the `analysis` extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("librosa", "pyloudnorm"))


def measure(samples: np.ndarray, rate: int) -> dict[str, float]:
    """Tempo and loudness of (frames, channels) float samples; {} for silence.

    Loudness is BS.1770 integrated loudness (LUFS), gated as the standard says, so a
    silent file has none. Tempo is librosa's estimate (its default prior around 120 BPM),
    refined by a straight line through the beat times: the estimate alone is quantised to
    the onset frames (about 3 % at 150 BPM), the beats' slope is not. The onset strength
    is taken on a medium-quality resampling: high quality took 20 times as long, for the
    same tempo.
    """
    import librosa  # the analysis extra; only the worker processes import it
    import pyloudnorm

    samples = np.asarray(samples[: MAX_SECONDS * rate], dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    min_frames = int(0.4 * rate)  # one BS.1770 gating block
    if len(samples) < min_frames or not np.any(samples):
        return {}
    features: dict[str, float] = {}
    loudness = float(pyloudnorm.Meter(rate).integrated_loudness(samples))
    if not np.isfinite(loudness):
        return {}  # every block is below the absolute gate (-70 LUFS): silence
    features["loudness"] = loudness
    mono = samples.mean(axis=1).astype(np.float32)
    y = librosa.resample(mono, orig_sr=rate, target_sr=TEMPO_RATE, res_type="soxr_mq")
    onsets = librosa.onset.onset_strength(y=y, sr=TEMPO_RATE)
    estimate = float(librosa.feature.tempo(onset_envelope=onsets, sr=TEMPO_RATE)[0])
    _, beats = librosa.beat.beat_track(
        onset_envelope=onsets, sr=TEMPO_RATE, start_bpm=estimate, units="time"
    )
    if estimate > 0 and len(beats) >= MIN_BEATS:
        seconds_per_beat = float(np.polyfit(np.arange(len(beats)), beats, 1)[0])
        features["tempo"] = 60.0 / seconds_per_beat if seconds_per_beat > 0 else estimate
    return features


def decode(path: str | Path) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 samples at the file's own rate, decoded as the player does."""
    import miniaudio

    info = miniaudio.get_file_info(str(path))  # decode_file would make it 44.1 kHz stereo
    sound = miniaudio.decode_file(
        str(path),
        output_format=miniaudio.SampleFormat.FLOAT32,
        nchannels=info.nchannels,
        sample_rate=info.sample_rate,
    )
    samples = np.frombuffer(sound.samples, dtype=np.float32)
    return samples.reshape(-1, sound.nchannels), sound.sample_rate


def analyse_file(path: str) -> Analysis:
    """The worker: decode and measure one file; a file that cannot be decoded has a problem."""
    try:
        samples, rate = decode(path)
    except Exception as err:  # miniaudio raises DecodeError and others for broken files
        return Analysis(problem=f"cannot decode its audio ({err or type(err).__name__})")
    if not len(samples):
        return Analysis(problem="no audio in it")
    try:
        return Analysis(features=measure(samples, rate))
    except Exception as err:  # a measurement failing on odd audio costs its features only
        return Analysis(problem=f"cannot measure its audio ({type(err).__name__}: {err})")


class AnalysisCache:
    """Measured features by file, valid while the file's size and mtime are unchanged."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / CACHE_FILE
        self.entries: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
                raise ValueError("not an analysis cache")
        except (OSError, ValueError) as err:
            _LOGGER.warning(
                "audio analysis cache %s unreadable (%s): measuring again", self.path, err
            )
            return
        if data.get("version") == ANALYSIS_VERSION:
            self.entries = data["files"]

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]

    def get(self, path: Path) -> dict[str, float] | None:
        entry = self.entries.get(str(path.resolve()))
        if entry is None or entry.get("stamp") != self._stamp(path):
            return None
        features = entry.get("features")
        return dict(features) if isinstance(features, dict) else None

    def put(self, path: Path, features: dict[str, float]) -> None:
        self.entries[str(path.resolve())] = {"stamp": self._stamp(path), "features": features}

    def save(self) -> None:
        text = json.dumps({"version": ANALYSIS_VERSION, "files": self.entries})
        write_atomic(self.path, text)


def analyse_files(
    paths: Sequence[Path], cache: AnalysisCache | None = None
) -> dict[Path, Analysis]:
    """Tempo and loudness of each file, from the cache or measured in parallel.

    Without the analysis extra nothing is measured (one line says what to install) and the
    import goes on with tags alone. Files that cannot be decoded come back with a problem.
    """
    if not paths:
        return {}
    if not analysis_available():
        _LOGGER.warning("audio not analysed (tempo, loudness): %s", INSTALL_HINT)
        return {}
    from tqdm import tqdm

    cache = cache or AnalysisCache()
    results: dict[Path, Analysis] = {}
    todo = []
    for path in paths:
        cached = cache.get(path)
        if cached is None:
            todo.append(path)
        else:
            results[path] = Analysis(features=cached)
    if not todo:
        return results
    workers = min(len(todo), len(os.sched_getaffinity(0)))
    # forkserver: the workers do not inherit the caller's threads (a daemon's audio threads).
    context = multiprocessing.get_context("forkserver")
    bar = tqdm(total=len(todo), desc="analyse audio", unit=" files")
    failed: list[str] = []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # The first file alone: its worker compiles librosa's numba functions and writes
            # their on-disk cache before any other worker needs it. Workers compiling at once
            # wrote that cache together and left it corrupt: every later analysis crashed in
            # librosa's beat tracker (a segfault), on a fresh install's first import.
            for batch in (todo[:1], todo[1:]):
                futures = {pool.submit(analyse_file, str(p)): p for p in batch}
                for future in as_completed(futures):
                    path = futures[future]
                    bar.update(1)
                    try:
                        result = future.result()
                    except Exception as err:  # a worker died: no measurement, not a bad file
                        failed.append(f"{path.name} ({type(err).__name__})")
                        continue
                    results[path] = result
                    if not result.problem:
                        cache.put(path, result.features)
    finally:
        bar.close()
        cache.save()  # what was measured before an interruption is kept
    if failed:
        _LOGGER.warning(
            "audio analysis failed for %d files, imported with their tags only: %s",
            len(failed),
            ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""),
        )
    return results
