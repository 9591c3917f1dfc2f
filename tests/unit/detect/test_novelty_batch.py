"""Novelty ``prepare`` shortcuts: the same plan as running every observer on every event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from harvester.detect.behaviour import Facts, Novelty, NoveltyFamily, Observation
from harvester.detect.engine import DEFAULT_CATALOG
from harvester.events import Event
from tests.unit.detect.builders import OTHER, T0, ct, instance, k8s, k8s_user, role, sa, sso, user

HOME = "81.2.69.142"
HOME_TOO = "81.2.69.7"  # the same /24
ELSEWHERE = "5.188.10.99"
LAPTOP = "aws-cli/2.15.0 Python/3.11.6 Darwin/23.1.0 exe/x86_64"


def _batch() -> list[Event]:
    """Repeated principals, actions and networks, times out of order and tied."""
    at = [T0 + timedelta(minutes=m) for m in (5, 1, 3, 1, 9, 0, 7, 3, 2, 8, 6, 4)]
    return [
        ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=at[0]),
        ct("ListBuckets", "s3", identity=sso(), ip=HOME_TOO, when=at[1]),
        ct("CreateRole", identity=sso(), ip=ELSEWHERE, when=at[2]),
        ct("DescribeInstances", "ec2", identity=sso(), region="eu-west-1", when=at[3]),
        ct("DescribeInstances", "ec2", identity=sso(), region="eu-west-1", when=at[3]),
        ct("GetSecretValue", "secretsmanager", identity=instance(), ip=HOME, when=at[4]),
        ct("GetSecretValue", "secretsmanager", identity=instance(), ip=ELSEWHERE, when=at[5]),
        ct("GetSecretValue", "secretsmanager", identity=instance(), agent=LAPTOP, when=at[6]),
        ct("ListUsers", identity=user(), ip=HOME, when=at[7]),
        ct("ListUsers", identity=user(), ip=ELSEWHERE, error="AccessDenied", when=at[8]),
        ct("GetObject", "s3", identity=role(account=OTHER), account=OTHER, when=at[9]),
        ct("AssumeRole", "sts", identity=role(), ip="10.0.3.4", when=at[10]),
        k8s("get", "secrets", user=k8s_user(), when=at[11]),
        k8s("create", "pods", subresource="exec", user=k8s_user(), when=at[2]),
        k8s("list", "pods", user=sa("payments", "api"), when=at[1]),
        k8s("get", "pods", user=k8s_user("bob@example.com"), ip=ELSEWHERE, when=at[0]),
        ct("ListBuckets", "s3", identity=sso(), ip=ELSEWHERE, when=at[1]),
    ]


def _plain(family: NoveltyFamily, events: list[Event]) -> list[object]:
    """Every observer on every event; each member's first item in time (then arrival) order."""
    groups: dict[tuple[int, str], list[tuple[Event, Observation]]] = {}
    for event in events:
        facts = Facts.of(event)
        for index, novelty in enumerate(family.novelties):
            if event.source in novelty.spec.sources:
                for obs in novelty.observe(event, facts):
                    groups.setdefault((index, obs.entity), []).append((event, obs))
    out: list[object] = []
    for (index, entity), items in groups.items():
        members = list(dict.fromkeys(obs.member for _, obs in items))
        firsts: dict[str, tuple[str, Observation]] = {}
        for event, obs in sorted(items, key=lambda item: item[0].time):
            firsts.setdefault(obs.member, (event.id, obs))
        out.append((index, entity, members, list(firsts.values())))
    return out


def _planned(family: NoveltyFamily, events: list[Event]) -> list[object]:
    groups, reads = family.prepare(events)
    assert [read.key for read in reads] == [group.key for group in groups]
    return [
        (
            group.novelty,
            group.entity,
            list(group.members),
            [(event.id, obs) for _, _, event, obs in sorted(group.members.values())],
        )
        for group in groups
    ]


def test_prepare_plans_what_every_observer_on_every_event_would() -> None:
    family = NoveltyFamily(
        DEFAULT_CATALOG.novelties, prefix="t:", learning=timedelta(days=7), ttl=60
    )
    events = _batch()
    assert _planned(family, events) == _plain(family, events)
    assert _planned(family, events[::-1]) == _plain(family, events[::-1])


Make = Callable[..., Event]


def _cloudtrail(name: str, service: str, identity: dict[str, Any]) -> Make:
    def make(**change: Any) -> Event:
        fields = {"name": name, "service": service, "identity": identity, "ip": HOME} | change
        return ct(fields.pop("name"), fields.pop("service"), **fields)

    return make


def _kubernetes(verb: str, resource: str, user: dict[str, Any], sub: str | None = None) -> Make:
    def make(**change: Any) -> Event:
        fields = {"verb": verb, "resource": resource, "subresource": sub, "user": user} | change
        return k8s(fields.pop("verb"), fields.pop("resource"), **fields)

    return make


_CASES = [
    *(
        _cloudtrail(name, service, identity)
        for identity in (sso(), instance(), user(), role(), role(account=OTHER))
        for name, service in (("ListBuckets", "s3"), ("GetSecretValue", "secretsmanager"))
    ),
    _kubernetes("get", "secrets", k8s_user()),
    _kubernetes("create", "pods", sa("payments", "api"), sub="exec"),
    _kubernetes("list", "pods", sa("kube-system", "coredns")),
]
# What may differ between two events a facts-level or action-level observer sees alike.
_OTHER_THAN_ACTION = {
    "cloudtrail": [
        {"error": "AccessDenied"},
        {"when": T0 + timedelta(days=3), "read_only": True},
        {"ip": HOME_TOO, "params": {"any": "thing"}},
    ],
    "eks": [{"code": 403}, {"when": T0 + timedelta(days=3)}, {"obj": {"kind": "Pod"}}],
}
_OTHER_THAN_FACTS = {
    "cloudtrail": [{"name": "TerminateInstances", "service": "ec2", "region": "ap-south-1"}],
    "eks": [{"verb": "delete", "resource": "secrets", "namespace": "kube-system"}],
}


@pytest.mark.parametrize(
    "novelty", [n for n in DEFAULT_CATALOG.novelties if n.reads != "event"], ids=lambda n: n.short
)
def test_observers_read_only_what_they_declare(novelty: Novelty) -> None:
    for make in _CASES:
        base = make()
        if base.source not in novelty.spec.sources:
            continue
        changes = _OTHER_THAN_ACTION[base.source]
        if novelty.reads == "facts":
            changes = changes + _OTHER_THAN_FACTS[base.source]
        facts = Facts.of(base)
        for change in changes:
            other = make(**change)
            assert Facts.of(other) == facts
            assert novelty.observe(other, facts) == novelty.observe(base, facts), change
