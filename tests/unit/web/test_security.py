"""Signed session cookies and CSRF tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.web.security import (
    SessionCodec,
    SessionData,
    SessionHolder,
    cookie_settings,
    derive_key,
)
from tests.conftest import FixedClock


@pytest.fixture
def codec() -> SessionCodec:
    return SessionCodec(derive_key("at-rest key", "web-session/v1"))


def _data(clock: FixedClock, **fields: object) -> SessionData:
    base = SessionData.new(clock(), timedelta(hours=1))
    return SessionData(**{**base.__dict__, **fields})  # type: ignore[arg-type]


def test_round_trip(codec: SessionCodec, clock: FixedClock) -> None:
    data = _data(clock, user_id=7, generation=4, flash="saved")
    assert codec.loads(codec.dumps(data), now=clock()) == data


def test_any_change_breaks_the_signature(codec: SessionCodec, clock: FixedClock) -> None:
    cookie = codec.dumps(_data(clock, user_id=7))
    body, signature = cookie.rsplit(".", 1)
    other = codec.dumps(_data(clock, user_id=1))
    # Someone else's body with this signature, and this body with a flipped signature.
    assert codec.loads(other.rsplit(".", 1)[0] + "." + signature, now=clock()) is None
    # The first character: the last one of base64 carries padding bits a decoder may ignore.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert codec.loads(body + "." + flipped, now=clock()) is None
    assert codec.loads(cookie, now=clock()) is not None


def test_another_key_does_not_verify(codec: SessionCodec, clock: FixedClock) -> None:
    cookie = codec.dumps(_data(clock))
    other = SessionCodec(derive_key("another at-rest key", "web-session/v1"))
    assert other.loads(cookie, now=clock()) is None


def test_expiry(codec: SessionCodec, clock: FixedClock) -> None:
    cookie = codec.dumps(_data(clock))
    clock.advance(timedelta(minutes=59))
    assert codec.loads(cookie, now=clock()) is not None
    clock.advance(timedelta(minutes=2))
    assert codec.loads(cookie, now=clock()) is None


@pytest.mark.parametrize("cookie", ["", ".", "a.b.c", "!!!.???", "x" * 5000, "e30.e30"])
def test_garbage_is_no_session(codec: SessionCodec, clock: FixedClock, cookie: str) -> None:
    assert codec.loads(cookie, now=clock()) is None


def test_csrf_token_is_per_session(codec: SessionCodec, clock: FixedClock) -> None:
    one, two = _data(clock), _data(clock)
    assert one.nonce != two.nonce
    token = codec.csrf_token(one)
    assert codec.csrf_ok(one, token)
    assert not codec.csrf_ok(two, token)
    assert not codec.csrf_ok(one, None)
    assert not codec.csrf_ok(None, token)
    assert not codec.csrf_ok(one, token + "x")


def test_keys_are_separated_by_purpose() -> None:
    assert derive_key("k", "web-session/v1") != derive_key("k", "something-else")
    assert derive_key("k", "web-session/v1") != derive_key("k2", "web-session/v1")
    assert len(derive_key("k", "x")) == 32


def test_holder_rotates_the_nonce_at_login_and_logout(
    codec: SessionCodec, clock: FixedClock
) -> None:
    holder = SessionHolder(codec, clock, None)
    anonymous = holder.ensure()
    assert holder.changed
    holder.login(user_id=3, generation=0)
    assert holder.data is not None
    assert holder.data.nonce != anonymous.nonce
    assert holder.data.user_id == 3
    logged_in = holder.data.nonce
    holder.logout()
    assert holder.data.user_id is None
    assert holder.data.nonce != logged_in


def test_flash_is_shown_once(codec: SessionCodec, clock: FixedClock) -> None:
    holder = SessionHolder(codec, clock, None)
    holder.set_flash("Saved.")
    assert holder.pop_flash() == "Saved."
    assert holder.pop_flash() is None


def test_cookie_names() -> None:
    assert cookie_settings(secure=True).name.startswith("__Host-")
    assert cookie_settings(secure=False).name == "harvester_session"
