"""`heymusic doctor` on the catalog: a source that is not there is a problem, and a catalog
with nothing playable here is a warning that says what to do."""

from __future__ import annotations

import csv
import random
import subprocess
from pathlib import Path

from tests.conftest import TEST_SEED
from tests.test_cli import _run


def _catalog_line(config: Path) -> tuple[str, int]:
    out = _run("--config", str(config), "doctor")
    line = next(x for x in out.stdout.splitlines() if x.split()[1:2] == ["catalog"])
    return line, out.returncode


def _sample_csv(shared_csv: Path, out: Path, n: int = 20) -> Path:
    """Random songs of the Spotify table (it has no preview URLs)."""
    with shared_csv.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or []), list(reader)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(random.Random(TEST_SEED).sample(rows, n))
    return out


def test_a_catalog_source_that_does_not_exist_fails(tmp_path: Path) -> None:
    missing = tmp_path / f"songs-{random.Random(TEST_SEED).randrange(10**6)}.csv"
    config = tmp_path / "config.toml"
    config.write_text(f'[catalog]\nsource = "{missing}"\n')
    line, status = _catalog_line(config)
    assert line.startswith("FAIL") and str(missing) in line and "does not exist" in line, line
    assert status == 1


def test_nothing_playable_is_a_warning_until_a_local_file_is_there(
    tmp_path: Path, shared_csv: Path
) -> None:
    songs = _sample_csv(shared_csv, tmp_path / "songs.csv")
    config = tmp_path / "config.toml"
    config.write_text(f'[catalog]\nsource = "{songs}"\n[player]\nkind = "auto"\n')
    assert _run("catalog", "import", str(songs)).returncode == 0
    line, _ = _catalog_line(config)
    assert line.startswith("warn") and "none playable" in line, line
    assert "heymusic catalog import" in line and "spotify login" in line, line

    songs.unlink()  # the catalog stays usable; its source is gone
    line, _ = _catalog_line(config)
    assert line.startswith("warn") and str(songs) in line and "does not exist" in line, line

    music = tmp_path / "music"
    music.mkdir()
    song = music / "tone.flac"
    subprocess.run(["sox", "-n", "-r", "44100", str(song), "synth", "3", "sine", "440"], check=True)
    config.write_text(f'[catalog]\nsource = "{music}"\n')
    assert _run("catalog", "import", str(music)).returncode == 0
    line, _ = _catalog_line(config)
    assert line.startswith("ok") and "1 local files" in line, line
