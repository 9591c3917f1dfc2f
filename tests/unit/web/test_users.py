"""Password hashing and token helpers (CPU only, no database)."""

from __future__ import annotations

import hashlib

import pytest

from harvester import users
from harvester.inventory.validation import InvalidValue


def test_hash_and_verify() -> None:
    stored = users.hash_password("correct horse battery")
    assert stored.startswith("scrypt$32768$8$1$")
    assert "correct horse" not in stored
    assert users.verify_password("correct horse battery", stored)
    assert not users.verify_password("correct horse batterY", stored)
    assert not users.verify_password("", stored)


def test_each_hash_has_its_own_salt() -> None:
    assert users.hash_password("same password here") != users.hash_password("same password here")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text-password",
        "bcrypt$12$salt$digest$x$y",
        "scrypt$abc$8$1$AAAA$AAAA",
        "scrypt$32768$8$1$not base64!$AAAA",
        # Parameters a tampered row could use to make one login eat the machine.
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
        "scrypt$32768$4096$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
    ],
)
def test_malformed_or_hostile_hashes_never_verify(stored: str) -> None:
    assert users.verify_password("anything at all", stored) is False


def test_an_overlong_password_is_not_even_hashed() -> None:
    stored = users.hash_password("x" * 20)
    assert not users.verify_password("x" * (users.MAX_PASSWORD_LENGTH + 1), stored)


def test_token_hash_is_sha256_hex() -> None:
    digest = users.token_hash("hvt_abc")
    assert digest == hashlib.sha256(b"hvt_abc").hexdigest()
    assert users.token_hash("hvt_abc") == digest
    assert users.token_hash("hvt_abd") != digest


@pytest.mark.parametrize("name", ["", "-alice", "a b", "x" * 65, "alice;drop"])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(InvalidValue):
        users.validate_username(name)


@pytest.mark.parametrize("name", ["alice", "a", "pat.doe@example.com", "ops_1-x"])
def test_good_usernames(name: str) -> None:
    assert users.validate_username(name) == name


def test_password_rule_never_echoes_the_password() -> None:
    with pytest.raises(InvalidValue) as caught:
        users.validate_password("hunter2")
    assert "hunter2" not in str(caught.value)
    assert caught.value.field == "password"


def test_roles() -> None:
    assert users.validate_role("viewer") == "viewer"
    with pytest.raises(InvalidValue):
        users.validate_role("root")
