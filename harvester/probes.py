"""Health endpoints: ``/healthz`` (the process is alive) and ``/readyz`` (it can do its work).

Served next to ``/metrics`` by workers, beat and ``metrics serve`` (:func:`probe_app`), and by
the web console. Ready means the database answers at the schema this version needs and Redis
(broker and state) answers; alive means only that the process (and, for a worker with
``HARVESTER_HEALTH_DIR``, its event loop) is turning, so a database outage makes pods unready
but never restarts them all at once.

Answers are JSON with one short sentence per failed check: no URL, host or exception text,
because the console's endpoints are as public as its login page.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from redis import Redis, RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from harvester.db.engine import make_engine
from harvester.health_files import HEARTBEAT_MAX_AGE, HealthFiles
from harvester.health_files import check as check_file
from harvester.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "Check",
    "Readiness",
    "database_check",
    "fleet_readiness",
    "health_answer",
    "probe_app",
    "redis_check",
    "start_probe_server",
]

# A check answers None when fine, else one sentence saying what is wrong.
Check = Callable[[], str | None]
# Probes come every few seconds: a dead dependency must not hold them past their timeout.
CHECK_TIMEOUT_SECONDS = 2.0


def database_check(engine: Engine, *, dispose: bool = False) -> Check:
    """The database answers, at the schema revision this version of the code needs.

    ``dispose``: close the engine's connections after each check, for a process that forks
    (a Celery master): a child must never inherit, and share, the master's socket.
    """
    # Alembic is loaded when a check is built, not when the CLI imports this module.
    from harvester.db.migrate import current_revision, head_revision  # noqa: PLC0415

    head: list[str | None] = []

    def check() -> str | None:
        try:
            current = current_revision(engine)
        except SQLAlchemyError as exc:
            # The exception's text may hold the database URL: its type only.
            return f"cannot reach the database ({type(exc).__name__})"
        finally:
            if dispose:
                engine.dispose()
        if not head:
            head.append(head_revision(engine))
        if current != head[0]:
            return (
                f"the database schema is at {current or 'nothing'}, this version needs "
                f"{head[0]}: run `harvester db upgrade`"
            )
        return None

    return check


def redis_check(url: str, *, what: str = "Redis") -> Check:
    client = Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )

    def check() -> str | None:
        try:
            client.ping()
        except (RedisError, OSError) as exc:
            return f"cannot reach {what} ({type(exc).__name__})"
        return None

    return check


@dataclass(frozen=True)
class Readiness:
    """Named checks, all run for each ``/readyz``; ``alive`` for ``/healthz``."""

    checks: Mapping[str, Check] = field(default_factory=dict)
    alive: Check = field(default=lambda: None)

    def report(self) -> dict[str, str]:
        """name → "ok" or what is wrong."""
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # noqa: BLE001  a failed check is an answer, not a crash
                problem = f"check failed ({type(exc).__name__})"
            results[name] = problem or "ok"
        return results


def fleet_readiness(settings: Settings, *, health: HealthFiles | None) -> Readiness:
    """The probes of a worker or beat: database, broker and state Redis; with health files,
    alive while the heartbeat is fresh and ready only between start-up and shutdown."""
    checks: dict[str, Check] = {
        "database": database_check(make_engine(settings.effective_database_url), dispose=True),
        "broker": redis_check(settings.broker_url, what="the broker"),
    }
    if settings.redis_url != settings.broker_url:
        checks["redis"] = redis_check(settings.redis_url)
    if health is None:
        return Readiness(checks)
    files = health
    checks["started"] = lambda: check_file(files.ready, max_age=None)
    return Readiness(checks, alive=lambda: check_file(files.heartbeat, max_age=HEARTBEAT_MAX_AGE))


def _json(start_response: StartResponse, status: str, body: Mapping[str, Any]) -> list[bytes]:
    data = (json.dumps(body, sort_keys=True) + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]


def health_answer(readiness: Readiness, path: str) -> tuple[int, dict[str, Any]] | None:
    """The status code and body for ``/healthz`` or ``/readyz``; None for any other path."""
    if path == "/healthz":
        problem = readiness.alive()
        if problem is None:
            return 200, {"status": "alive"}
        return 503, {"status": "not alive", "problem": problem}
    if path == "/readyz":
        checks = readiness.report()
        ready = all(result == "ok" for result in checks.values())
        return (200 if ready else 503), {
            "status": "ready" if ready else "not ready",
            "checks": checks,
        }
    return None


_REASONS = {
    200: "200 OK",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    503: "503 Service Unavailable",
}


def probe_app(metrics: WSGIApplication, readiness: Readiness) -> WSGIApplication:
    """``/metrics`` from ``metrics`` (prometheus_client's app), the probes, 404 elsewhere."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        answer = health_answer(readiness, path)
        if answer is None:
            return _json(
                start_response,
                _REASONS[404],
                {"detail": "no such path; try /metrics, /healthz or /readyz"},
            )
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, _REASONS[405], {"detail": "use GET"})
        code, body = answer
        return _json(start_response, _REASONS[code], body)

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log: probes every few seconds would drown the process's own lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # One thread per request, so a slow scrape never holds a probe.
    daemon_threads = True


def start_probe_server(
    app: WSGIApplication, *, port: int, addr: str
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``app`` on ``addr:port`` from a daemon thread; returns the server and thread."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    class Server(_ThreadingServer):
        address_family = family

    server = make_server(addr, port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="probe-server")
    thread.start()
    return server, thread
