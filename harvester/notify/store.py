"""Destinations in the database: written from specs, read back as specs.

The secret is encrypted with the at-rest key like an access key; ``list_destinations`` never
decrypts it, so listing and exporting cannot leak it.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.db.notify_models import DestinationRecord
from harvester.detect.model import Severity
from harvester.inventory.service import NotFound
from harvester.notify.model import DestinationSpec

__all__ = [
    "destination_spec",
    "get_destination",
    "list_destinations",
    "remove_destination",
    "secret_matches",
    "upsert_destination",
]

# Stored in the settings column; name, type, enabled and the secret have columns of their own.
_SETTINGS = [
    f.name for f in fields(DestinationSpec) if f.name not in ("name", "type", "secret", "enabled")
]


def _to_json(value: Any) -> Any:
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Severity):
        return value.value
    return value


def _from_json(name: str, value: Any) -> Any:
    default = DestinationSpec.__dataclass_fields__[name].default
    if isinstance(default, timedelta):
        return timedelta(seconds=value)
    if isinstance(default, tuple):
        return tuple(value)
    if isinstance(default, Severity):
        return Severity(value)
    return value


def destination_spec(record: DestinationRecord, *, box: SecretBox | None = None) -> DestinationSpec:
    """The spec of a stored destination; the secret only when ``box`` is given."""
    stored = record.settings or {}
    values = {name: _from_json(name, stored[name]) for name in _SETTINGS if name in stored}
    secret = box.decrypt(record.secret_encrypted) if box and record.secret_encrypted else None
    return DestinationSpec(
        name=record.name, type=record.type, secret=secret, enabled=record.enabled, **values
    )


def list_destinations(session: Session) -> list[DestinationRecord]:
    return list(session.scalars(select(DestinationRecord).order_by(DestinationRecord.name)))


def get_destination(session: Session, *, name: str) -> DestinationRecord:
    record = session.get(DestinationRecord, name)
    if record is None:
        raise NotFound(f"no destination named {name!r} (harvester destinations list shows them)")
    return record


def secret_matches(record: DestinationRecord, secret: str, *, box: SecretBox) -> bool:
    return record.secret_encrypted is not None and box.decrypt(record.secret_encrypted) == secret


def upsert_destination(
    session: Session, spec: DestinationSpec, *, box: SecretBox, clock: Clock
) -> DestinationRecord:
    now = clock()
    record = session.get(DestinationRecord, spec.name)
    if record is None:
        record = DestinationRecord(name=spec.name, created_at=now)
        session.add(record)
    spec.validate(has_stored_secret=record.secret_encrypted is not None)
    record.type = spec.type
    record.settings = {name: _to_json(getattr(spec, name)) for name in _SETTINGS}
    record.enabled = spec.enabled
    if spec.secret is not None:
        record.secret_encrypted = box.encrypt(spec.secret)
    record.updated_at = now
    session.flush()
    return record


def remove_destination(session: Session, record: DestinationRecord) -> None:
    session.delete(record)
    session.flush()
