"""Encryption at rest for stored secrets (access keys).

The at-rest key comes from ``HARVESTER_SECRET_KEY`` or, when that is unset, from a key file
generated once in the data directory with mode 0600. The key is never printed or logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from harvester import known_secrets
from harvester.settings import Settings

_PREFIX = "fernet:"


class SecretKeyError(Exception):
    """The at-rest key is missing, unreadable, or does not decrypt a stored secret."""


def _fernet_for(key_material: str) -> Fernet:
    # Any string works as a key: a Fernet key is used as is, anything else is stretched
    # with SHA-256, so operators can paste a passphrase from their secret store.
    try:
        raw = base64.urlsafe_b64decode(key_material.encode())
        if len(raw) == 32:
            return Fernet(key_material.encode())
    except (ValueError, TypeError):
        pass
    digest = hashlib.sha256(key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True)
class SecretBox:
    """Encrypts and decrypts secrets with the current key (and optional older keys)."""

    _fernet: MultiFernet = field(repr=False)

    @classmethod
    def from_keys(cls, current: str, *older: str) -> SecretBox:
        return cls(MultiFernet([_fernet_for(k) for k in (current, *older)]))

    def encrypt(self, plaintext: str) -> str:
        return _PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(_PREFIX):
            raise SecretKeyError("stored secret is not in the expected encrypted format")
        try:
            plaintext = self._fernet.decrypt(stored[len(_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the configured secret key: "
                "set HARVESTER_SECRET_KEY to the key it was stored with"
            ) from None
        known_secrets.remember(plaintext)  # never written to a log, whatever its shape
        return plaintext

    def rotate(self, stored: str) -> str:
        """Re-encrypt a stored secret with the current key."""
        return _PREFIX + self._fernet.rotate(stored[len(_PREFIX) :].encode()).decode()


def mask(secret: str | None) -> str:
    """How a secret is shown anywhere: never more than its last four characters."""
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) > 12 else "****"


def load_secret_key(settings: Settings, *, notice: TextIO | None = None) -> str:
    """Return the at-rest key: from settings, else the key file, else a new key file."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if not value:
            raise SecretKeyError("HARVESTER_SECRET_KEY is set but empty")
        return value
    path: Path = settings.secret_key_file
    if path.exists():
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SecretKeyError(
                f"cannot read the secret key file {path}: {exc.strerror}"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # O_EXCL: two processes starting together must not both write a key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    print(
        f"notice: generated a new at-rest secret key in {path} (mode 0600); back it up",
        file=notice or sys.stderr,
    )
    return key


def secret_box(settings: Settings, *, notice: TextIO | None = None) -> SecretBox:
    key = load_secret_key(settings, notice=notice)
    known_secrets.remember(key)
    return SecretBox.from_keys(key)
