"""Who is asking, and may they: bearer tokens and session cookies, viewers and admins.

The rules, in one place:

- every write needs an ``admin``: by bearer API token, or by session cookie after login; a
  cookie-authenticated write also needs the session's CSRF token (a form's hidden field, or
  the ``X-CSRF-Token`` header for the JSON API);
- reads need a logged-in user (viewer or admin), unless the app runs with ``public_read``;
- a malformed or unknown bearer token is refused, even where reads are public, so a client
  with a revoked token finds out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, cast

from fastapi import HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from harvester import users
from harvester.db.user_models import User
from harvester.web.security import SESSION_SCOPE_KEY, SessionHolder
from harvester.web.state import WebState, web_state

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Forbidden",
    "LoginRequired",
    "Principal",
    "api_reader",
    "api_writer",
    "page_reader",
    "resolve",
    "session_holder",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

Via = Literal["token", "session", "anonymous"]

# Declares the bearer scheme in the OpenAPI document; the header itself is checked by
# resolve(), which also accepts the session cookie.
BEARER = HTTPBearer(
    auto_error=False,
    description="An API token from 'harvester users token USERNAME --name NAME'",
)
Documented = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    username: str | None
    role: str
    via: Via

    @property
    def is_admin(self) -> bool:
        return self.role == users.ADMIN and self.user_id is not None

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Principal(user_id=None, username=None, role="anonymous", via="anonymous")


class LoginRequired(Exception):
    """A page needs a logged-in user: the app redirects to the login page."""


class Forbidden(Exception):
    """The user is known but may not do this (a viewer writing, a bad CSRF token)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def session_holder(request: Request) -> SessionHolder:
    return cast(SessionHolder, request.scope[SESSION_SCOPE_KEY])


def _principal(user: User, via: Via) -> Principal:
    return Principal(user_id=user.id, username=user.username, role=user.role, via=via)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "use 'Authorization: Bearer <token>' (see: harvester users token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def resolve(request: Request, state: WebState) -> Principal | None:
    """The user behind the request's bearer token or session cookie, if any.

    Raises 401 for a bearer token that does not name an enabled user.
    """
    token = _bearer(request)
    if token is not None:
        with state.session() as session:
            user = users.user_for_token(session, token=token, clock=state.clock)
            if user is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "the API token is unknown or its user is disabled",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return _principal(user, "token")
    holder = session_holder(request)
    if holder.data is None or holder.data.user_id is None:
        return None
    with state.session() as session:
        user = users.session_user(
            session, user_id=holder.data.user_id, generation=holder.data.generation
        )
        if user is None:
            # Logged out, disabled, deleted or its password changed since this cookie was issued.
            holder.logout()
            return None
        return _principal(user, "session")


# --- dependencies of the JSON API -------------------------------------------------------------


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "authentication required: an API token (Authorization: Bearer ...) or a login session",
        headers={"WWW-Authenticate": "Bearer"},
    )


def api_reader(request: Request, _: Documented) -> Principal:
    state = web_state(request)
    principal = resolve(request, state)
    if principal is not None:
        return principal
    if state.options.public_read:
        return ANONYMOUS
    raise _unauthorized()


def api_writer(request: Request, _: Documented) -> Principal:
    state = web_state(request)
    principal = resolve(request, state)
    if principal is None:
        raise _unauthorized()
    if principal.via == "session":
        holder = session_holder(request)
        if not state.codec.csrf_ok(holder.data, request.headers.get(CSRF_HEADER)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "a write with a session cookie needs the X-CSRF-Token header",
            )
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin; you are a viewer")
    return principal


# --- dependencies of the pages ----------------------------------------------------------------


def page_reader(request: Request) -> Principal:
    state = web_state(request)
    principal = resolve(request, state)
    if principal is not None:
        return principal
    if state.options.public_read:
        return ANONYMOUS
    raise LoginRequired


def page_admin(request: Request) -> Principal:
    """A page that edits: admins only (a GET, so no CSRF check; the form's POST has one)."""
    principal = page_reader(request)
    if not principal.authenticated:
        raise LoginRequired
    if not principal.is_admin:
        raise Forbidden("only an admin may change the configuration; you are a viewer")
    return principal


async def checked_form(request: Request) -> dict[str, str]:
    """The POSTed form as text fields, after checking its CSRF token against the session."""
    form = await request.form(max_files=0, max_fields=100)
    fields = {k: val for k, val in form.items() if isinstance(val, str)}
    await form.close()
    state = web_state(request)
    if not state.codec.csrf_ok(session_holder(request).data, fields.get(CSRF_FIELD)):
        raise Forbidden(
            "the form's security token is missing or expired: reload the page and try again"
        )
    return fields


def page_writer(request: Request) -> Principal:
    """A form POST that changes something: a logged-in admin (the CSRF check is the form's)."""
    principal = page_admin(request)
    if principal.via != "session":
        raise Forbidden("forms are for logged-in people; scripts use the API with a token")
    return principal
