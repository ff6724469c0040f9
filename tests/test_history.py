"""The listening history's database: nothing committed is lost to kill -9, a corrupt file is
moved aside, a full or locked one is one line while the caller never waits, the schema
migrates, and `forget` leaves no trace."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from heymusic.history.store import (
    KINDS,
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryEvent,
    HistoryStore,
    forget,
    read_events,
    reading,
)
from tests.conftest import PROJECT_DIR, TEST_SEED

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from heymusic.history.store import HistoryEvent, HistoryStore
    store = HistoryStore(Path(sys.argv[1]))
    n = 0
    while True:
        for _ in range(7):
            store.record(HistoryEvent(f"t{n}", "play", "household", float(n)))
            n += 1
        store.flush()
        print(n, flush=True)  # every event up to n is committed
    """
)


def _random_events(rng: random.Random, n: int) -> list[HistoryEvent]:
    return [
        HistoryEvent(
            f"{rng.getrandbits(64):016x}",
            rng.choice(KINDS),
            rng.choice(["household", "anna", "ben"]),
            rng.choice([None, round(rng.uniform(0, 300), 1)]),
            at=1_700_000_000 + i,
        )
        for i in range(n)
    ]


def test_events_are_kept_in_order_with_profile_and_no_room(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    events = _random_events(random.Random(TEST_SEED), 50)
    store = HistoryStore(path)
    for event in events:
        store.record(event)
    assert store.flush()
    store.close()
    with reading(path) as conn:
        assert read_events(conn) == events
        assert read_events(conn, "anna") == [e for e in events if e.profile == "anna"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_kill_9_mid_writes_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(PROJECT_DIR / "daemon"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout is not None
    committed = 0
    stop_after = random.Random(TEST_SEED).randint(300, 900)
    while committed < stop_after:
        committed = int(proc.stdout.readline())
    proc.kill()  # SIGKILL: no cleanup, possibly mid-transaction
    proc.wait()
    with reading(path) as conn:
        events = read_events(conn)
    assert len(events) >= committed
    assert [e.track_id for e in events] == [f"t{i}" for i in range(len(events))]


def test_a_corrupt_file_is_moved_aside_and_a_new_one_starts(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    store.record(HistoryEvent("old", "like"))
    store.flush()
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(path.read_bytes())
    raw[0:100] = random.Random(TEST_SEED).randbytes(100)  # the header: not a database any more
    path.write_bytes(bytes(raw))

    lines: list[str] = []
    store = HistoryStore(path, on_problem=lines.append)
    store.record(HistoryEvent("new", "play"))
    assert store.flush()
    store.close()
    assert len(lines) == 1 and "corrupt" in lines[0] and "moved aside" in lines[0]
    aside = list(tmp_path.glob("history.sqlite3.corrupt-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [bytes(raw)]
    with reading(path) as conn:
        assert [e.track_id for e in read_events(conn)] == ["new"]


def test_a_full_database_is_one_line_keeps_what_it_has_and_waits(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    lines: list[str] = []
    store = HistoryStore(path, on_problem=lines.append, max_bytes=48 * 1024, retry_seconds=0.2)
    rng = random.Random(TEST_SEED)
    recorded = 0
    while not lines and recorded < 20_000:
        for event in _random_events(rng, 50):
            store.record(event)
        recorded += 50
        store.flush()
    assert len(lines) == 1 and "full" in lines[0], lines
    started = time.perf_counter()
    for event in _random_events(rng, 100):
        store.record(event)  # never waits on the full file
    assert time.perf_counter() - started < 0.1
    store.flush()
    assert store.pending > 0 and len(lines) == 1  # once, not once per retry
    store.close()
    with reading(path) as conn:
        kept = read_events(conn)
    assert 0 < len(kept) < recorded


def test_a_locked_database_is_one_line_then_the_waiting_events_are_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    with reading(path):  # creates the file
        pass
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    lines: list[str] = []
    store = HistoryStore(path, on_problem=lines.append, retry_seconds=0.2)
    started = time.perf_counter()
    store.record(HistoryEvent("while-locked", "finish", seconds=200.0))
    assert time.perf_counter() - started < 0.05
    store.flush()
    assert len(lines) == 1 and "locked" in lines[0]
    assert store.pending == 1
    holder.execute("COMMIT")
    holder.close()
    deadline = time.monotonic() + 10
    while store.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    store.close()
    with reading(path) as conn:
        assert [e.track_id for e in read_events(conn)] == ["while-locked"]


def test_an_old_schema_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        conn.execute(
            "INSERT INTO events (at, profile, track_id, kind, seconds) VALUES (5, 'ben', 'x', "
            "'skip', 12.5)"
        )
    conn.close()
    with reading(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert read_events(conn) == [HistoryEvent("x", "skip", "ben", 12.5, 5.0, None)]


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    from heymusic.history.store import HistoryError

    with pytest.raises(HistoryError, match="newer heymusic"), reading(path):
        pass


def test_forget_leaves_no_trace_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    events = _random_events(random.Random(TEST_SEED + 1), 200)
    store = HistoryStore(path)
    for event in events:
        store.record(event)
    store.flush()
    store.close()
    with reading(path) as conn:
        assert forget(conn, "anna") == sum(e.profile == "anna" for e in events)
        assert {e.profile for e in read_events(conn)} <= {"household", "ben"}
        assert forget(conn) == sum(e.profile != "anna" for e in events)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("history.sqlite3*"))
    assert not any(e.track_id.encode() in blob for e in events)
