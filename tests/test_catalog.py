"""Catalog import: the three sources, bad rows by line number, atomic storage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heymusic.cli import main
from heymusic.config import load_settings
from heymusic.errors import UserError
from heymusic.music import catalog as cat
from heymusic.track import Track

SPOTIFY_HEADER = (
    "track_id,track_name,track_artist,track_popularity,track_album_id,track_album_name,"
    "track_album_release_date,playlist_name,playlist_id,playlist_genre,playlist_subgenre,"
    "danceability,energy,key,loudness,mode,speechiness,acousticness,instrumentalness,liveness,"
    "valence,tempo,duration_ms"
)


def _spotify_row(
    tid: str,
    name: str,
    playlist: str,
    pid: str,
    genre: str,
    sub: str,
    date: str = "1994-05-01",
    energy: str = "0.8",
) -> str:
    return (
        f"{tid},{name},Some Artist,55,alb,Album,{date},{playlist},{pid},{genre},{sub},"
        f"0.5,{energy},1,-5.0,1,0.05,0.1,0.0,0.1,0.4,120.0,200000"
    )


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_spotify_rows_merge_per_track(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "songs.csv",
        [
            SPOTIFY_HEADER,
            _spotify_row("a" * 22, "First Song", "Rainy Day Chill", "p1", "pop", "indie poptimism"),
            _spotify_row("a" * 22, "First Song", "Workout Hits", "p2", "edm", "big room"),
            _spotify_row("b" * 22, "Second", "Workout Hits", "p2", "edm", "big room", date="2001"),
        ],
    )
    imported, report = cat.import_catalog(src)
    assert len(imported) == 2 and report.rows == 3 and not report.bad_lines
    first = imported.get("a" * 22)
    assert first is not None
    assert {"pop", "edm", "indie poptimism", "big room", "rainy", "chill", "workout"} <= set(
        first.tags
    )
    assert "hits" not in first.tags  # playlist filler words are not tags
    assert first.year == 1994 and first.features["energy"] == pytest.approx(0.8)
    assert imported.get("b" * 22).year == 2001  # type: ignore[union-attr]
    assert first.uri == "spotify:track:" + "a" * 22


def test_malformed_csv_reports_bad_rows_and_keeps_old_catalog(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "good.csv",
        [
            "track_id,name,artist,spotify_preview_url,tags,genre,year,danceability,energy,valence",
            "t1,Alpha,Band A,http://x/1.mp3,chill;acoustic,folk,1999,0.3,0.2,0.5",
            "t2,Beta,Band B,,party,pop,2015,0.9,0.9,0.9",
        ],
    )
    cat.import_catalog(good)
    stored = cat.catalog_path().read_bytes()

    bad = _write(
        tmp_path / "bad.csv",
        [
            "track_id,name,artist,spotify_preview_url,tags,genre,year,danceability,energy,valence",
            "t3,Gamma,Band C,,,rock,2001,0.5,0.5,0.5",
            "t4,Delta,Band D,,,rock,2001,0.5,not-a-number,0.5",  # line 3
            "t5,,Band E,,,rock,2001,0.5,0.5,0.5",  # line 4: no name
            "t6,Eps,Band F,,,rock",  # line 5: too few fields
            'x7,"Zeta, the song",Band G,,,rock,1970,,,',  # missing values are fine
        ],
    )
    imported, report = cat.import_catalog(bad)
    assert sorted(report.bad_lines) == [3, 4, 5]
    assert "lines 3, 4, 5" in report.summary()
    assert [t.track_id for t in imported.tracks] == ["t3", "x7"]
    assert imported.get("x7").features == {}  # type: ignore[union-attr]

    # Nothing usable: an error, and the stored catalog is the previous one, byte for byte.
    cat.save_catalog(cat.Catalog(cat.read_catalog().tracks))  # type: ignore[union-attr]
    stored = cat.catalog_path().read_bytes()
    hopeless = _write(
        tmp_path / "hopeless.csv",
        [
            "track_id,name,artist,genre",
            "t1,,A,rock",
            "t2,,B,pop,extra",
        ],
    )
    with pytest.raises(UserError, match="old catalog is unchanged"):
        cat.import_catalog(hopeless)
    assert cat.catalog_path().read_bytes() == stored
    assert main(["catalog", "import", str(hopeless)]) == 2
    assert main(["catalog", "import", str(tmp_path / "missing.csv")]) == 2
    assert cat.catalog_path().read_bytes() == stored


def test_failed_write_leaves_old_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat.save_catalog(cat.Catalog([Track("t1", "Alpha", "A")]))
    before = cat.catalog_path().read_bytes()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cat.json, "dumps", explode)
    with pytest.raises(OSError):
        cat.save_catalog(cat.Catalog([Track("t2", "Beta", "B")]))
    assert cat.catalog_path().read_bytes() == before
    assert not list(cat.catalog_path().parent.glob(".catalog-*"))


def test_unknown_columns_is_a_clear_error(tmp_path: Path) -> None:
    src = _write(tmp_path / "x.csv", ["foo,bar", "1,2"])
    with pytest.raises(UserError, match="unknown CSV columns"):
        cat.import_catalog(src)


def test_music_folder_import(tmp_path: Path) -> None:
    from mutagen.flac import FLAC

    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    path = folder / "sub" / "song.flac"
    sf.write(path, np.zeros(16000, dtype=np.int16), 16000)
    audio = FLAC(path)
    audio["title"], audio["artist"], audio["genre"], audio["date"] = (
        "Local Tune",
        "Home Band",
        "Jazz",
        "1987-03-02",
    )
    audio.save()
    sf.write(folder / "untagged.flac", np.zeros(8000, dtype=np.int16), 16000)
    (folder / "broken.mp3").write_bytes(b"\x00garbage" * 50)
    imported, report = cat.import_catalog(folder)
    by_name = {t.name: t for t in imported.tracks}
    assert set(by_name) == {"Local Tune", "untagged"}
    tune = by_name["Local Tune"]
    assert (tune.artist, tune.genre, tune.year) == ("Home Band", "jazz", 1987)
    assert tune.path == str(path.resolve()) and "jazz" in tune.tags
    assert tune.features["duration_ms"] == pytest.approx(1000.0)
    assert "valence" not in tune.features  # absent, not zero
    assert len(report.bad_lines) == 1 and "broken.mp3" in report.summary()


def test_first_use_imports_configured_source_then_reuses_it(tmp_path: Path) -> None:
    src = tmp_path / "seed.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["track_id", "name", "artist", "genre", "year"])
        w.writerow(["s1", "Song One", "Artist", "pop", "2010"])
    settings = load_settings(overrides={"catalog": {"source": str(src)}})
    assert cat.read_catalog() is None
    first = cat.load_catalog(settings)
    assert [t.name for t in first.tracks] == ["Song One"]
    src.unlink()  # a restart loads the stored catalog; it does not import again
    again = cat.load_catalog(settings)
    assert again.fingerprint == first.fingerprint
    header = json.loads(cat.catalog_path().read_text().splitlines()[0])
    assert header["source"] == str(src)
    empty = load_settings(overrides={"catalog": {"source": ""}})
    cat.catalog_path().unlink()
    with pytest.raises(UserError, match="catalog import"):
        cat.load_catalog(empty)


def test_catalog_of_another_version_is_imported_again_from_its_source(tmp_path: Path) -> None:
    """An upgrade must not strand the user: re-import from the recorded file when it exists,
    and leave the stored catalog byte-identical when it does not."""
    src = tmp_path / "seed.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["track_id", "name", "artist", "genre", "year"])
        w.writerow(["s1", "Song One", "Artist", "pop", "2010"])
    settings = load_settings(overrides={"catalog": {"source": ""}})
    old = {"version": 1, "source": str(src), "fingerprint": "x", "columns": ["track_id"]}
    cat.catalog_path().parent.mkdir(parents=True, exist_ok=True)
    cat.catalog_path().write_text(json.dumps(old) + "\n", encoding="utf-8")
    assert [t.name for t in cat.load_catalog(settings).tracks] == ["Song One"]

    gone = {**old, "source": str(tmp_path / "moved.csv")}
    stale = json.dumps(gone) + "\n"
    cat.catalog_path().write_text(stale, encoding="utf-8")
    with pytest.raises(UserError, match="catalog import"):
        cat.load_catalog(settings)
    assert cat.catalog_path().read_text(encoding="utf-8") == stale
