"""Re-encrypt every stored secret with a new at-rest key.

All or nothing, in the caller's transaction: every stored secret is first decrypted (with the
new key, or else with one of the old ones); only when all of them can be is anything written.
A secret that already opens with the new key is left as it is, so running the rotation again,
or after an interrupted rollout, changes nothing. Secrets and keys never leave this module:
the report holds counts and row ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.crypto import SecretBox, SecretKeyError
from harvester.db.models import AccessKeyConfig

__all__ = ["KeyRotationError", "RotationReport", "parse_key_list", "rotate_secrets"]


class KeyRotationError(Exception):
    """The rotation cannot be done; nothing was changed. The message never holds a secret."""


@dataclass(frozen=True)
class RotationReport:
    total: int
    rotated: int
    already_current: int
    # Row ids (access_key_configs.id) re-encrypted: for the operator's log, never the secrets.
    rotated_ids: tuple[int, ...] = field(default=())
    dry_run: bool = False


def parse_key_list(value: str | None) -> list[str]:
    """Old keys from a comma-separated list (``HARVESTER_OLD_SECRET_KEYS``), blanks dropped."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _distinct_old(new_key: str, old_keys: Iterable[str]) -> list[str]:
    seen = {new_key}
    distinct = []
    for key in old_keys:
        if key not in seen:
            seen.add(key)
            distinct.append(key)
    return distinct


def rotate_secrets(
    session: Session, *, new_key: str, old_keys: Sequence[str], dry_run: bool = False
) -> RotationReport:
    """Re-encrypt every stored secret with ``new_key``; the caller commits.

    Rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL) so a concurrent inventory change
    waits instead of writing a secret under the old key in between. Raises
    :class:`KeyRotationError` without changing anything when a secret opens with none of the
    keys.
    """
    if not new_key:
        raise KeyRotationError("the new secret key is empty")
    current = SecretBox.from_keys(new_key)
    old = _distinct_old(new_key, old_keys)
    any_key = SecretBox.from_keys(new_key, *old)
    rows = session.scalars(
        select(AccessKeyConfig).order_by(AccessKeyConfig.id).with_for_update()
    ).all()
    pending: list[tuple[AccessKeyConfig, str]] = []
    unreadable: list[int] = []
    already = 0
    for row in rows:
        try:
            current.decrypt(row.secret_encrypted)
        except SecretKeyError:
            pass
        else:
            already += 1
            continue
        try:
            plaintext = any_key.decrypt(row.secret_encrypted)
        except SecretKeyError:
            unreadable.append(row.id)
            continue
        pending.append((row, current.encrypt(plaintext)))
    if unreadable:
        ids = ", ".join(str(i) for i in unreadable)
        raise KeyRotationError(
            f"{len(unreadable)} stored secret(s) (access key config id {ids}) open with neither "
            "the new key nor any old key: add the key they were stored with to "
            "HARVESTER_OLD_SECRET_KEYS; nothing was changed"
        )
    if not dry_run:
        for row, encrypted in pending:
            row.secret_encrypted = encrypted
        session.flush()
    return RotationReport(
        total=len(rows),
        rotated=len(pending),
        already_current=already,
        rotated_ids=tuple(row.id for row, _ in pending),
        dry_run=dry_run,
    )
