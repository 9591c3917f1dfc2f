"""Declarative apply: compare the inventory file with the database, then make them equal.

The plan is computed first and printed; ``--dry-run`` stops there. Applying the same file
twice gives an empty plan the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.inventory import service
from harvester.inventory.spec import AccountSpec, ClusterSpec, InventorySpec, RoleSpec
from harvester.notify import store as destinations

Action = Literal["add", "change", "remove", "unmanaged"]


@dataclass(frozen=True)
class Change:
    action: Action
    kind: Literal["role", "account", "source", "destination"]
    name: str
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        if self.action == "unmanaged":
            return f"  {self.kind} {self.name}: not in the file, kept (--prune removes it)"
        sign = {"add": "+", "change": "~", "remove": "-"}[self.action]
        return f"{sign} {self.kind} {self.name}{detail}"


def _diff(old: object, new: object, *, skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    assert type(old) is type(new)
    names = [f.name for f in fields(old)]  # type: ignore[arg-type]
    return tuple(n for n in names if n not in skip and getattr(old, n) != getattr(new, n))


def plan(session: Session, desired: InventorySpec, *, box: SecretBox, prune: bool) -> list[Change]:
    """What apply would do, in the order it would do it."""
    desired.validate()
    current = service.export_inventory(session)
    changes: list[Change] = []
    stored_roles = {r.name: r for r in current.roles}
    for role in desired.roles:
        old = stored_roles.get(role.name)
        if old is None:
            changes.append(Change("add", "role", role.name))
            continue
        changed = _diff(old, role, skip=("secret_access_key",))
        if role.secret_access_key is not None and not service.secret_matches(
            service.get_role(session, name=role.name), role.secret_access_key, box=box
        ):
            changed += ("secret_access_key",)
        if changed:
            changes.append(Change("change", "role", role.name, changed))

    stored_accounts = {a.account_id: a for a in current.accounts}
    for account in desired.accounts:
        old_account = stored_accounts.get(account.account_id)
        label = f"{account.account_id} ({account.name})"
        if old_account is None:
            changes.append(Change("add", "account", label))
            changes += _source_changes(None, account)
            continue
        changed = _diff(old_account, account, skip=("cloudtrail", "clusters"))
        if changed:
            changes.append(Change("change", "account", label, changed))
        changes += _source_changes(old_account, account)

    wanted_accounts = {a.account_id for a in desired.accounts}
    extra: Action = "remove" if prune else "unmanaged"
    for old_account in current.accounts:
        if old_account.account_id not in wanted_accounts:
            changes.append(
                Change(extra, "account", f"{old_account.account_id} ({old_account.name})")
            )
    wanted_roles = {r.name for r in desired.roles}
    for old_role in current.roles:
        if old_role.name not in wanted_roles:
            changes.append(Change(extra, "role", old_role.name))
    changes += _destination_changes(session, current, desired, box=box, extra=extra)
    return changes


def _destination_changes(
    session: Session,
    current: InventorySpec,
    desired: InventorySpec,
    *,
    box: SecretBox,
    extra: Action,
) -> list[Change]:
    changes: list[Change] = []
    stored = {d.name: d for d in current.destinations}
    for wanted in desired.destinations:
        old = stored.pop(wanted.name, None)
        if old is None:
            changes.append(Change("add", "destination", wanted.name))
            continue
        changed = _diff(old, wanted, skip=("secret",))
        if wanted.secret is not None and not destinations.secret_matches(
            destinations.get_destination(session, name=wanted.name), wanted.secret, box=box
        ):
            changed += ("secret",)
        if changed:
            changes.append(Change("change", "destination", wanted.name, changed))
    changes += [Change(extra, "destination", name) for name in sorted(stored)]
    return changes


def _source_changes(old: AccountSpec | None, new: AccountSpec) -> list[Change]:
    changes: list[Change] = []
    name = f"cloudtrail {new.account_id}"
    old_ct = old.cloudtrail if old else None
    if new.cloudtrail is not None and old_ct is None:
        changes.append(Change("add", "source", name))
    elif new.cloudtrail is not None and old_ct is not None:
        changed = _diff(old_ct, new.cloudtrail)
        if changed:
            changes.append(Change("change", "source", name, changed))
    elif new.cloudtrail is None and old_ct is not None:
        changes.append(Change("remove", "source", name))
    old_clusters: dict[str, ClusterSpec] = {c.name: c for c in (old.clusters if old else ())}
    for cluster in new.clusters:
        cname = f"eks {new.account_id}/{cluster.name}"
        before = old_clusters.pop(cluster.name, None)
        if before is None:
            changes.append(Change("add", "source", cname))
        else:
            changed = _diff(before, cluster)
            if changed:
                changes.append(Change("change", "source", cname, changed))
    changes += [
        Change("remove", "source", f"eks {new.account_id}/{gone}") for gone in sorted(old_clusters)
    ]
    return changes


def apply(
    session: Session,
    desired: InventorySpec,
    *,
    box: SecretBox,
    clock: Clock,
    prune: bool = False,
    dry_run: bool = False,
) -> list[Change]:
    """Make the database match ``desired``; all or nothing (the caller commits)."""
    changes = plan(session, desired, box=box, prune=prune)
    if dry_run or not any(c.action != "unmanaged" for c in changes):
        return changes
    for role in desired.roles:
        _apply_role(session, role, box=box, clock=clock)
    for account_spec in desired.accounts:
        account = service.upsert_account(session, account_spec, clock=clock)
        sources = {
            (s.kind, s.cluster_name): s
            for s in service.list_sources(session)
            if s.account_pk == account.id
        }
        if account_spec.cloudtrail is not None:
            service.set_cloudtrail_storage(
                session, account=account, storage=account_spec.cloudtrail, clock=clock
            )
        elif (service.CLOUDTRAIL, "") in sources:
            service.remove_source(session, sources[(service.CLOUDTRAIL, "")])
        wanted = {c.name for c in account_spec.clusters}
        for cluster in account_spec.clusters:
            service.set_cluster(session, account=account, cluster=cluster, clock=clock)
        for (kind, cluster_name), source in sources.items():
            if kind == service.EKS and cluster_name not in wanted:
                service.remove_source(session, source)
    for destination in desired.destinations:
        destinations.upsert_destination(session, destination, box=box, clock=clock)
    if prune:
        wanted_destinations = {d.name for d in desired.destinations}
        for record in destinations.list_destinations(session):
            if record.name not in wanted_destinations:
                destinations.remove_destination(session, record)
        wanted_accounts = {a.account_id for a in desired.accounts}
        for account in service.list_accounts(session):
            if account.account_id not in wanted_accounts:
                service.remove_account(session, account)
        wanted_roles = {r.name for r in desired.roles}
        for stored in service.list_roles(session):
            if stored.name not in wanted_roles:
                service.remove_role(session, stored)
    return changes


def _apply_role(session: Session, role: RoleSpec, *, box: SecretBox, clock: Clock) -> None:
    service.upsert_role(session, role, box=box, clock=clock)
