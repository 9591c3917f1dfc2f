"""What the web app builds once: database engine, secret box, cookie signer, AWS sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from fastapi import Request
from redis import Redis
from sqlalchemy.orm import Session

from harvester.aws.session import AwsSessions, SessionFactory
from harvester.cli.context import AppContext
from harvester.clock import Clock
from harvester.crypto import SecretBox, load_secret_key
from harvester.db.engine import session_factory
from harvester.settings import Settings
from harvester.web.security import (
    CookieSettings,
    SessionCodec,
    cookie_settings,
    derive_key,
)
from harvester.web.templating import build_templates
from harvester.web.throttle import FailureStore, LoginThrottle, MemoryFailures, RedisFailures

__all__ = ["WebOptions", "WebState", "web_state"]


@dataclass(frozen=True)
class WebOptions:
    """How the console is exposed.

    ``public_read``: pages and GET endpoints without login (writes still need an admin).
    ``secure_cookies``: mark the session cookie Secure (and send HSTS); for HTTPS.
    ``allowed_hosts``: the Host headers answered (None: any). A console on loopback names
    its loopback hosts, so a web page that rebinds its DNS name to 127.0.0.1 gets nothing.
    ``forwarded_allow_ips``: the proxies whose X-Forwarded-For/-Proto are believed (None:
    nobody's), so the login throttle counts the real client behind a TLS proxy.
    """

    public_read: bool = False
    secure_cookies: bool = False
    session_max_age: timedelta = timedelta(hours=12)
    allowed_hosts: tuple[str, ...] | None = None
    forwarded_allow_ips: tuple[str, ...] | None = None


class WebState:
    """Per-process state of one app; made by :func:`harvester.web.create_app`, never at import."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        options: WebOptions,
        aws_sessions: AwsSessions | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.options = options
        self.context = AppContext(settings=settings, clock=clock)
        self.engine = self.context.engine
        self._sessions = session_factory(self.engine)
        secret = load_secret_key(settings)
        self.box = SecretBox.from_keys(secret)
        self.codec = SessionCodec(
            derive_key(secret, "web-session/v1"), max_age=options.session_max_age
        )
        self.cookie: CookieSettings = cookie_settings(secure=options.secure_cookies)
        self.throttle = LoginThrottle(clock, failure_store(settings))
        self.templates = build_templates()
        self._aws = aws_sessions

    def aws(self) -> AwsSessions:
        # Made on first use: most requests never talk to AWS, and boto3 is slow to set up.
        if self._aws is None:
            self._aws = SessionFactory()
        return self._aws

    def ensure_schema(self) -> None:
        self.context.ensure_schema()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session


# Failures are forgotten an hour after the last one: longer than the longest delay, so a
# guesser who keeps going never starts over.
THROTTLE_WINDOW = timedelta(hours=1)


def failure_store(settings: Settings) -> FailureStore:
    """Redis when HARVESTER_REDIS_URL is set (all console processes share the counts)."""
    if "redis_url" in settings.model_fields_set:
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        return RedisFailures(redis, window=THROTTLE_WINDOW)
    return MemoryFailures(window=THROTTLE_WINDOW)


def web_state(request: Request) -> WebState:
    return cast(WebState, request.app.state.harvester)
