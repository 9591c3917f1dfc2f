"""People and API tokens of the web console: password hashing, token creation and checking.

Passwords are hashed with the standard library's scrypt; the parameters travel with each hash
(``scrypt$<n>$<r>$<p>$<salt>$<digest>``), so the cost can be raised later without breaking the
hashes already stored. API tokens are random strings shown once; only their SHA-256 is kept,
which is enough because a token has 256 bits of entropy (a slow hash protects guessable
secrets, not random ones).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from harvester.clock import Clock
from harvester.db.user_models import ApiToken, User
from harvester.inventory.validation import InvalidValue

__all__ = [
    "ADMIN",
    "ROLES",
    "TOKEN_PREFIX",
    "VIEWER",
    "NewToken",
    "authenticate",
    "create_token",
    "create_user",
    "end_sessions",
    "get_user",
    "get_user_by_name",
    "hash_password",
    "list_users",
    "session_user",
    "set_enabled",
    "set_password",
    "token_hash",
    "user_for_token",
    "validate_password",
    "validate_role",
    "validate_username",
    "verify_password",
]

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
TOKEN_PREFIX = "hvt_"  # noqa: S105  a public marker, not a token
MIN_PASSWORD_LENGTH = 12
# Bounds on the password: scrypt takes any length, but a megabyte-long "password" posted to
# the login form should not cost a megabyte of hashing.
MAX_PASSWORD_LENGTH = 1024

# 32 MiB and about 0.1 s per hash on one core: slow for an offline guesser, bearable for a login.
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_DKLEN = 32
_SALT_BYTES = 16
# Refuse stored parameters that would make one verification eat the machine (a tampered row).
_MAX_N = 2**20
_MAXMEM = 1024 * 1024 * 1024

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,63}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN)


def hash_password(password: str) -> str:
    """A self-describing scrypt hash of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; compares in constant time, never raises."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        scheme, n_text, r_text, p_text, salt_text, digest_text = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except ValueError:
        return False
    if scheme != "scrypt" or not (1 < n <= _MAX_N) or not (0 < r <= 32) or not (0 < p <= 16):
        return False
    try:
        actual = _scrypt(password, salt, n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check against when the user does not exist, so that a login for an unknown name
# takes as long as one with a wrong password (no username enumeration by timing). Made on
# first use, not at import.
_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash  # noqa: PLW0603  a lazily computed constant; computing it costs 0.1 s
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


# --- validation -------------------------------------------------------------------------------


def validate_username(value: str, field: str = "username") -> str:
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            "a username is 1-64 letters, digits and _.@-, starting with a letter or digit",
        )
    return value


def validate_password(value: str, field: str = "password") -> str:
    if not isinstance(value, str) or not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        raise InvalidValue(
            field,
            value,
            f"a password is {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            secret=True,
        )
    return value


def validate_role(value: str, field: str = "role") -> str:
    if value not in ROLES:
        raise InvalidValue(field, value, f"the role is one of {', '.join(ROLES)}")
    return value


# --- users ------------------------------------------------------------------------------------


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_name(session: Session, *, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    return list(
        session.scalars(select(User).options(selectinload(User.tokens)).order_by(User.username))
    )


def create_user(session: Session, *, username: str, password: str, role: str, clock: Clock) -> User:
    validate_username(username)
    validate_role(role)
    validate_password(password)
    if get_user_by_name(session, username=username) is not None:
        raise InvalidValue("username", username, "a user with this name exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        enabled=True,
        created_at=clock(),
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str, clock: Clock) -> User | None:
    """The enabled user with this name and password, or None; records the login time."""
    user = get_user_by_name(session, username=username) if _USERNAME.fullmatch(username) else None
    if user is None:
        verify_password(password, _dummy())
        return None
    if not verify_password(password, user.password_hash) or not user.enabled:
        return None
    user.last_login_at = clock()
    session.flush()
    return user


# --- sessions ---------------------------------------------------------------------------------


def end_sessions(user: User) -> None:
    """End every console session of ``user`` (its cookies stop working on their next request)."""
    user.session_generation += 1


def set_password(session: Session, *, user: User, password: str) -> None:
    """A new password; the sessions opened with the old one end."""
    validate_password(password)
    user.password_hash = hash_password(password)
    end_sessions(user)
    session.flush()


def set_enabled(session: Session, *, user: User, enabled: bool) -> None:
    """Enable or disable a user; disabling ends their sessions, so re-enabling revives none."""
    if not enabled and user.enabled:
        end_sessions(user)
    user.enabled = enabled
    session.flush()


def session_user(session: Session, *, user_id: int, generation: int | None) -> User | None:
    """The enabled user a console session belongs to, if that session has not been ended."""
    user = get_user(session, user_id=user_id)
    if user is None or not user.enabled or generation != user.session_generation:
        return None
    return user


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is the only copy of the token there will ever be."""

    id: int
    name: str
    username: str
    secret: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, user: User, name: str, clock: Clock) -> NewToken:
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise InvalidValue("name", name, "a token name is 1-64 letters, digits, spaces and _.@:-")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=token_hash(secret), created_at=clock())
    session.add(token)
    session.flush()
    return NewToken(id=token.id, name=name, username=user.username, secret=secret)


def user_for_token(session: Session, *, token: str, clock: Clock) -> User | None:
    """The enabled user a bearer token belongs to, or None; records when it was used."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
        return None
    digest = token_hash(token)
    row = session.scalar(
        select(ApiToken).options(selectinload(ApiToken.user)).where(ApiToken.token_hash == digest)
    )
    # The lookup is by hash, so it leaks nothing about the token; the compare is belt and braces
    # against a database collation that matches case-insensitively.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or not row.user.enabled:
        return None
    row.last_used_at = clock()
    session.flush()
    return row.user
