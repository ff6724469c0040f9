"""Listening history in SQLite: one file in the state dir, WAL, schema versioned by
`PRAGMA user_version`, written by its own thread so the audio loop never waits on a disk.

Only song ids, kinds of events, seconds and the profile are stored: never what was said.
A locked, corrupt or full database is told in one line (`on_problem`); events that could
not be written wait in memory (bounded) and are retried, and a corrupt file is moved
aside, never deleted.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from heymusic.config import state_dir

_LOGGER = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite3"
HOUSEHOLD = "household"
"""The profile used whenever nobody is identified."""
KINDS = ("play", "finish", "skip", "stop", "replay", "more_like_this", "like", "dislike")
"""play: a song started; finish/skip/stop: how it ended (`seconds` listened); replay: it was
asked for again; more_like_this, like, dislike: what was said about it."""

#: Migration i takes a database from user_version i to i + 1; applied in order, each in
#: one transaction. Never edit a shipped step: append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        profile TEXT NOT NULL,
        track_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        seconds REAL
    );
    """,
    """
    ALTER TABLE events ADD COLUMN room TEXT;
    CREATE INDEX events_by_profile ON events (profile, at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
MAX_PENDING = 10_000
"""Events kept in memory while the database cannot take them (oldest dropped beyond)."""
RETRY_SECONDS = 5.0
BUSY_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class HistoryEvent:
    track_id: str
    kind: str
    profile: str = HOUSEHOLD
    seconds: float | None = None
    """finish/skip/stop: how long it was listened to."""
    at: float = 0.0
    """Unix time; 0 = when recorded."""
    room: str | None = None
    """Where it played (rooms do not exist yet: always None)."""


def history_path() -> Path:
    return state_dir() / HISTORY_FILE


class HistoryError(Exception):
    """The database cannot be used; the message says why and what to do."""


def _connect(path: Path, max_bytes: int | None = None) -> sqlite3.Connection:
    """A connection with the schema migrated to SCHEMA_VERSION (WAL, NORMAL sync: a killed
    process loses nothing committed), growing to at most `max_bytes`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{path} was written by a newer heymusic (schema {version} > {SCHEMA_VERSION}); "
                "upgrade heymusic"
            )
        for step in range(version, SCHEMA_VERSION):
            with conn:  # one transaction per step: a crash leaves the old version whole
                conn.executescript(f"BEGIN; {MIGRATIONS[step]} PRAGMA user_version = {step + 1};")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        if max_bytes is not None:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _is_corrupt(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "quick_check" in str(err)


def move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its WAL) out of the way, keeping it for rescue."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    return aside


def open_history(
    path: Path, on_problem: Callable[[str], None] | None = None, max_bytes: int | None = None
) -> sqlite3.Connection:
    """`_connect`, but a corrupt file is moved aside (told in one line) and a new one started.

    Raises:
        HistoryError: the file cannot be opened for another reason (permissions, locked, full).
    """
    try:
        return _connect(path, max_bytes)
    except sqlite3.DatabaseError as err:
        if not _is_corrupt(err):
            raise HistoryError(f"cannot open the listening history {path}: {err}") from err
        aside = move_aside(path)
        line = f"the listening history {path} was corrupt ({err}): moved aside to {aside}; a new one starts"
        _LOGGER.warning("%s", line)
        if on_problem is not None:
            on_problem(line)
    try:
        return _connect(path, max_bytes)
    except sqlite3.Error as err:
        raise HistoryError(f"cannot open the listening history {path}: {err}") from err


def _describe(err: sqlite3.Error, path: Path) -> str:
    code = getattr(err, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return (
            f"the listening history {path} is full (disk or size limit): new plays wait in memory "
            "until there is room; free some disk space"
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return f"the listening history {path} is locked by another program: retrying"
    return f"cannot write the listening history {path} ({err}): retrying"


class HistoryStore:
    """Takes events from any thread (`record` never blocks) and writes them in order.

    Args:
        path: the database file (default: history.sqlite3 in the state dir).
        on_problem: hears one line per new kind of problem (the daemon speaks and logs it).
        max_bytes: the file grows no larger (`[history] max_megabytes`); then it is "full".
        retry_seconds: how long events wait before the next try when a write failed.
    """

    def __init__(
        self,
        path: Path | None = None,
        on_problem: Callable[[str], None] | None = None,
        max_bytes: int | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.path = path or history_path()
        self._on_problem = on_problem
        self._max_bytes = max_bytes
        self._retry_seconds = retry_seconds
        self._incoming: queue.Queue[HistoryEvent | threading.Event | None] = queue.Queue()
        self._pending: deque[HistoryEvent] = deque(maxlen=MAX_PENDING)
        self._last_problem = ""
        self.write_ms: deque[float] = deque(maxlen=1000)
        """How long recent writes took (insert + commit), for the bench."""
        self._listeners: list[Callable[[HistoryEvent], None]] = []
        self._thread = threading.Thread(target=self._run, name="heymusic-history", daemon=True)
        self._thread.start()

    def subscribe(self, listener: Callable[[HistoryEvent], None]) -> None:
        """`listener` hears each event as it is recorded (the taste profile follows them)."""
        self._listeners.append(listener)

    def record(self, event: HistoryEvent) -> None:
        if not event.at:
            event = HistoryEvent(**{**event.__dict__, "at": time.time()})
        for listener in self._listeners:
            listener(event)
        self._incoming.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every event recorded so far was tried once (tests, bench, shutdown)."""
        done = threading.Event()
        self._incoming.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._incoming.put(None)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        """Events waiting in memory for the database to take them."""
        return len(self._pending)

    # --- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        running = True
        while running:
            wait = self._retry_seconds if self._pending else None
            markers: list[threading.Event] = []
            try:
                batch = [self._incoming.get(timeout=wait)]
            except queue.Empty:
                batch = []  # retry time: write what waits
            while True:
                try:
                    batch.append(self._incoming.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                if item is None:
                    running = False
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    self._pending.append(item)
            if self._pending:
                conn = self._write(conn)
            for marker in markers:
                marker.set()
        if conn is not None:
            conn.close()

    def _write(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        batch = list(self._pending)
        try:
            if conn is None:
                conn = open_history(self.path, self._problem, self._max_bytes)
            started = time.perf_counter()
            with conn:
                conn.executemany(
                    "INSERT INTO events (at, profile, room, track_id, kind, seconds) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.at, e.profile, e.room, e.track_id, e.kind, e.seconds) for e in batch],
                )
            self.write_ms.append((time.perf_counter() - started) * 1000.0)
        except (sqlite3.Error, HistoryError) as err:
            self._problem(str(err) if isinstance(err, HistoryError) else _describe(err, self.path))
            if conn is not None and isinstance(err, sqlite3.DatabaseError) and _is_corrupt(err):
                conn.close()
                conn = None  # reopened next time: open_history moves the file aside
            return conn
        for _ in batch:
            self._pending.popleft()
        if self._last_problem:
            _LOGGER.info("the listening history is written again (%s)", self.path)
            self._last_problem = ""
        return conn

    def _problem(self, line: str) -> None:
        if line == self._last_problem:
            return  # once per problem, not once per retry
        self._last_problem = line
        _LOGGER.warning("%s", line)
        if self._on_problem is not None:
            self._on_problem(line)


@contextmanager
def reading(
    path: Path | None = None, on_problem: Callable[[str], None] | None = None
) -> Iterator[sqlite3.Connection]:
    """A connection for reading and for `forget` (the CLI; the daemon reads once at start).

    Raises:
        HistoryError: it cannot be opened (a corrupt file is moved aside instead).
    """
    with closing(open_history(path or history_path(), on_problem)) as conn:
        yield conn


def read_events(conn: sqlite3.Connection, profile: str | None = None) -> list[HistoryEvent]:
    """Every event, oldest first; one profile's when `profile` is given."""
    sql = "SELECT track_id, kind, profile, seconds, at, room FROM events"
    args: tuple[str, ...] = ()
    if profile is not None:
        sql, args = sql + " WHERE profile = ?", (profile,)
    rows = conn.execute(sql + " ORDER BY at, id", args).fetchall()
    return [HistoryEvent(*row) for row in rows]


def forget(conn: sqlite3.Connection, profile: str | None = None) -> int:
    """Delete the history (one profile's, or all); returns how many events went."""
    with conn:
        if profile is None:
            cur = conn.execute("DELETE FROM events")
        else:
            cur = conn.execute("DELETE FROM events WHERE profile = ?", (profile,))
    conn.execute("VACUUM")  # the deleted rows must not linger in free pages or the WAL
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return cur.rowcount
