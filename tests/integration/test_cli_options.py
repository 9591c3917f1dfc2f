"""Small command-line options: db current for scripts, backfill ranges as durations."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from tests.integration.conftest import Cli


def test_db_current_as_json_and_exit_status(cli: Cli) -> None:
    result = cli("db", "current", "--output", "json")
    assert result.code == 0, result.err
    state = orjson.loads(result.out)
    assert state["up_to_date"] is True
    assert state["current"] == state["expected"]
    # Behind: the status says so, for deploy scripts that gate on it.
    set_version = text("UPDATE alembic_version SET version_num = :version")
    with cli.engine.begin() as connection:
        connection.execute(set_version, {"version": "0001"})
    try:
        result = cli("db", "current", "--output", "json")
        assert result.code == 1
        assert orjson.loads(result.out)["up_to_date"] is False
        result = cli("db", "current")
        assert result.code == 1
        assert "database revision 0001, expected" in result.out
    finally:
        with cli.engine.begin() as connection:  # the PostgreSQL database is shared
            connection.execute(set_version, {"version": state["expected"]})


@pytest.mark.parametrize("since", ["6h", "2d", "2026-11-01T00:00Z"])
def test_backfill_since_takes_durations_and_times(cli: Cli, since: str) -> None:
    # The range is read before the source is looked up: an unknown source means --since passed.
    result = cli("backfill", "999999", "--since", since)
    assert result.code == 2
    assert "--since" not in result.err
    assert "999999" in result.err


def test_backfill_since_explains_a_bad_value(cli: Cli) -> None:
    result = cli("backfill", "999999", "--since", "last tuesday")
    assert result.code == 2
    assert "--since" in result.err
    assert "give a duration (30m, 24h, 7d) or a time" in result.err
