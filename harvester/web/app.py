"""The app factory: ``create_app(settings)`` builds one app and its engine; nothing at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from harvester import __version__
from harvester.aws.session import AwsSessions
from harvester.clock import Clock, utcnow
from harvester.inventory.service import NotFound
from harvester.settings import Settings
from harvester.web import api, health, pages
from harvester.web.auth import Forbidden, LoginRequired
from harvester.web.security import SecurityHeadersMiddleware, SessionMiddleware
from harvester.web.state import WebOptions, WebState
from harvester.web.templating import STATIC_DIR

__all__ = ["create_app"]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, code: int, title: str, message: str) -> Response:
    return pages.render(
        request, "error.html", {"title": title, "message": message}, status_code=code
    )


async def _login_required(request: Request, _: Exception) -> Response:
    return RedirectResponse(pages.login_url(request), status_code=status.HTTP_303_SEE_OTHER)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    if _is_api(request):
        return JSONResponse({"detail": exc.message}, status_code=status.HTTP_403_FORBIDDEN)
    return pages.forbidden_page(request, exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)
    return _error_page(request, status.HTTP_404_NOT_FOUND, "Not found", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _is_api(request) or request.url.path.startswith("/static/"):
        return await http_exception_handler(request, exc)
    titles = {404: "Not found", 405: "Not allowed", 401: "Log in first"}
    response = _error_page(
        request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_api(request):
        return _error_page(request, status.HTTP_404_NOT_FOUND, "Not found", "no such page")
    # FastAPI's default echoes each rejected value ("input"): never for a secret access key.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    options: WebOptions | None = None,
    aws_sessions: AwsSessions | None = None,
) -> FastAPI:
    """Build the console: pages, ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``), assets.

    The engine is made here, once; the schema is checked when the app starts (the embedded
    SQLite database is migrated, a PostgreSQL one must be upgraded with ``harvester db
    upgrade``).
    """
    state = WebState(
        settings, clock=clock, options=options or WebOptions(), aws_sessions=aws_sessions
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.ensure_schema)
        yield
        state.close()

    app = FastAPI(
        title="audit-harvester",
        version=__version__,
        description=(
            "The console's JSON API. Reads need a viewer token (or --public-read); writes "
            "need an admin: `Authorization: Bearer <token>` from `harvester users token`."
        ),
        openapi_url="/api/v1/openapi.json",
        # Swagger UI and ReDoc load scripts from a CDN and run inline code: the CSP forbids both.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.harvester = state
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(SessionMiddleware, codec=state.codec, clock=clock, cookie=state.cookie)
    if state.options.allowed_hosts is not None:
        app.add_middleware(
            TrustedHostMiddleware,
            allowed_hosts=list(state.options.allowed_hosts),
            www_redirect=False,
        )
    # Added last, so outermost: error responses get the headers too.
    app.add_middleware(SecurityHeadersMiddleware, hsts=state.options.secure_cookies)
    if state.options.forwarded_allow_ips:
        # Outermost of all: everything inside sees the client the trusted proxy names.
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=list(state.options.forwarded_allow_ips)
        )
    return app
