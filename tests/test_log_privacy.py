"""`run`'s log with log_transcripts off (the default): nothing the request can be read from,
neither the words nor the songs found for them; `simulate` shows everything."""

from __future__ import annotations

import csv
import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import TEST_SEED, read_pcm
from tests.test_simulate import HEYMUSIC, small_catalog

__all__ = ["small_catalog"]  # the fixture, shared with test_simulate


def test_the_run_log_tells_nothing_of_the_request(
    tmp_path: Path,
    whisper_dir: Path,
    synth: Callable[..., Path],
    small_catalog: tuple[Path, list[dict[str, str]]],
) -> None:
    rng = random.Random(TEST_SEED + 7)
    catalog, asked = small_catalog
    song = rng.choice(asked)
    said = [
        f"hey music, {rng.choice(['play', 'put on'])} {song['track_name']} by {song['track_artist']}",
        f"hey music, {rng.choice(['what is playing', 'what song is this'])}",
    ]
    wav = tmp_path / "requests.wav"
    # the file starts with the wake phrase: run --input gives the detector its lead-in too
    audio = [
        read_pcm(synth(text, pad_before=pad, pad_after=2.5))
        for text, pad in zip(said, (0.0, 1.0), strict=True)
    ]
    sf.write(str(wav), np.concatenate(audio), 16000)
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nmodel_dir = "{whisper_dir}"\n[catalog]\nsource = "{catalog}"\n')
    out = subprocess.run(
        [str(HEYMUSIC), "--config", str(config), "run", "--input", str(wav)]
        + ["--player", "preview", "--audio-out", "null"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-2000:]
    assert "intent name=play" in log and "songs (not logged)" in log, log  # it was answered
    assert "(not logged)" in log, log
    verdict = log.strip().splitlines()[-1]  # candidates turned down may follow: "; one ..."
    assert "woke 2 times; 2 requests answered" in verdict, log
    with catalog.open(encoding="utf-8") as fh:
        names = {v for r in csv.DictReader(fh) for v in (r["track_name"], r["track_artist"])}
    told = sorted(n for n in names if len(n) >= 5 and n in log)
    assert told == [], (told, log)
    request_words = {w for w in song["track_name"].split() if len(w) >= 5}
    assert not [w for w in request_words if w.lower() in log.lower()], log
