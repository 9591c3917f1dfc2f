"""/metrics, /healthz and /readyz of workers, beat and `metrics serve`: a real HTTP server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, make_wsgi_app
from sqlalchemy import Engine

from harvester.db.engine import make_engine
from harvester.health_files import HealthFiles
from harvester.probes import (
    Readiness,
    database_check,
    fleet_readiness,
    probe_app,
    redis_check,
    start_probe_server,
)
from harvester.settings import load_settings
from tests.conftest import REDIS_URL, _free_port, http_get

# Nothing listens on port 1 of loopback: connections are refused at once.
NOWHERE_PG = "postgresql://nobody@127.0.0.1:1/nothing"
NOWHERE_REDIS = "redis://127.0.0.1:1/0"


def get(port: int, path: str) -> tuple[int, str]:
    return http_get(f"http://127.0.0.1:{port}{path}")


def serve(readiness: Readiness) -> tuple[int, Any]:
    registry = CollectorRegistry()
    Counter("harvester_probe_test", "A counter.", registry=registry).inc()
    port = _free_port()
    server, _ = start_probe_server(
        probe_app(make_wsgi_app(registry), readiness), port=port, addr="127.0.0.1"
    )
    return port, server


def test_metrics_only_on_metrics_404_elsewhere_and_the_probes() -> None:
    broken = Readiness({"database": lambda: None, "broker": lambda: "cannot reach the broker"})
    port, server = serve(broken)
    try:
        code, body = get(port, "/metrics")
        assert code == 200
        assert "harvester_probe_test_total 1.0" in body
        for path in ("/", "/healthzz", "/metrics/x", "/anything"):
            code, body = get(port, path)
            assert code == 404, path
            assert "harvester_probe_test" not in body
        assert get(port, "/healthz") == (200, json.dumps({"status": "alive"}) + "\n")
        code, body = get(port, "/readyz")
        assert code == 503
        assert json.loads(body) == {
            "status": "not ready",
            "checks": {"database": "ok", "broker": "cannot reach the broker"},
        }
    finally:
        server.shutdown()
        server.server_close()


def test_database_check_reaches_the_database_and_compares_the_schema(
    pg_engine: Engine, tmp_path: Path
) -> None:
    assert database_check(pg_engine)() is None
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    problem = database_check(empty, dispose=True)()
    assert problem is not None
    assert problem.startswith("the database schema is at nothing, this version needs ")
    unreachable = database_check(make_engine(NOWHERE_PG), dispose=True)()
    assert unreachable == "cannot reach the database (OperationalError)"
    assert redis_check(REDIS_URL)() is None
    assert (
        redis_check(NOWHERE_REDIS, what="the broker")()
        == "cannot reach the broker (ConnectionError)"
    )


def test_fleet_readiness_needs_the_loop_alive_and_the_worker_started(
    pg_engine: Engine, tmp_path: Path
) -> None:
    settings = load_settings(
        {
            "HARVESTER_DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            "HARVESTER_BROKER_URL": REDIS_URL,
            "HARVESTER_REDIS_URL": NOWHERE_REDIS,
        }
    )
    files = HealthFiles(tmp_path / "health")
    readiness = fleet_readiness(settings, health=files)
    assert readiness.alive() is not None  # no heartbeat yet
    report = readiness.report()
    assert report["database"] == "ok"
    assert report["broker"] == "ok"
    assert report["redis"] == "cannot reach Redis (ConnectionError)"
    assert report["started"].endswith("ready does not exist")
    files.mark_ready()
    assert readiness.alive() is None
    assert readiness.report()["started"] == "ok"
