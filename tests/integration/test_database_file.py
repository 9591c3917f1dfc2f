"""The embedded SQLite database holds password and token hashes: only its owner may read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from harvester.db.engine import make_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "harvester.db"
    # The usual umask, under which SQLite alone would create a world-readable file.
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            assert _mode(path) == 0o600
            assert _mode(path.with_name("harvester.db-wal")) == 0o600
        engine.dispose()
    finally:
        os.umask(old)
