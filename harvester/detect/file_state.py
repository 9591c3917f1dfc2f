"""Detector state in a SQLite file: the embedded default's baselines, kept across runs.

``harvester run --once`` from cron is one process per cycle; with state in memory each run
would start from nothing and the behavioural detectors would never leave their learning
period. ``FileStore`` keeps the same hashes and claims as ``RedisStore`` (same protocol, same
TTL rules) in a SQLite file beside the database, so consecutive runs learn as one fleet does.

Expiry times are wall-clock seconds (``time.time``), not monotonic ones: they must mean the
same thing to the next process. Every call is one transaction (``BEGIN IMMEDIATE``), so two
runs that overlap take turns instead of claiming the same events twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harvester.detect.state import (
    ANONYMOUS,
    CONFIRMED,
    HashRead,
    HashValue,
    HashWrite,
    claims_taken,
)

__all__ = ["FileStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
  key TEXT PRIMARY KEY, expiry REAL NOT NULL, owner TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, expiry REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fields (
  key TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key, name)
) WITHOUT ROWID;
"""

# Expired rows are deleted when the file is opened and then at most this often.
_SWEEP_SECONDS = 3600.0
# Well under SQLite's limit on bound parameters per statement.
_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class FileStore:
    """State in one SQLite file; safe to share between processes that take turns."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Baselines are as sensitive as the logs they summarise (principals, addresses);
        # SQLite gives its journal files the mode of the database file.
        path.touch(mode=0o600, exist_ok=True)
        self.path = path
        self._now = now
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._swept = 0.0
        self._sweep()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _sweep(self) -> None:
        now = self._now()
        if now - self._swept < _SWEEP_SECONDS:
            return
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE expiry <= ?", (now,))
            db.execute(
                "DELETE FROM fields WHERE key IN (SELECT key FROM hashes WHERE expiry <= ?)", (now,)
            )
            db.execute("DELETE FROM hashes WHERE expiry <= ?", (now,))
        self._swept = now

    # --- claims --------------------------------------------------------------------------------

    def _claim(
        self, db: sqlite3.Connection, keys: Sequence[str], ttl: int, owner: str
    ) -> list[bool]:
        now = self._now()
        held: dict[str, tuple[float, str]] = {}
        for part in _chunks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(part))
            for key, expiry, holder in db.execute(
                f"SELECT key, expiry, owner FROM claims WHERE key IN ({marks})",  # noqa: S608
                part,
            ):
                held[key] = (expiry, holder)
        out = claims_taken(keys, held, owner=owner, now=now)
        db.executemany(
            "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
            [(key, now + ttl, owner) for key, taken in zip(keys, out, strict=True) if taken],
        )
        return out

    def _confirm(self, db: sqlite3.Connection, keys: Sequence[str], ttl: int) -> None:
        expiry = self._now() + ttl
        db.executemany(
            "UPDATE claims SET expiry = ?, owner = ? WHERE key = ?",
            [(expiry, CONFIRMED, key) for key in keys],
        )

    def claim(self, keys: Sequence[str], ttl: int, owner: str = ANONYMOUS) -> list[bool]:
        with self._transaction() as db:
            return self._claim(db, keys, ttl, owner)

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        with self._transaction() as db:
            self._confirm(db, keys, ttl)

    def release(self, keys: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM claims WHERE key = ?", [(key,) for key in keys])

    # --- hashes --------------------------------------------------------------------------------

    def _live(self, db: sqlite3.Connection, key: str, now: float) -> bool:
        row = db.execute("SELECT expiry FROM hashes WHERE key = ?", (key,)).fetchone()
        return row is not None and (row[0] is None or row[0] > now)

    def _read(self, db: sqlite3.Connection, reads: Sequence[HashRead]) -> list[HashValue]:
        now = self._now()
        out: list[HashValue] = []
        for read in reads:
            if not self._live(db, read.key, now):
                out.append(HashValue({}, 0))
                continue
            if read.fields is None:
                rows = db.execute("SELECT name, value FROM fields WHERE key = ?", (read.key,))
                values = dict(rows.fetchall())
                out.append(HashValue(values, len(values)))
                continue
            count = db.execute("SELECT COUNT(*) FROM fields WHERE key = ?", (read.key,))
            (size,) = count.fetchone()
            values = {}
            for part in _chunks(read.fields):
                marks = ",".join("?" * len(part))
                values.update(
                    db.execute(
                        f"SELECT name, value FROM fields WHERE key = ? AND name IN ({marks})",  # noqa: S608
                        (read.key, *part),
                    ).fetchall()
                )
            out.append(HashValue(values, int(size)))
        return out

    def _write(self, db: sqlite3.Connection, writes: Sequence[HashWrite]) -> None:
        now = self._now()
        for op in writes:
            row = db.execute("SELECT expiry FROM hashes WHERE key = ?", (op.key,)).fetchone()
            expiry: float | None = None
            if row is not None and row[0] is not None and row[0] <= now:
                db.execute("DELETE FROM fields WHERE key = ?", (op.key,))
            elif row is not None:
                expiry = row[0]
            key = op.key
            db.executemany(
                "INSERT OR REPLACE INTO fields VALUES (?, ?, ?)",
                [(key, name, value) for name, value in op.set.items()],
            )
            db.executemany(
                "INSERT OR IGNORE INTO fields VALUES (?, ?, ?)",
                [(key, name, value) for name, value in op.set_nx.items()],
            )
            db.executemany(
                "INSERT INTO fields VALUES (?, ?, ?) ON CONFLICT (key, name) DO UPDATE SET "
                "value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
                [(key, name, str(amount)) for name, amount in op.incr.items()],
            )
            db.executemany(
                "DELETE FROM fields WHERE key = ? AND name = ?",
                [(key, name) for name in op.delete],
            )
            if op.ttl is not None:
                expiry = now + op.ttl
            if db.execute("SELECT 1 FROM fields WHERE key = ? LIMIT 1", (key,)).fetchone():
                db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?)", (key, expiry))
            else:
                db.execute("DELETE FROM hashes WHERE key = ?", (key,))

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]:
        with self._transaction() as db:
            return self._read(db, reads)

    def write(self, writes: Sequence[HashWrite]) -> None:
        with self._transaction() as db:
            self._write(db, writes)
        self._sweep()

    def claim_and_read(
        self, keys: Sequence[str], ttl: int, reads: Sequence[HashRead], owner: str = ANONYMOUS
    ) -> tuple[list[bool], list[HashValue]]:
        with self._transaction() as db:
            return self._claim(db, keys, ttl, owner), self._read(db, reads)

    def confirm_and_write(self, keys: Sequence[str], ttl: int, writes: Sequence[HashWrite]) -> None:
        with self._transaction() as db:
            self._confirm(db, keys, ttl)
            self._write(db, writes)
        self._sweep()

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        with self._transaction() as db:
            now = self._now()
            return [
                [
                    name
                    for (name,) in db.execute(
                        "SELECT name FROM fields WHERE key = ? LIMIT ?", (key, count)
                    )
                ]
                if self._live(db, key, now)
                else []
                for key in keys
            ]
