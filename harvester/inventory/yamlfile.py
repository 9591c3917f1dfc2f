"""Read and write the inventory file, with file:line in every error.

Secrets in the file may be ``${ENV_VAR}`` references, resolved from the environment at
apply time, so the file itself can live in version control.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from harvester.crypto import mask
from harvester.durations import format_duration, parse_duration
from harvester.inventory import validation as v
from harvester.inventory.spec import (
    AccountSpec,
    ClusterSpec,
    InventorySpec,
    RoleSpec,
    StorageSpec,
    default_cloudtrail_prefix,
)
from harvester.notify.inventory import dump_destination, read_destination

# How mask() starts; never part of a valid external ID, so a masked value cannot be a real one.
MASK_MARK = "****"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

ROLE_KEYS = {
    "name", "role_arn", "session_name", "partition", "authentication", "via_role_arn",
    "external_id", "access_key_id", "secret_access_key",
}  # fmt: skip
ACCOUNT_KEYS = {
    "account_id", "name", "partition", "organization_id", "enabled", "cadence", "cloudtrail",
    "clusters",
}  # fmt: skip
CLOUDTRAIL_KEYS = {"bucket", "region", "prefix", "role"}
CLUSTER_KEYS = {"name", "region", "bucket", "role", "enabled"}


class InventoryFileError(ValueError):
    """An inventory file problem, located: ``file:line: field: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class _Located(dict[str, Any]):
    """A mapping that remembers the line of each of its keys (1-based)."""

    line: int
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Located:
    mapping = _Located()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if str(key) in mapping:
            # YAML itself lets the last one win; in an inventory that silently drops a setting.
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {str(key)!r} (first on line {mapping.key_lines[str(key)]}): "
                "keep one of them",
                key_node.start_mark,
            )
        mapping[str(key)] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    def __init__(
        self, path: str, environ: Mapping[str, str], stored_external_ids: Mapping[str, str]
    ) -> None:
        self.path = path
        self.environ = environ
        self.stored_external_ids = stored_external_ids

    def fail(self, node: Any, key: str | None, message: str) -> InventoryFileError:
        line = None
        if isinstance(node, _Located):
            line = node.key_lines.get(key, node.line) if key else node.line
        return InventoryFileError(self.path, line, message)

    def mapping(self, node: Any, where: str, allowed: set[str]) -> _Located:
        if not isinstance(node, _Located):
            raise InventoryFileError(self.path, None, f"{where}: expected a mapping")
        unknown = sorted(set(node) - allowed)
        if unknown:
            raise self.fail(
                node,
                unknown[0],
                f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})",
            )
        return node

    def string(self, node: _Located, key: str, where: str, *, required: bool = False) -> str | None:
        value = node.get(key)
        if value is None:
            if required:
                raise self.fail(node, None, f"{where}.{key}: required")
            return None
        if isinstance(value, bool | dict | list):
            raise self.fail(node, key, f"{where}.{key}: expected a string")
        if isinstance(value, int) and key == "account_id":
            raise self.fail(
                node,
                key,
                f'{where}.{key}: quote account ids in YAML ("{value:012d}"), '
                "or leading zeros are lost",
            )
        text = str(value)

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.environ:
                raise self.fail(node, key, f"{where}.{key}: environment variable {name} is not set")
            return self.environ[name]

        return _ENV_REF.sub(substitute, text)

    def boolean(self, node: _Located, key: str, where: str, default: bool) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(node, key, f"{where}.{key}: expected true or false")
        return value

    def located(self, node: _Located, key: str, func: Any) -> Any:
        try:
            return func()
        except v.InvalidValue as exc:
            raise self.fail(node, key, str(exc)) from None


def parse_inventory(
    text: str,
    *,
    path: str = "<inventory>",
    environ: Mapping[str, str],
    stored_external_ids: Mapping[str, str] | None = None,
) -> InventorySpec:
    """Parse and validate an inventory document; errors carry file, line and field.

    ``stored_external_ids`` (role name to external ID) resolves the masked external IDs an
    export writes (``****1234``), so an exported file applies as "no change".
    """
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506  _Loader is a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InventoryFileError(path, line, f"not valid YAML: {exc.problem}") from None
    if doc is None:
        doc = _Located()
        doc.line, doc.key_lines = 1, {}
    r = _Reader(path, environ, stored_external_ids or {})
    doc = r.mapping(doc, "inventory", {"roles", "accounts", "destinations"})
    roles = tuple(
        _read_role(r, node, f"roles[{i}]") for i, node in enumerate(_list(r, doc, "roles"))
    )
    role_partitions = {role.name: role.partition for role in roles}
    accounts = tuple(
        _read_account(r, node, f"accounts[{i}]", role_partitions)
        for i, node in enumerate(_list(r, doc, "accounts"))
    )
    destinations = tuple(
        read_destination(r, node, f"destinations[{i}]")
        for i, node in enumerate(_list(r, doc, "destinations"))
    )
    spec = InventorySpec(roles=roles, accounts=accounts, destinations=destinations)
    # Cross-references (role names, duplicates) are checked on the whole; locate the first
    # offending entry by its index in the message.
    try:
        return spec.validate()
    except v.InvalidValue as exc:
        raise InventoryFileError(path, _line_of(doc, exc.field), str(exc)) from None


def _line_of(doc: _Located, field: str) -> int | None:
    node: Any = doc
    line = doc.line
    for part in re.findall(r"[A-Za-z_]+|\[[0-9]+\]", field):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                break
            node = node[index]
            line = getattr(node, "line", line)
        else:
            if not isinstance(node, _Located) or part not in node:
                break
            line = node.key_lines.get(part, line)
            node = node[part]
    return line


def _list(r: _Reader, doc: _Located, key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise r.fail(doc, key, f"{key}: expected a list")
    return value


def _read_role(r: _Reader, raw: Any, where: str) -> RoleSpec:
    node = r.mapping(raw, where, ROLE_KEYS)
    s = r.string
    partition = s(node, "partition", where) or "aws"
    name = s(node, "name", where, required=True) or ""
    spec = RoleSpec(
        name=name,
        role_arn=s(node, "role_arn", where),
        session_name=s(node, "session_name", where) or "audit-harvester",
        partition=partition,
        authentication=s(node, "authentication", where) or "instance-profile",
        via_role_arn=s(node, "via_role_arn", where),
        external_id=_external_id(r, node, where, name),
        access_key_id=s(node, "access_key_id", where),
        secret_access_key=s(node, "secret_access_key", where),
    )
    try:
        return spec.validate(where)
    except v.InvalidValue as exc:
        raise r.fail(node, exc.field.rsplit(".", 1)[-1], str(exc)) from None


def _external_id(r: _Reader, node: _Located, where: str, role: str) -> str | None:
    """The role's external ID; a masked one (from an export) stands for the stored one."""
    value = r.string(node, "external_id", where)
    if value is None or not value.startswith(MASK_MARK):
        return value
    stored = r.stored_external_ids.get(role)
    if stored is None or mask(stored) != value:
        raise r.fail(
            node,
            "external_id",
            f"{where}.external_id: {value!r} is a masked external ID (as an export writes it) "
            f"but role {role!r} has no stored external ID ending that way: write it in full",
        )
    return stored


def _read_account(r: _Reader, raw: Any, where: str, role_partitions: dict[str, str]) -> AccountSpec:
    node = r.mapping(raw, where, ACCOUNT_KEYS)
    s = r.string
    account_id = s(node, "account_id", where, required=True) or ""
    org = s(node, "organization_id", where)
    cadence: timedelta | None = None
    if node.get("cadence") is not None:
        raw_cadence = node["cadence"]
        try:
            cadence = parse_duration(
                raw_cadence if isinstance(raw_cadence, int) else str(raw_cadence)
            )
        except ValueError as exc:
            raise r.fail(node, "cadence", f"{where}.cadence: {exc}") from None
    cloudtrail = None
    if node.get("cloudtrail") is not None:
        ct = r.mapping(node["cloudtrail"], f"{where}.cloudtrail", CLOUDTRAIL_KEYS)
        cw = f"{where}.cloudtrail"
        cloudtrail = StorageSpec(
            bucket=s(ct, "bucket", cw, required=True) or "",
            region=s(ct, "region", cw, required=True) or "",
            prefix=s(ct, "prefix", cw) or default_cloudtrail_prefix(account_id, org),
            role=s(ct, "role", cw),
        )
    clusters = []
    for j, item in enumerate(_list(r, node, "clusters")):
        cw = f"{where}.clusters[{j}]"
        cn = r.mapping(item, cw, CLUSTER_KEYS)
        clusters.append(
            ClusterSpec(
                name=s(cn, "name", cw, required=True) or "",
                region=s(cn, "region", cw, required=True) or "",
                bucket=s(cn, "bucket", cw, required=True) or "",
                role=s(cn, "role", cw),
                enabled=r.boolean(cn, "enabled", cw, True),
            )
        )
    spec = AccountSpec(
        account_id=account_id,
        name=s(node, "name", where) or account_id,
        partition=s(node, "partition", where) or "aws",
        organization_id=org,
        enabled=r.boolean(node, "enabled", where, True),
        cadence=cadence,
        cloudtrail=cloudtrail,
        clusters=tuple(clusters),
    )
    try:
        return spec.validate(where)
    except v.InvalidValue as exc:
        raise InventoryFileError(
            r.path, _line_of(_wrap(where, node), exc.field), str(exc)
        ) from None


def _wrap(where: str, node: _Located) -> _Located:
    """A one-entry document so that a field path like accounts[3].x resolves inside ``node``."""
    index = int(where[where.index("[") + 1 : where.index("]")])
    doc = _Located()
    doc.line, doc.key_lines = node.line, {"accounts": node.line}
    doc["accounts"] = [None] * index + [node]
    return doc


def load_inventory(
    path: Path,
    *,
    environ: Mapping[str, str],
    stored_external_ids: Mapping[str, str] | None = None,
) -> InventorySpec:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryFileError(str(path), None, f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryFileError(
            str(path),
            line,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "save the file as UTF-8",
        ) from None
    return parse_inventory(
        text, path=str(path), environ=environ, stored_external_ids=stored_external_ids
    )


def dump_inventory(spec: InventorySpec) -> str:
    """YAML for ``inventory export``: secrets omitted, defaults left out."""
    roles = []
    for role in spec.roles:
        item: dict[str, Any] = {"name": role.name}
        if role.role_arn:
            item["role_arn"] = role.role_arn
        item["session_name"] = role.session_name
        item["partition"] = role.partition
        item["authentication"] = role.authentication
        if role.via_role_arn:
            item["via_role_arn"] = role.via_role_arn
        if role.external_id:
            # Masked as everywhere else; apply reads the mask back as the stored value.
            item["external_id"] = mask(role.external_id)
        if role.access_key_id:
            item["access_key_id"] = role.access_key_id
        roles.append(item)
    accounts = []
    for account in spec.accounts:
        a: dict[str, Any] = {
            "account_id": account.account_id,
            "name": account.name,
            "partition": account.partition,
        }
        if account.organization_id:
            a["organization_id"] = account.organization_id
        if not account.enabled:
            a["enabled"] = False
        if account.cadence is not None:
            a["cadence"] = format_duration(account.cadence)
        if account.cloudtrail is not None:
            ct = account.cloudtrail
            a["cloudtrail"] = {"bucket": ct.bucket, "region": ct.region, "prefix": ct.prefix}
            if ct.role:
                a["cloudtrail"]["role"] = ct.role
        if account.clusters:
            a["clusters"] = []
            for c in account.clusters:
                cd: dict[str, Any] = {"name": c.name, "region": c.region, "bucket": c.bucket}
                if c.role:
                    cd["role"] = c.role
                if not c.enabled:
                    cd["enabled"] = False
                a["clusters"].append(cd)
        accounts.append(a)
    header = (
        "# audit-harvester inventory, exported. Secret access keys are omitted: an apply keeps\n"
        "# the stored secret when a role's secret_access_key is absent. External IDs are\n"
        "# masked (****1234): an apply reads a mask as the stored external ID it matches.\n"
        "# Destination secrets are omitted too: an apply without one keeps the stored one.\n"
    )
    document: dict[str, Any] = {"roles": roles, "accounts": accounts}
    if spec.destinations:
        document["destinations"] = [dump_destination(d) for d in spec.destinations]
    body = yaml.safe_dump(document, sort_keys=False, width=100)
    return header + body
