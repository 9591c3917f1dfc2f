"""Signed session cookies, CSRF tokens and security headers.

The cookie is signed by itsdangerous (as Starlette's own sessions are) under a key derived
from the at-rest secret key (``HMAC(at-rest key, purpose)``), so rotating that key also logs
everyone out, and the at-rest key itself never signs anything a browser holds. A signed
cookie alone cannot be taken back, so it also carries the user's session generation, checked
against the database on every request: logout, disable and password change raise it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.cookies import SimpleCookie

from itsdangerous import BadData, Signer, URLSafeSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harvester.clock import Clock

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SecurityHeadersMiddleware",
    "SessionCodec",
    "SessionData",
    "SessionHolder",
    "SessionMiddleware",
    "derive_key",
]

# No inline script or style anywhere: templates use classes and one stylesheet, charts are
# inline SVG with presentation attributes, which CSP does not treat as inline style.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)

SESSION_SCOPE_KEY = "harvester.session"


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, derived from the at-rest secret with HMAC-SHA256."""
    return hmac.new(secret.encode(), f"audit-harvester/{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class SessionData:
    """What the cookie carries: a random nonce (the CSRF secret), who is logged in, a flash.

    ``generation`` is the user's session generation when they logged in; the session ends
    when the stored one has moved on.
    """

    nonce: str
    expires: int
    user_id: int | None = None
    generation: int | None = None
    flash: str | None = None

    @classmethod
    def new(cls, now: datetime, max_age: timedelta) -> SessionData:
        return cls(nonce=secrets.token_urlsafe(24), expires=int((now + max_age).timestamp()))


class SessionCodec:
    """Signs and checks session cookies and derives the per-session CSRF token."""

    def __init__(self, key: bytes, *, max_age: timedelta = timedelta(hours=12)) -> None:
        # SHA-256 rather than itsdangerous's default SHA-1, as the hand-written codec had.
        self._cookies = URLSafeSerializer(
            key, salt="session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._csrf = Signer(key, salt="csrf", digest_method=hashlib.sha256)
        self.max_age = max_age

    def dumps(self, data: SessionData) -> str:
        body = {
            "n": data.nonce,
            "e": data.expires,
            "u": data.user_id,
            "g": data.generation,
            "m": data.flash,
        }
        return self._cookies.dumps(body)

    def loads(self, cookie: str, *, now: datetime) -> SessionData | None:
        """The session in ``cookie`` if its signature holds and it has not expired.

        The expiry travels in the signed body and is compared with the injected clock
        (itsdangerous's own timestamps read the system clock).
        """
        if len(cookie) > 4096:
            return None
        try:
            body = self._cookies.loads(cookie)
            data = SessionData(
                nonce=str(body["n"]),
                expires=int(body["e"]),
                user_id=None if body.get("u") is None else int(body["u"]),
                generation=None if body.get("g") is None else int(body["g"]),
                flash=None if body.get("m") is None else str(body["m"]),
            )
        except (BadData, ValueError, KeyError, TypeError):
            return None
        if data.expires <= now.timestamp():
            return None
        return data

    def csrf_token(self, data: SessionData) -> str:
        return self._csrf.get_signature(data.nonce).decode()

    def csrf_ok(self, data: SessionData | None, token: str | None) -> bool:
        if data is None or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(data).encode())


@dataclass
class SessionHolder:
    """The request's session: read from the cookie, changed by handlers, written back once."""

    codec: SessionCodec
    clock: Clock
    data: SessionData | None
    changed: bool = False

    def ensure(self) -> SessionData:
        """The session, starting an anonymous one (for the login form's CSRF token) if needed."""
        if self.data is None:
            self.data = SessionData.new(self.clock(), self.codec.max_age)
            self.changed = True
        return self.data

    def login(self, *, user_id: int, generation: int) -> None:
        # A fresh nonce: a session id planted before login is worth nothing after it.
        self.data = replace(
            SessionData.new(self.clock(), self.codec.max_age),
            user_id=user_id,
            generation=generation,
        )
        self.changed = True

    def logout(self) -> None:
        self.data = SessionData.new(self.clock(), self.codec.max_age)
        self.changed = True

    def set_flash(self, message: str) -> None:
        self.data = replace(self.ensure(), flash=message[:300])
        self.changed = True

    def pop_flash(self) -> str | None:
        if self.data is None or self.data.flash is None:
            return None
        message = self.data.flash
        self.data = replace(self.data, flash=None)
        self.changed = True
        return message

    def csrf_token(self) -> str:
        return self.codec.csrf_token(self.ensure())


@dataclass(frozen=True)
class CookieSettings:
    name: str
    secure: bool


def cookie_settings(*, secure: bool) -> CookieSettings:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only
    # and Path=/; it is only usable over HTTPS.
    return CookieSettings(name="__Host-harvester" if secure else "harvester_session", secure=secure)


class SessionMiddleware:
    """Loads the session cookie into the scope and writes it back when a handler changed it."""

    def __init__(
        self, app: ASGIApp, *, codec: SessionCodec, clock: Clock, cookie: CookieSettings
    ) -> None:
        self.app = app
        self.codec = codec
        self.clock = clock
        self.cookie = cookie

    def _read(self, scope: Scope) -> SessionData | None:
        raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except Exception:  # noqa: BLE001  a malformed Cookie header is the client's problem
            return None
        morsel = jar.get(self.cookie.name)
        return None if morsel is None else self.codec.loads(morsel.value, now=self.clock())

    def _header(self, data: SessionData) -> bytes:
        parts = [
            f"{self.cookie.name}={self.codec.dumps(data)}",
            "Path=/",
            f"Max-Age={int(self.codec.max_age.total_seconds())}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if self.cookie.secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder = SessionHolder(self.codec, self.clock, self._read(scope))
        scope[SESSION_SCOPE_KEY] = holder

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and holder.changed and holder.data:
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", self._header(holder.data)))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, and no-store to everything but assets."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra: tuple[tuple[bytes, bytes], ...] = (
            ((b"strict-transport-security", b"max-age=31536000"),) if hsts else ()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k not in _REPLACED_HEADERS
                ]
                headers.extend(SECURITY_HEADERS)
                headers.extend(self.extra)
                # Pages show who did what in which account: no copies in shared caches.
                headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REPLACED_HEADERS = frozenset({k for k, _ in SECURITY_HEADERS} | {b"cache-control"})
