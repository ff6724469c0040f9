"""`heymusic catalog demo` (run by `make run`): music that plays on day one, never at the cost
of a catalog the user imported; `doctor` says where the music comes from."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.cli import main
from heymusic.commands import demo_library
from heymusic.commands.doctor import check_music
from heymusic.config import default_catalog_source, load_settings
from heymusic.music.catalog import import_catalog, read_catalog
from tests.conftest import TEST_SEED


@pytest.fixture
def demo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small stand-in for the Debian package's folder (the real one is 16 pieces, 51 MB)."""
    folder = tmp_path / "demo"
    folder.mkdir()
    rng = np.random.default_rng(TEST_SEED)
    t = np.arange(44100 * 3) / 44100
    for n in range(3):
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
        sf.write(folder / f"piece {n}.ogg", tone, 44100)
    monkeypatch.setattr(demo_library, "DEMO_FOLDER", folder)
    return folder


def test_nothing_playable_imports_the_demo_library_once(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "demo"]) == 0
    assert "demo library imported" in capsys.readouterr().out
    catalog = read_catalog()
    assert catalog is not None and catalog.source == str(demo_folder)
    assert all(Path(t.path).parent == demo_folder for t in catalog.tracks) and len(catalog) == 3
    assert "loudness" in catalog.tracks[0].features  # analysed like any folder
    assert main(["catalog", "demo"]) == 0
    assert "3 songs play here" in capsys.readouterr().out
    line = check_music(load_settings())
    assert demo_library.DEMO_PACKAGE in line and "catalog import ~/Music" in line
    assert f"with Spotify: `heymusic catalog import {default_catalog_source()}`" in line


def test_a_catalog_of_the_users_stays(demo_folder: Path, tmp_path: Path) -> None:
    own = tmp_path / "mine.csv"
    with own.open("w", newline="") as f:
        csv.writer(f).writerows([["track_id", "name", "artist"], ["x1", "My Song", "Me"]])
    import_catalog(own)
    settings = load_settings()
    line = demo_library.setup_demo_library(settings, spotify=False)
    assert "stays" in line
    catalog = read_catalog()
    assert catalog is not None and catalog.source == str(own)
    assert "0 of 1 songs play here" in check_music(settings)


def test_spotify_a_configured_source_or_no_package_imports_nothing(
    demo_folder: Path, tmp_path: Path
) -> None:
    own = load_settings(overrides={"catalog": {"source": str(tmp_path / "my music")}})
    assert "imported on first use" in demo_library.setup_demo_library(own, spotify=False)
    settings = load_settings()
    assert "Spotify plays" in demo_library.setup_demo_library(settings, spotify=True)
    demo_library.DEMO_FOLDER = demo_folder / "gone"  # undone by the fixture's monkeypatch
    line = demo_library.setup_demo_library(settings, spotify=False)
    assert f"install the Debian package {demo_library.DEMO_PACKAGE}" in line
    assert read_catalog() is None


def test_an_unreadable_catalog_is_left_as_it_is(demo_folder: Path) -> None:
    from heymusic.music.catalog import catalog_path

    path = catalog_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00not a catalog")
    line = demo_library.setup_demo_library(load_settings(), spotify=False)
    assert "left as it is" in line and path.read_bytes() == b"\x00not a catalog"
