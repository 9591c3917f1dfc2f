"""The console's probes: ``/healthz`` (it serves) and ``/readyz`` (database, schema, Redis).

Open to anyone, like the login page: they say only "ok" or a short sentence per check,
never a URL, a host or an exception's text (see :mod:`harvester.probes`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from harvester.probes import Check, Readiness, database_check, health_answer, redis_check
from harvester.web.state import web_state

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _readiness(request: Request) -> Readiness:
    """Built on the first probe and kept on the app: one Redis client, one head revision."""
    existing = getattr(request.app.state, "readiness", None)
    if isinstance(existing, Readiness):
        return existing
    state = web_state(request)
    checks: dict[str, Check] = {"database": database_check(state.engine)}
    # The embedded console runs without Redis; it is checked only when one is configured.
    if "redis_url" in state.settings.model_fields_set:
        checks["redis"] = redis_check(state.settings.redis_url)
    readiness = Readiness(checks)
    request.app.state.readiness = readiness
    return readiness


def _answer(request: Request, path: str) -> JSONResponse:
    answer = health_answer(_readiness(request), path)
    assert answer is not None
    code, body = answer
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    return _answer(request, "/healthz")


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    return _answer(request, "/readyz")
