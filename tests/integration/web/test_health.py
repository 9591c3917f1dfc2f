"""The console's probes: open to anyone, /readyz checks the database and its schema."""

from __future__ import annotations

from sqlalchemy import text

from tests.integration.web.conftest import Web


def test_healthz_and_readyz_answer_without_login(web: Web) -> None:
    alive = web.client.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    ready = web.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert ready.headers["cache-control"] == "no-store"


def test_readyz_says_when_the_schema_is_behind(web: Web) -> None:
    with web.state.engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        ready = web.client.get("/readyz")
    finally:
        with web.state.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"].startswith("the database schema is at older, this version")
    assert "harvester db upgrade" in body["checks"]["database"]
    # Alive all the same: a database problem must not make the orchestrator restart it.
    assert web.client.get("/healthz").status_code == 200
