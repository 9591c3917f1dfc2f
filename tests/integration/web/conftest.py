"""The console on a per-test SQLite file and on the PostgreSQL test database, seeded alike."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text

from harvester import users
from harvester.settings import load_settings
from harvester.web import WebOptions, create_app
from harvester.web.state import WebState
from tests.conftest import FixedClock
from tests.integration.web.seed import Seeded, seed

with warnings.catch_warnings():
    # starlette asks for its httpx fork (httpx2); the project ships httpx, which still works.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

ADMIN_PASSWORD = "correct horse battery staple"
VIEWER_PASSWORD = "viewer password 1234"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ALL_TABLES = (
    "api_tokens, users, suppressions, incident_anomalies, incidents, anomalies, dead_letters, "
    "processed_objects, cursors, sources, role_configs, access_key_configs, accounts, "
    "notification_attempts, notifications, destinations"
)


@dataclass
class Web:
    """A running app (in-process), its seeded data, and ways to talk to it."""

    client: TestClient
    app: FastAPI
    clock: FixedClock
    data: Seeded
    admin_token: str
    viewer_token: str

    @property
    def state(self) -> WebState:
        state: WebState = self.app.state.harvester
        return state

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer(self.admin_token)

    @property
    def viewer(self) -> dict[str, str]:
        return self.bearer(self.viewer_token)

    def csrf(self, path: str = "/login") -> str:
        response = self.client.get(path)
        match = CSRF.search(response.text)
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
        return self.client.post(
            "/login",
            data={
                "csrf_token": self.csrf(),
                "username": username,
                "password": password,
                "next": "/overview",
            },
            follow_redirects=False,
        )

    def post_form(self, path: str, data: dict[str, str], *, page: str | None = None) -> Any:
        """POST a form the way a browser would: with the CSRF token of the page it is on."""
        token = self.csrf(page or "/overview")
        return self.client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


WebFactory = Callable[..., Web]


@pytest.fixture(params=["sqlite", "postgresql"])
def make_web(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FixedClock
) -> Iterator[WebFactory]:
    """Build the console (options as keywords) on SQLite or PostgreSQL; yields a factory."""
    overrides: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "secret_key": "web-test"}
    engine: Engine | None = None
    if request.param == "postgresql":
        engine = request.getfixturevalue("pg_engine")
        overrides["database_url"] = engine.url.render_as_string(hide_password=False)
    settings = load_settings(environ={}, **overrides)
    clients: list[TestClient] = []

    def factory(**options: Any) -> Web:
        app = create_app(settings, clock=clock, options=WebOptions(**options))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        state: WebState = app.state.harvester
        with state.session() as session:
            data = seed(session, box=state.box, clock=clock)
            admin = users.create_user(
                session, username="admin", password=ADMIN_PASSWORD, role="admin", clock=clock
            )
            viewer = users.create_user(
                session, username="viewer", password=VIEWER_PASSWORD, role="viewer", clock=clock
            )
            admin_token = users.create_token(session, user=admin, name="ci", clock=clock)
            viewer_token = users.create_token(session, user=viewer, name="grafana", clock=clock)
        return Web(client, app, clock, data, admin_token.secret, viewer_token.secret)

    try:
        yield factory
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        if engine is not None:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture
def web(make_web: WebFactory) -> Web:
    return make_web()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every test logs in: at the production cost (0.1 s a hash) the suite would take minutes.
    # Hashes keep their parameters, so verification follows whatever cost a hash was made at;
    # tests/unit/web/test_users.py checks the production cost itself.
    monkeypatch.setattr("harvester.users._SCRYPT_N", 2**10)
