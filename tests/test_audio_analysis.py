"""Known answers for the audio analysis of a music folder (tempo, loudness), on fluidsynth
renders of random MIDI at tempi drawn per run, scaled by known gains."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.config import cache_dir
from heymusic.music import catalog as cat
from heymusic.music.analysis import CACHE_FILE, analyse_file
from heymusic.training.wake.data import random_midi, render_midi
from tests.conftest import PROJECT_DIR, TEST_SEED

RATE = 44100
#: The tempi, pieces and gains are drawn from the suite's seed (HEYMUSIC_TEST_SEED=<n> draws
#: others). Not every draw passes: librosa halves or doubles a tempo now and then
#: (bench/audio_analysis.py measures how often, docs/music-folder.md).
SEED = TEST_SEED + 35


def render(bpm: int, seconds: float, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    """(frames, 2) float samples of a random piece at `bpm`, drums on the beat, no offbeat
    hi-hats (whose eighth-note pulse makes slow pieces ambiguous: docs/music-folder.md)."""
    midi = random_midi(seconds, rng, bpm=bpm, drums=True, dance_beat=True)
    wav = render_midi(midi, tmp / f"{bpm}.wav", RATE, gain=0.5)
    data, _ = sf.read(wav, dtype="float64", always_2d=True)
    wav.unlink()
    return data


def db(gain: float) -> float:
    return float(10 ** (gain / 20))


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    """Three pieces at tempi drawn from 80-160 BPM, at least 15 BPM apart."""
    rng = np.random.default_rng(SEED)
    tmp = tmp_path_factory.mktemp("renders")
    while True:
        tempi = sorted(int(b) for b in rng.choice(np.arange(80, 161), size=3, replace=False))
        if min(np.diff(tempi)) >= 15:
            break
    return {bpm: render(bpm, 40.0, rng, tmp) for bpm in tempi}


def test_known_tempi_and_levels(
    pieces: dict[int, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Tempo within 4 % of the rendered tempo; loudness follows a known gain within 1 LU (on
    a piece and on its clipped copy); silence has no tempo or loudness; a corrupt file is
    skipped with one line and the import goes on."""
    folder = tmp_path / "music"
    folder.mkdir()
    drawn = np.random.default_rng(SEED).uniform(-30, -3, len(pieces))
    gains = {bpm: float(g) for bpm, g in zip(pieces, drawn, strict=True)}
    for bpm, data in pieces.items():
        sf.write(folder / f"{bpm}.flac", data, RATE)
        sf.write(folder / f"{bpm} quieter.flac", data * db(gains[bpm]), RATE)
    first = next(iter(pieces))
    clipped = np.clip(pieces[first] * db(20), -1, 1)
    sf.write(folder / "clipped.flac", clipped, RATE)
    sf.write(folder / "silence.flac", np.zeros((RATE * 5, 2)), RATE)
    good = (folder / f"{first}.flac").read_bytes()
    header = good[: good.index(b"\xff\xf8")]  # the tags and stream info, up to the first frame
    noise = np.random.default_rng(SEED).integers(0, 256, 60000, dtype=np.uint8)
    (folder / "corrupt.flac").write_bytes(header + noise.tobytes())
    with caplog.at_level(logging.WARNING):
        imported, report = cat.import_catalog(folder)
    tracks = {t.name: t for t in imported.tracks}
    where = f"(seed {SEED}, tempi {list(pieces)}, gains {gains})"
    for bpm in pieces:
        measured = tracks[str(bpm)].features
        assert measured["tempo"] == pytest.approx(bpm, rel=0.04), where
        assert tracks[f"{bpm} quieter"].features["tempo"] == pytest.approx(bpm, rel=0.04), where
        difference = tracks[f"{bpm} quieter"].features["loudness"] - measured["loudness"]
        assert difference == pytest.approx(gains[bpm], abs=1.0), where
        assert -40 < measured["loudness"] < -3, where
    loud = tracks["clipped"].features
    assert loud["tempo"] == pytest.approx(first, rel=0.04), where
    assert tracks[str(first)].features["loudness"] + 5 < loud["loudness"] <= 0.5, where
    assert set(tracks["silence"].features) == {"duration_ms"}  # no tempo or loudness of nothing
    assert "corrupt" not in tracks and len(report.bad_lines) == 1
    lines = [r.getMessage() for r in caplog.records if "corrupt.flac" in r.getMessage()]
    assert len(lines) == 1 and "skipped" in lines[0], lines


def test_loudness_of_a_calibrated_sine(tmp_path: Path) -> None:
    """BS.1770's own calibration: a 997 Hz sine at amplitude A in one channel measures
    20 log10(A) - 3.01 LUFS; in both channels 3.01 LU more."""
    rng = np.random.default_rng(SEED)
    amplitude = float(rng.uniform(0.05, 0.9))
    t = np.arange(RATE * 10) / RATE
    tone = amplitude * np.sin(2 * np.pi * 997 * t)
    expected = 20 * np.log10(amplitude) - 3.01
    sf.write(tmp_path / "mono.wav", tone, RATE, subtype="FLOAT")
    sf.write(tmp_path / "stereo.wav", np.stack([tone, tone], axis=1), RATE, subtype="FLOAT")
    mono = analyse_file(str(tmp_path / "mono.wav")).features["loudness"]
    stereo = analyse_file(str(tmp_path / "stereo.wav")).features["loudness"]
    assert mono == pytest.approx(expected, abs=0.1), amplitude
    assert stereo == pytest.approx(expected + 3.01, abs=0.1), amplitude


def test_cache_measures_only_changed_files(
    pieces: dict[int, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Results are kept per (path, size, mtime): an unchanged file is not measured again, a
    changed one is; a corrupt cache costs one line and is rebuilt."""
    folder = tmp_path / "music"
    folder.mkdir()
    slow, fast = min(pieces), max(pieces)
    sf.write(folder / "a.flac", pieces[slow], RATE)
    sf.write(folder / "b.flac", pieces[fast], RATE)
    cat.import_catalog(folder)
    cache = cache_dir() / CACHE_FILE
    stored = json.loads(cache.read_text())
    for entry in stored["files"].values():  # marks: a value no measurement gives
        entry["features"]["tempo"] = 1.0
    cache.write_text(json.dumps(stored))
    sf.write(folder / "b.flac", pieces[slow], RATE)  # b changes
    tempo = {t.name: t.features["tempo"] for t in cat.import_catalog(folder)[0].tracks}
    assert tempo["a"] == 1.0  # from the cache
    assert tempo["b"] == pytest.approx(slow, rel=0.04)  # measured again
    cache.write_text('{"version": 1, "files": {"trunc')
    with caplog.at_level(logging.WARNING):
        tempo = {t.name: t.features["tempo"] for t in cat.import_catalog(folder)[0].tracks}
    assert tempo["a"] == pytest.approx(slow, rel=0.04)
    assert [r for r in caplog.records if "cache" in r.getMessage()], caplog.text
    assert json.loads(cache.read_text())["version"] == 1


def test_fast_and_quiet_on_an_untagged_folder(
    pieces: dict[int, np.ndarray], tmp_path: Path
) -> None:
    """Untagged files, known only by what the analysis measured, answer "something fast" and
    "something quiet" through the real query encoder and song tower."""
    from heymusic.config import load_settings
    from heymusic.music.recommender import load_recommender

    folder = tmp_path / "music"
    folder.mkdir()
    slow, fast = min(pieces), max(pieces)
    names = {}
    for bpm, level in ((slow, -30.0), (fast, -3.0)):  # slow and quiet, fast and loud
        for n in range(2):
            name = f"{bpm}-{n}" if n == 0 else f"{bpm} loud {n}"
            gain = level if n == 0 else -3.0
            sf.write(folder / f"{name}.flac", pieces[bpm] * db(gain), RATE)
            names[name] = bpm
    cat.import_catalog(folder)
    rec = load_recommender(load_settings())
    fast_first = [t.name for t, _ in rec.recommend("something fast", k=4)]
    assert len(fast_first) == 4  # songs without an artist are not capped as one artist's
    assert {names[n] for n in fast_first[:2]} == {fast}, fast_first
    rec.served.clear()
    quiet_first = [t.name for t, _ in rec.recommend("something quiet", k=4)]
    assert quiet_first[0] == f"{slow}-0", quiet_first  # the slow piece at its quiet level


def test_ask_and_the_daemon_never_import_the_analysis_libraries(tmp_path: Path) -> None:
    """librosa, pyloudnorm and scipy are for the import command's workers only; and librosa
    as the analysis uses it does not pull scikit-learn."""
    folder = tmp_path / "music"
    folder.mkdir()
    t = np.arange(RATE * 3) / RATE
    sf.write(folder / "tone.flac", 0.2 * np.sin(2 * np.pi * 440 * t), RATE)
    heavy = ("librosa", "pyloudnorm", "scipy", "sklearn", "numba")
    ask = (
        "import sys, heymusic.service.runner, heymusic.service.assembly, heymusic.players.auto\n"
        "from heymusic.cli import main\n"
        f"main(['catalog', 'import', {str(folder)!r}]); main(['ask', 'something fast'])\n"
        f"print('LOADED', [m for m in {heavy!r} if m in sys.modules])\n"
    )
    worker = (
        "import sys\nfrom heymusic.music.analysis import analyse_file\n"
        f"print(analyse_file({str(folder / 'tone.flac')!r}))\n"
        "print('LOADED', [m for m in ('sklearn',) if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR / "daemon")}
    for code in (ask, worker):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        ).stdout
        assert "LOADED []" in out, out
