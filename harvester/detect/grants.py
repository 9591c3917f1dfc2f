"""Bindings to roles that grant everything: remembered across batches, per cluster.

A binding names a role, not what the role allows; whether the role is a wildcard was said
when it was written, possibly days earlier. This family remembers, per cluster, the
(Cluster)Roles written with ``*`` verbs or resources, and reports a binding that points at
one of them. Same batch discipline as the baselines: one read, one write per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harvester.detect.behaviour import Finding
from harvester.detect.features import as_list, display_principal, is_control_plane_user
from harvester.detect.model import DetectorSpec, Hit, Severity, stable_digest
from harvester.detect.state import HashRead, HashValue, HashWrite
from harvester.events import Event, payload

__all__ = ["WILDCARD_BINDING", "RoleGrantFamily"]

WILDCARD_BINDING = DetectorSpec(
    id="k8s.binding-to-wildcard-role",
    version=1,
    title="Binding to a role that grants everything",
    description=(
        "A (Cluster)RoleBinding points at a (Cluster)Role that was written with * verbs or "
        "resources: whoever it binds can do anything the role covers."
    ),
    severity=Severity.high,
    tactics=("TA0004", "TA0003"),
    techniques=("T1098.006",),
    sources=frozenset(("eks",)),
    kind="rule",
    dedup_window=timedelta(hours=24),
)

_ROLES = frozenset(("clusterroles", "roles"))
_BINDINGS = frozenset(("clusterrolebindings", "rolebindings"))
_WRITES = frozenset(("create", "update", "patch"))
_ROLES_AND_BINDINGS = _ROLES | _BINDINGS
_MAX_ROLES = 2048


def _object(event: Event) -> dict[str, Any]:
    value = payload(event, "request_object")
    return value if isinstance(value, dict) else {}


def _wildcard(obj: dict[str, Any]) -> bool | None:
    """True or False when the object lists its rules; None when it does not say (a patch)."""
    rules = obj.get("rules")
    if not isinstance(rules, list):
        return None
    for rule in rules:
        if isinstance(rule, dict) and (
            "*" in as_list(rule.get("verbs")) or "*" in as_list(rule.get("resources"))
        ):
            return True
    return False


def _role_field(kind: str, namespace: str | None, name: str) -> str:
    return f"ClusterRole/{name}" if kind == "ClusterRole" else f"Role/{namespace}/{name}"


@dataclass(slots=True)
class _Cluster:
    key: str
    roles: dict[str, bool] = field(default_factory=dict)  # field -> wildcard, in time order
    bindings: list[tuple[Event, str, str]] = field(default_factory=list)  # event, field, role


class RoleGrantFamily:
    def __init__(self, *, prefix: str, ttl: int) -> None:
        self._prefix = prefix
        self._ttl = ttl

    def prepare(self, events: Sequence[Event]) -> tuple[list[_Cluster], list[HashRead]]:
        clusters: dict[str, _Cluster] = {}
        for event in sorted(
            (e for e in events if e.source == "eks" and e.action.resource in _ROLES_AND_BINDINGS),
            key=lambda e: e.time,
        ):
            a = event.action
            if a.verb not in _WRITES or not event.outcome.success:
                continue
            scope = f"{event.account}/{event.cluster}"
            cluster = clusters.get(scope)
            if cluster is None:
                key = f"{self._prefix}k8r:{stable_digest(scope)}"
                cluster = clusters[scope] = _Cluster(key)
            obj = _object(event)
            if a.resource in _ROLES:
                wildcard = _wildcard(obj)
                if wildcard is not None and a.object_name:
                    kind = "ClusterRole" if a.resource == "clusterroles" else "Role"
                    cluster.roles[_role_field(kind, a.namespace, a.object_name)] = wildcard
                continue
            ref = obj.get("roleRef")
            if not isinstance(ref, dict) or not ref.get("name"):
                continue
            if is_control_plane_user(event.principal.k8s_username):
                continue
            name = str(ref["name"])
            if name == "cluster-admin":
                continue  # k8s.cluster-admin-binding reports it
            kind = str(ref.get("kind") or "ClusterRole")
            cluster.bindings.append((event, _role_field(kind, a.namespace, name), name))
        ordered = [c for c in clusters.values() if c.roles or c.bindings]
        reads = [
            HashRead(c.key, tuple({f for _, f, _ in c.bindings} | set(c.roles))) for c in ordered
        ]
        return ordered, reads

    def evaluate(
        self, clusters: Sequence[_Cluster], values: Sequence[HashValue]
    ) -> tuple[list[Finding], list[HashWrite]]:
        findings: list[Finding] = []
        writes: list[HashWrite] = []
        for cluster, value in zip(clusters, values, strict=True):
            known = {f for f, v in value.values.items() if v == "1"}
            known |= {f for f, wild in cluster.roles.items() if wild}
            known -= {f for f, wild in cluster.roles.items() if not wild}
            for event, role_field, name in cluster.bindings:
                if role_field not in known:
                    continue
                summary = (
                    f"{display_principal(event)} {event.action.verb} "
                    f"{event.action.resource} {event.action.object_name or ''} binding {name}, "
                    f"a role written with wildcard permissions"
                )
                findings.append(
                    Finding(WILDCARD_BINDING, Hit(summary=summary, discriminator=name), [event])
                )
            op = HashWrite(cluster.key, ttl=self._ttl)
            for role_field, wild in cluster.roles.items():
                if wild and value.size < _MAX_ROLES:
                    op.set[role_field] = "1"
                elif not wild and role_field in value.values:
                    op.delete.append(role_field)
            if op.set or op.delete:
                writes.append(op)
        return findings, writes
