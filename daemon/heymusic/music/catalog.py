"""The song catalog: one `Track` per song, imported once and kept in the state dir.

Three sources: the Spotify songs table (one row per track x playlist), the seed
schema (one row per track) and a folder of local audio files. The stored form is
one JSON file replaced atomically, so a failed import never costs the old catalog.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heymusic.atomic import atomic_open
from heymusic.config import Settings, state_dir
from heymusic.errors import UserError
from heymusic.text import words
from heymusic.track import Track

if TYPE_CHECKING:
    from tqdm import tqdm

_LOGGER = logging.getLogger(__name__)

CATALOG_FILE = "catalog.json"
FORMAT_VERSION = 2
#: Stored column order: one JSON array per track and line (no per-track key names).
COLUMNS = (
    "track_id",
    "name",
    "artist",
    "album",
    "genre",
    "subgenre",
    "tags",
    "year",
    "popularity",
    "preview_url",
    "path",
    "features",
)
#: Audio features the song tower understands (absent ones are masked, not zero).
AUDIO_FEATURES = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_ms",
)
AUDIO_EXTENSIONS = {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".wav", ".wma"}
#: Words of playlist names that say nothing about the songs.
STOPWORDS = frozenset(
    "a an and the of to in on for with by at from my your our this that is are be it its me "
    "i you we all best top new playlist playlists songs song music hits mix vol".split()
)


class FeatureRow(Mapping[str, float]):
    """One song's audio features as a row of the catalog's feature matrix (NaN = absent).

    A dict per song costs ~1 KB; a 25k-song catalog has to fit the recommender's memory budget.
    """

    __slots__ = ("_matrix", "_row")
    _SLOT = {name: i for i, name in enumerate(AUDIO_FEATURES)}

    def __init__(self, matrix: np.ndarray, row: int) -> None:
        self._matrix = matrix
        self._row = row

    def __getitem__(self, name: str) -> float:
        i = self._SLOT.get(name)
        if i is None:
            raise KeyError(name)
        value = float(self._matrix[self._row, i])
        if math.isnan(value):
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        values = self._matrix[self._row]
        return iter([n for n, v in zip(AUDIO_FEATURES, values, strict=True) if not math.isnan(v)])

    def __len__(self) -> int:
        return int(np.count_nonzero(~np.isnan(self._matrix[self._row])))

    def __repr__(self) -> str:
        return repr(dict(self))


class Catalog:
    """The tracks in import order, with lookup by id."""

    def __init__(self, tracks: Iterable[Track], source: str = "", fingerprint: str = "") -> None:
        self.tracks: list[Track] = list(tracks)
        self.source = source
        self.fingerprint = fingerprint or _fingerprint(self.tracks)
        """Changes whenever the tracks change: the index is rebuilt when it differs."""
        self._by_id = {t.track_id: i for i, t in enumerate(self.tracks)}

    def get(self, track_id: str) -> Track | None:
        i = self._by_id.get(track_id)
        return None if i is None else self.tracks[i]

    def position(self, track_id: str) -> int | None:
        """Row of the track in `tracks` (and in the index matrix)."""
        return self._by_id.get(track_id)

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks)


@dataclass
class ImportReport:
    """What an import read: kept tracks and the bad rows by line number."""

    tracks: list[Track]
    rows: int = 0
    bad_lines: list[int] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def bad(self, line: int, reason: str) -> None:
        self.bad_lines.append(line)
        self.reasons[reason] += 1

    def summary(self) -> str:
        text = f"{len(self.tracks)} tracks from {self.rows} rows"
        if self.bad_lines:
            shown = ", ".join(str(n) for n in self.bad_lines[:20])
            more = f" and {len(self.bad_lines) - 20} more" if len(self.bad_lines) > 20 else ""
            why = "; ".join(f"{r}: {n}" for r, n in self.reasons.most_common())
            text += f"; {len(self.bad_lines)} bad rows skipped (lines {shown}{more}; {why})"
        return text


def tag_words(text: str) -> list[str]:
    """Descriptive words of a playlist name: stopwords and single letters dropped."""
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 1]


def parse_year(text: str) -> int | None:
    match = re.match(r"\s*(\d{4})", text or "")
    if not match:
        return None
    year = int(match.group(1))
    return year if 1900 <= year <= 2100 else None


def _float(value: str | None) -> float | None:
    """A number, None when empty; ValueError when there is text that is no number."""
    if value is None or not value.strip():
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    return number


def _fingerprint(tracks: list[Track]) -> str:
    digest = hashlib.sha256()
    for t in tracks:
        digest.update(json.dumps(t.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


# --- CSV sources -------------------------------------------------------------------------------

SPOTIFY_COLUMNS = {"track_id", "track_name", "track_artist", "playlist_name"}
SEED_COLUMNS = {"name", "artist"}


@dataclass(frozen=True)
class SongRow:
    """One valid row of the Spotify songs table (one track in one playlist)."""

    line: int
    track_id: str
    name: str
    artist: str
    album: str
    year: int | None
    popularity: float | None
    playlist_id: str
    playlist_name: str
    genre: str
    subgenre: str
    features: Mapping[str, float]


def read_spotify_rows(path: Path, report: ImportReport) -> list[SongRow]:
    """Valid rows of the Spotify songs table; bad ones are counted in `report`."""
    rows: list[SongRow] = []
    with _open_csv(path) as (reader, bar):
        for line, raw in _complete_rows(reader, bar, report):
            track_id = (raw.get("track_id") or "").strip()
            name = (raw.get("track_name") or "").strip()
            if not track_id or not name:
                report.bad(line, "no track id or name")
                continue
            numbers = _numbers(raw, "track_popularity", line, report)
            if numbers is None:
                continue
            features, popularity = numbers
            rows.append(
                SongRow(
                    line=line,
                    track_id=track_id,
                    name=name,
                    artist=(raw.get("track_artist") or "").strip(),
                    album=(raw.get("track_album_name") or "").strip(),
                    year=parse_year(raw.get("track_album_release_date") or ""),
                    popularity=popularity,
                    playlist_id=(raw.get("playlist_id") or raw.get("playlist_name") or "").strip(),
                    playlist_name=(raw.get("playlist_name") or "").strip(),
                    genre=(raw.get("playlist_genre") or "").strip().lower(),
                    subgenre=(raw.get("playlist_subgenre") or "").strip().lower(),
                    features=features,
                )
            )
    return rows


def tracks_from_rows(
    rows: Iterable[SongRow], tag_playlists: Callable[[str], bool] | None = None
) -> list[Track]:
    """Merge the rows of each track: genres, subgenres and playlist-name words become tags.

    Args:
        rows: rows of the Spotify songs table.
        tag_playlists: when given, only playlists it accepts contribute name words to tags
            (evaluation keeps held-out playlist names out of the songs' tags).
    """
    grouped: dict[str, list[SongRow]] = {}
    for row in rows:
        grouped.setdefault(row.track_id, []).append(row)
    tracks = []
    for track_id, group in grouped.items():
        first = group[0]
        genres = Counter(r.genre for r in group if r.genre)
        subgenres = Counter(r.subgenre for r in group if r.subgenre)
        tags: Counter[str] = Counter()
        for r in group:
            tags.update(w for g in (r.genre, r.subgenre) for w in [g, *words(g)] if g)
            if tag_playlists is None or tag_playlists(r.playlist_id):
                tags.update(set(tag_words(r.playlist_name)))
        tracks.append(
            Track(
                track_id=track_id,
                name=first.name,
                artist=first.artist,
                album=first.album,
                genre=genres.most_common(1)[0][0] if genres else "",
                subgenre=subgenres.most_common(1)[0][0] if subgenres else "",
                tags=tuple(t for t, _ in tags.most_common()),
                year=first.year,
                popularity=first.popularity,
                features=first.features,
            )
        )
    return tracks


def _numbers(
    raw: Mapping[str, str | None], popularity_column: str, line: int, report: ImportReport
) -> tuple[dict[str, float], float | None] | None:
    """A row's audio features and popularity; None, counted in `report` as a bad row, when
    a number column holds text (both CSV schemas validate their numbers so)."""
    try:
        return _features(raw), _float(raw.get(popularity_column))
    except ValueError:
        report.bad(line, "a number column holds text")
        return None


def _features(raw: Mapping[str, str | None]) -> dict[str, float]:
    out = {}
    for name in AUDIO_FEATURES:
        value = _float(raw.get(name))
        if value is not None:
            out[name] = value
    return out


def _split_tags(text: str) -> tuple[str, ...]:
    parts = re.split(r"[;|,]", text or "")
    return tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))


def read_seed_csv(path: Path, report: ImportReport) -> None:
    """The seed schema: track_id,name,artist,spotify_preview_url,tags,genre,year,features..."""
    seen: set[str] = set()
    with _open_csv(path) as (reader, bar):
        for line, raw in _complete_rows(reader, bar, report):
            name = (raw.get("name") or "").strip()
            artist = (raw.get("artist") or "").strip()
            if not name:
                report.bad(line, "no name")
                continue
            track_id = (raw.get("track_id") or "").strip() or (
                "seed:" + hashlib.sha1(f"{name}|{artist}".encode()).hexdigest()[:16]
            )
            if track_id in seen:
                report.bad(line, "duplicate track id")
                continue
            numbers = _numbers(raw, "popularity", line, report)
            if numbers is None:
                continue
            features, popularity = numbers
            seen.add(track_id)
            genre = (raw.get("genre") or "").strip().lower()
            tags = _split_tags(raw.get("tags") or "")
            report.tracks.append(
                Track(
                    track_id=track_id,
                    name=name,
                    artist=artist,
                    album=(raw.get("album") or "").strip(),
                    genre=genre,
                    subgenre=(raw.get("subgenre") or "").strip().lower(),
                    tags=tuple(dict.fromkeys([*([genre] if genre else []), *tags])),
                    year=parse_year(raw.get("year") or ""),
                    popularity=popularity,
                    preview_url=(
                        raw.get("spotify_preview_url") or raw.get("preview_url") or ""
                    ).strip(),
                    path=(raw.get("path") or "").strip(),
                    features=features,
                )
            )


def _complete_rows(
    reader: csv.DictReader[str], bar: Any, report: ImportReport
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of every row with the header's number of fields; the others are
    counted in `report` as bad."""
    for raw in reader:
        bar.update(1)
        report.rows += 1
        if None in raw or any(v is None for v in raw.values()):
            report.bad(reader.line_num, "wrong number of fields")
            continue
        yield reader.line_num, raw


class _open_csv:
    """A DictReader with a progress bar; unreadable files become a UserError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> tuple[csv.DictReader[str], tqdm[Any]]:
        from tqdm import tqdm  # only imports need it; the daemon loading a catalog does not

        try:
            self.file = self.path.open(newline="", encoding="utf-8-sig", errors="replace")
        except OSError as err:
            raise UserError(f"cannot read {self.path}: {err.strerror}") from err
        self.bar = tqdm(desc=f"import {self.path.name}", unit=" rows", leave=False)
        return csv.DictReader(self.file), self.bar

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        self.file.close()


# --- local folder -------------------------------------------------------------------------------


def read_folder(folder: Path, report: ImportReport) -> None:
    """Audio files under `folder` with their tags (mutagen) and the tempo and
    loudness its audio measures (heymusic.music.analysis); the file is the playable source.
    A file whose tags or audio cannot be read is skipped with one line, and the import goes on."""
    import mutagen
    from tqdm import tqdm

    from heymusic.music.analysis import analyse_files

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    tagged: list[tuple[int, Path, Any]] = []
    for n, path in enumerate(tqdm(files, desc=f"import {folder.name}", unit=" files"), 1):
        report.rows += 1
        try:
            audio = mutagen.File(path, easy=True)
        except Exception as err:  # mutagen raises many types for broken files
            _LOGGER.debug("unreadable %s: %s", path, err)
            audio = None
        if audio is None:
            _skip(report, n, path, "not a readable audio file")
        else:
            tagged.append((n, path, audio))
    measured = analyse_files([path for _, path, _ in tagged])
    for n, path, audio in tagged:
        analysis = measured.get(path)
        if analysis is not None and analysis.problem:
            _skip(report, n, path, analysis.problem)
            continue

        def tag(key: str, audio: Any = audio) -> str:
            values = audio.tags.get(key) if audio.tags else None
            return str(values[0]).strip() if values else ""

        genre = tag("genre").lower()
        features = dict(analysis.features) if analysis is not None else {}
        length = float(getattr(audio.info, "length", 0.0) or 0.0)
        if length > 0:
            features["duration_ms"] = length * 1000.0
        report.tracks.append(
            Track(
                track_id="local:" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16],
                name=tag("title") or path.stem,
                artist=tag("artist") or tag("albumartist"),
                album=tag("album"),
                genre=genre,
                tags=tuple(dict.fromkeys([genre, *words(genre)])) if genre else (),
                year=parse_year(tag("date") or tag("originaldate")),
                path=str(path.resolve()),
                features=features,
            )
        )


def _skip(report: ImportReport, n: int, path: Path, why: str) -> None:
    """One line for a file the import leaves out; it is counted in the import's summary too."""
    _LOGGER.warning("skipped %s: %s", path, why)
    report.bad(n, f"{why} ({path.name})")


# --- import and storage -------------------------------------------------------------------------


def read_source(source: str | Path) -> ImportReport:
    """Read any supported source into tracks, counting bad rows; nothing is written."""
    path = Path(source).expanduser()
    report = ImportReport(tracks=[])
    if path.is_dir():
        read_folder(path, report)
        return report
    if not path.is_file():
        raise UserError(f"{path}: no such file or folder; give a CSV file or a music folder")
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
            header = {h.strip() for h in next(csv.reader(f), [])}
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from err
    if SPOTIFY_COLUMNS <= header:
        report.tracks = tracks_from_rows(read_spotify_rows(path, report))
    elif SEED_COLUMNS <= header:
        read_seed_csv(path, report)
    else:
        raise UserError(
            f"{path}: unknown CSV columns; expected the Spotify songs table "
            f"({', '.join(sorted(SPOTIFY_COLUMNS))}) or the seed schema (track_id,name,artist,...)"
        )
    return report


def catalog_path() -> Path:
    return state_dir() / CATALOG_FILE


def save_catalog(catalog: Catalog, path: Path | None = None) -> Path:
    """Write the catalog atomically: a temp file in the same dir, then os.replace.

    Format: a header line (version, source, fingerprint, columns), then one JSON
    array per track, so loading never holds the whole parsed file at once.
    """
    path = path or catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "version": FORMAT_VERSION,
        "source": catalog.source,
        "fingerprint": catalog.fingerprint,
        "columns": COLUMNS,
        "features": AUDIO_FEATURES,
    }
    with atomic_open(path) as f:
        f.write(json.dumps(header) + "\n")
        for t in catalog.tracks:
            row = [getattr(t, c) for c in COLUMNS[:-1]]
            row[COLUMNS.index("tags")] = list(t.tags)
            row.append([t.features.get(name) for name in AUDIO_FEATURES])
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def import_catalog(source: str | Path) -> tuple[Catalog, ImportReport]:
    """Read `source` and replace the stored catalog; the old one stays if nothing is usable."""
    report = read_source(source)
    if not report.tracks:
        raise UserError(
            f"{source}: no usable tracks ({report.summary()}); the old catalog is unchanged"
        )
    catalog = Catalog(report.tracks, source=str(source))
    save_catalog(catalog)
    _LOGGER.info("catalog: %s", report.summary())
    return catalog, report


class OlderCatalog(UserError):
    """A stored catalog in another format; `source` is what it was imported from."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source


def read_catalog(path: Path | None = None) -> Catalog | None:
    """The stored catalog, or None when there is none yet."""
    path = path or catalog_path()
    if not path.exists():
        return None
    tracks = []
    shared: dict[Any, Any] = {}  # one object per distinct year / popularity
    matrix = np.zeros((0, len(AUDIO_FEATURES)))  # filled once every row is read
    try:
        with path.open(encoding="utf-8") as f:
            header = json.loads(f.readline())
            if header.get("version") != FORMAT_VERSION or tuple(header["columns"]) != COLUMNS:
                raise OlderCatalog(
                    f"{path}: catalog written by another heymusic version (format "
                    f"{header.get('version')}); run `heymusic catalog import PATH`",
                    str(header.get("source", "")),
                )
            if tuple(header["features"]) != AUDIO_FEATURES:
                raise ValueError("unknown audio feature columns")
            flat = array("d")  # features of all songs, row after row; NaN = absent
            for i, line in enumerate(f):
                row = json.loads(line)
                flat.extend(math.nan if v is None else v for v in row[-1])
                values = dict(zip(COLUMNS[:-1], row, strict=False))
                tracks.append(
                    Track(
                        **{
                            **values,
                            "artist": sys.intern(values["artist"]),
                            "genre": sys.intern(values["genre"]),
                            "subgenre": sys.intern(values["subgenre"]),
                            "tags": tuple(sys.intern(t) for t in values["tags"]),
                            "year": shared.setdefault(values["year"], values["year"]),
                            "popularity": shared.setdefault(
                                values["popularity"], values["popularity"]
                            ),
                            "features": FeatureRow(matrix, i),
                        }
                    )
                )
        matrix.resize((len(tracks), len(AUDIO_FEATURES)), refcheck=False)
        matrix[:] = np.frombuffer(flat, dtype=np.float64).reshape(matrix.shape)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise UserError(
            f"{path}: catalog unreadable ({err}); run `heymusic catalog import PATH`"
        ) from err
    return Catalog(tracks, source=header.get("source", ""), fingerprint=header["fingerprint"])


def load_catalog(settings: Settings) -> Catalog:
    """The stored catalog; on first use, import settings.catalog.source.

    A catalog stored by another version is imported again from the file it came from
    (nothing is lost: it was made from that file); if that file is gone it stays untouched.
    """
    try:
        catalog = read_catalog()
    except OlderCatalog as err:
        if not err.source or not Path(err.source).exists():
            raise
        _LOGGER.info("catalog format changed: importing %s again", err.source)
        return import_catalog(err.source)[0]
    if catalog is not None:
        return catalog
    source = settings.catalog.source
    if not source:
        raise UserError(
            "no catalog yet and [catalog] source is empty; run `heymusic catalog import PATH`"
        )
    _LOGGER.info("no catalog yet: importing %s", source)
    catalog, _ = import_catalog(source)
    return catalog
