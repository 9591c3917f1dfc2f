"""The ``destinations:`` list of the inventory file: read, validated, exported (secrets never).

Secrets are written as ``${ENV_VAR}`` references (resolved at apply time, like a role's
secret access key); an exported file omits them and an apply without one keeps the stored one.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from harvester.detect.model import Severity
from harvester.durations import format_duration, parse_duration
from harvester.inventory import validation as v
from harvester.notify.model import DestinationSpec

KEYS = {f.name for f in fields(DestinationSpec)}
_TEXT = ("name", "type", "url", "secret", "topic_arn", "role", "region", "smtp_host",
         "smtp_username", "email_from")  # fmt: skip
_LISTS = ("email_to", "kinds", "detectors", "accounts", "clusters")
_DURATIONS = ("renotify_after", "timeout", "max_age")
_INTS = ("smtp_port", "rate_limit")


def read_destination(r: Any, raw: Any, where: str) -> DestinationSpec:
    """One entry, with ``r`` the inventory file's reader (errors carry file and line)."""
    node = r.mapping(raw, where, KEYS)
    values: dict[str, Any] = {}
    for key in _TEXT:
        text = r.string(node, key, where, required=key in ("name", "type"))
        if text is not None:
            values[key] = text
    for key in _LISTS:
        items = node.get(key)
        if items is None:
            continue
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(i, str | int) for i in items):
            raise r.fail(node, key, f"{where}.{key}: expected a list of strings")
        values[key] = tuple(str(i) for i in items)
    for key in _DURATIONS:
        if node.get(key) is not None:
            try:
                values[key] = parse_duration(node[key])
            except ValueError as exc:
                raise r.fail(node, key, f"{where}.{key}: {exc}") from None
    for key in _INTS:
        if node.get(key) is not None:
            if not isinstance(node[key], int) or isinstance(node[key], bool):
                raise r.fail(node, key, f"{where}.{key}: expected a whole number")
            values[key] = node[key]
    if node.get("min_severity") is not None:
        try:
            values["min_severity"] = Severity.parse(str(node["min_severity"]))
        except ValueError as exc:
            raise r.fail(node, "min_severity", f"{where}.min_severity: {exc}") from None
    values["enabled"] = r.boolean(node, "enabled", where, True)
    values["smtp_starttls"] = r.boolean(node, "smtp_starttls", where, True)
    try:
        # The file may leave a secret out: apply keeps the stored one (or says none is stored).
        return DestinationSpec(**values).validate(where, has_stored_secret=True)
    except v.InvalidValue as exc:
        key = exc.field.rsplit(".", 1)[-1].split("[")[0]
        raise r.fail(node, key, str(exc)) from None


def dump_destination(spec: DestinationSpec) -> dict[str, Any]:
    """An entry for ``inventory export``: defaults left out, the secret never written."""
    default = DestinationSpec(name=spec.name, type=spec.type)
    item: dict[str, Any] = {"name": spec.name, "type": spec.type}
    for key in sorted(KEYS - {"name", "type", "secret"}):
        value = getattr(spec, key)
        if value == getattr(default, key):
            continue
        if key in _DURATIONS:
            value = format_duration(value)
        elif key in _LISTS:
            value = list(value)
        elif key == "min_severity":
            value = value.value
        item[key] = value
    return item
