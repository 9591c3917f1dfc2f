"""Browser tests: the console served by uvicorn on a free loopback port, driven by Chromium.

Debian's Chromium (``/usr/bin/chromium``) is used through Playwright's ``executable_path``:
Playwright's own browser downloads are not needed. Screenshots go to
``test-output/screenshots/`` in the repository (gitignored).
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harvester import users
from harvester.settings import load_settings
from harvester.web import WebOptions, create_app
from harvester.web.state import WebState
from tests.conftest import REPO, FixedClock, wait_until
from tests.integration.web.seed import Seeded, seed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-output" / "screenshots"
ADMIN_PASSWORD = "correct horse battery staple"
VIEWER_PASSWORD = "viewer password 1234"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class Console:
    """A console running in this process (so moto's environment reaches it), and its data."""

    url: str
    state: WebState
    clock: FixedClock
    data: Seeded

    def path(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def console(tmp_path: Path, clock: FixedClock) -> Iterator[Console]:
    import uvicorn

    settings = load_settings(environ={}, data_dir=str(tmp_path / "data"), secret_key="e2e")
    # As 'harvester web' on its default address: only loopback Host names are answered.
    options = WebOptions(allowed_hosts=("127.0.0.1", "localhost", "[::1]"))
    app = create_app(settings, clock=clock, options=options)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _answers(url + "/login") or not thread.is_alive(),
            timeout=30,
            what="uvicorn to answer",
        )
        assert thread.is_alive(), "uvicorn stopped at start"
        state: WebState = app.state.harvester
        with state.session() as session:
            data = seed(session, box=state.box, clock=clock)
            users.create_user(
                session, username="admin", password=ADMIN_PASSWORD, role="admin", clock=clock
            )
            users.create_user(
                session, username="viewer", password=VIEWER_PASSWORD, role="viewer", clock=clock
            )
        yield Console(url, state, clock, data)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is missing at {CHROMIUM}: install it with 'apt-get install -y chromium' "
            "to run the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@dataclass
class Browser:
    """One page of a fresh browser context, with what the page reported on its console."""

    page: Any
    console: Console
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        response = self.page.goto(self.console.path(path))
        assert response is not None

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        self.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/overview")

    def assert_clean(self, *expected: str) -> None:
        """No console errors but the ``expected`` ones (a 422 page logs its status)."""
        unexpected = [e for e in self.errors if not any(x in e for x in expected)]
        assert unexpected == []
        self.errors.clear()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, f"{path} looks empty"
        return path


@pytest.fixture
def ui(browser: Any, console: Console) -> Iterator[Browser]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    driver = Browser(page, console)
    # A CSP violation, a missing asset or a script error shows up here.
    page.on("console", lambda m: m.type == "error" and driver.errors.append(m.text))
    page.on("pageerror", lambda e: driver.errors.append(str(e)))
    yield driver
    context.close()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every test logs in: at the production cost (0.1 s a hash) the suite would take minutes.
    # Hashes keep their parameters, so verification follows whatever cost a hash was made at;
    # tests/unit/web/test_users.py checks the production cost itself.
    monkeypatch.setattr("harvester.users._SCRYPT_N", 2**10)
