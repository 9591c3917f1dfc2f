"""The console's destination form: text fields in, a validated ``DestinationSpec`` out.

Only the typing of text (numbers, durations, lists, check boxes) is done here; the rules are
``DestinationSpec.validate``, the inventory file's own, and its ``InvalidValue.field`` is
mapped back onto the form field it names. The secret is write-only: it is never put back into
a form, and an empty secret field on edit keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.db.notify_models import DestinationRecord
from harvester.detect.model import Severity
from harvester.durations import format_duration, parse_duration
from harvester.inventory import validation as v
from harvester.notify.model import KINDS, DestinationSpec
from harvester.notify.store import upsert_destination
from harvester.web.forms import MAX_FIELD_LENGTH, FormErrors

__all__ = [
    "CHECKBOXES",
    "destination_values",
    "parse_destination",
    "save_destination",
]

TEXT_FIELDS = ("url", "topic_arn", "role", "region", "smtp_host", "smtp_username", "email_from")
LIST_FIELDS = ("email_to", "detectors", "accounts", "clusters")
DURATION_FIELDS = ("renotify_after", "timeout", "max_age")
INT_FIELDS = ("smtp_port", "rate_limit")
CHECKBOXES = ("enabled", "smtp_starttls", *(f"kinds.{kind}" for kind in KINDS))
_SEPARATORS = re.compile(r"[\s,]+")


def _text(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()[:MAX_FIELD_LENGTH]


def destination_values(spec: DestinationSpec) -> dict[str, str]:
    """A stored destination as the form shows it (the secret never)."""
    values = {name: getattr(spec, name) or "" for name in ("name", "type", *TEXT_FIELDS)}
    values |= {name: ", ".join(getattr(spec, name)) for name in LIST_FIELDS}
    values |= {name: format_duration(getattr(spec, name)) for name in DURATION_FIELDS}
    values |= {name: str(getattr(spec, name)) for name in INT_FIELDS}
    values["min_severity"] = spec.min_severity.value
    values["enabled"] = "on" if spec.enabled else ""
    values["smtp_starttls"] = "on" if spec.smtp_starttls else ""
    values |= {f"kinds.{kind}": "on" if kind in spec.kinds else "" for kind in KINDS}
    return values


def parse_destination(form: Mapping[str, str], *, name: str, type_: str) -> DestinationSpec:
    """Type each field (errors collected per field), then validate with the spec's own rules.

    Raises :class:`FormErrors`. ``secret`` is None when the field was left empty.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": name, "type": type_}
    for field in TEXT_FIELDS:
        values[field] = _text(form, field) or None
    # Not stripped: a secret is taken exactly as pasted, and validated as such.
    values["secret"] = form.get("secret", "")[:MAX_FIELD_LENGTH] or None
    for field in LIST_FIELDS:
        text = _text(form, field)
        if text:
            values[field] = tuple(item for item in _SEPARATORS.split(text) if item)
    for field in DURATION_FIELDS:
        text = _text(form, field)
        if text:
            try:
                values[field] = parse_duration(text)
            except ValueError as exc:
                errors[field] = str(exc)
    for field in INT_FIELDS:
        text = _text(form, field)
        if text:
            if text.isascii() and text.isdigit():
                values[field] = int(text)
            else:
                errors[field] = "a whole number"
    severity = _text(form, "min_severity")
    if severity:
        try:
            values["min_severity"] = Severity.parse(severity)
        except ValueError:
            errors["min_severity"] = "use info, low, medium, high or critical"
    values["kinds"] = tuple(kind for kind in KINDS if form.get(f"kinds.{kind}") == "on")
    if not values["kinds"]:
        errors["kinds"] = "choose anomalies, incidents or both"
    values["enabled"] = form.get("enabled") == "on"
    values["smtp_starttls"] = form.get("smtp_starttls") == "on"
    if errors:
        raise FormErrors(errors)
    return DestinationSpec(**values)


def _form_field(service_field: str) -> str:
    # "destination.accounts[0]" -> "accounts": the field the form shows the error beside.
    return service_field.rsplit(".", 1)[-1].split("[", maxsplit=1)[0]


def save_destination(
    session: Session,
    form: Mapping[str, str],
    *,
    record: DestinationRecord | None,
    box: SecretBox,
    clock: Clock,
) -> DestinationRecord:
    """Create (``record`` None: name and type from the form) or edit a destination.

    Validated like an entry of the inventory file, then written through the same store, so the
    secret is encrypted the same way. Raises :class:`FormErrors` before anything is written.
    """
    if record is None:
        name, type_ = _text(form, "name"), _text(form, "type")
    else:
        # Name and type are fixed once made: a secret of one type is meaningless to another.
        name, type_ = record.name, record.type
    spec = parse_destination(form, name=name, type_=type_)
    try:
        spec.validate(has_stored_secret=record is not None and record.secret_encrypted is not None)
    except v.InvalidValue as exc:
        raise FormErrors({_form_field(exc.field): exc.rule}) from None
    if record is None and session.get(DestinationRecord, name) is not None:
        raise FormErrors({"name": "a destination with this name exists: edit it instead"})
    return upsert_destination(session, spec, box=box, clock=clock)
