"""Behavioural detectors: baselines of what each principal, account and cluster usually does.

Two families, each declared as data plus small functions:

* ``Novelty``: a bounded set of members per entity (networks a principal uses, regions of an
  account, actions, user-agent families…) with the event time it was first seen. A member
  never seen before raises a hit once the entity's baseline is older than the learning
  period, measured in *event* time so that a replay of old logs behaves like live traffic.
* ``Burst``: counts per entity in fixed event-time buckets, judged against the entity's own
  decayed peak (errors, AccessDenied, secret and object reads, destructive calls).

Both work on whole batches: ``prepare`` lists the hashes the batch needs (one pipelined read
for everything), ``evaluate`` turns what was read into hits and writes (one pipelined write).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from harvester.detect.features import (
    action_label,
    behaviour_entity,
    display_principal,
    error_is_denied,
    is_control_plane_user,
    is_human,
    is_instance_session,
    network_of,
    offensive_tool,
    ua_family,
)
from harvester.detect.model import DetectorSpec, Hit, Severity, stable_digest
from harvester.detect.rules.base import base_name
from harvester.detect.state import HashRead, HashValue, HashWrite
from harvester.events import Event

__all__ = [
    "BURSTS",
    "NOVELTIES",
    "Baseline",
    "Burst",
    "BurstFamily",
    "Facts",
    "Novelty",
    "NoveltyFamily",
    "Observation",
    "behaviour_spec",
]

BORN = "~b"  # event time (epoch s) of the first observation of the entity
TOUCHED = "~t"  # wall time the key's TTL was last renewed
PEAK = "~pk"
PEAK_AT = "~pa"
_META = (BORN, TOUCHED)


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _when(epoch: str | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(int(float(epoch)), UTC)
    except (ValueError, OverflowError):
        return None


def behaviour_spec(
    id: str,
    *,
    title: str,
    severity: Severity,
    tactics: Iterable[str],
    techniques: Iterable[str],
    description: str,
    sources: Iterable[str] = ("cloudtrail",),
    dedup_window: timedelta = timedelta(hours=24),
    learns: bool = True,
    **parameters: object,
) -> DetectorSpec:
    return DetectorSpec(
        id=id,
        version=1,
        title=title,
        description=description,
        severity=severity,
        tactics=tuple(tactics),
        techniques=tuple(techniques),
        sources=frozenset(s for s in sources if s in ("cloudtrail", "eks")),  # type: ignore[misc]
        kind="behaviour",
        parameters=parameters,
        dedup_window=dedup_window,
        learns=learns,
    )


@dataclass(frozen=True, slots=True)
class Baseline:
    """What is known of an entity when a new member shows up."""

    entity: str
    born: datetime
    size: int
    trained: bool
    key: str

    def days(self, at: datetime) -> int:
        return max(0, int((at - self.born).total_seconds() // 86400))


# Facts and observations are made for every event (several observations each): msgspec
# structs cost a fraction of a frozen dataclass to create.
class Facts(msgspec.Struct, frozen=True, gc=False):
    """What every novelty detector asks of an event, worked out once."""

    entity: str | None
    skip: bool  # AWS acting on its own, or nobody in particular
    network: str | None
    family: str
    instance: bool
    control_plane: bool

    @classmethod
    def of(cls, event: Event) -> Facts:
        return cls.with_network(event, network_of(event.source_ip))

    @classmethod
    def with_network(cls, event: Event, network: str | None) -> Facts:
        """``of`` for a caller that already knows ``network_of(event.source_ip)``."""
        p = event.principal
        return cls(
            entity=behaviour_entity(event),
            skip=p.type in ("aws_service", "unknown", "anonymous") or bool(p.invoked_by),
            network=network,
            family=ua_family(event.user_agent),
            instance=is_instance_session(p),
            control_plane=event.source == "eks" and is_control_plane_user(p.k8s_username),
        )


class Observation(msgspec.Struct, frozen=True, gc=False):
    """One (entity, member) an event shows; ``scope`` overrides the anomaly's dedup scope."""

    entity: str
    member: str
    scope: str | None = None


Observe = Callable[[Event, Facts], Sequence[Observation]]


@dataclass(frozen=True, slots=True)
class Novelty:
    """A first-seen detector.

    ``observe`` lists what an event shows (given facts about it computed once per event);
    ``judge`` decides whether a new member is worth a hit (and how bad), given the baseline.
    ``diverse_at``: an entity with this many members changes too much for novelty to mean
    anything (CI runners, Lambda), so it stays quiet. ``untrained``: whether a new member
    may be judged before the learning period is over.
    """

    spec: DetectorSpec
    short: str
    observe: Observe
    judge: Callable[[Event, str, Baseline], Hit | None]
    max_members: int = 256
    diverse_at: int | None = None
    untrained: Callable[[Event, str], bool] | None = None
    label: str = "values"
    # What ``observe`` reads of an event, so that a batch runs it once per distinct value:
    # "facts" (only the fields facts are made of: principal, source, account, user agent,
    # and the address through ``facts.network``), "action" (those, plus region, cluster and
    # action) or "event" (anything: it runs for every event).
    reads: Literal["facts", "action", "event"] = "event"


@dataclass(slots=True)
class Finding:
    spec: DetectorSpec
    hit: Hit
    events: list[Event]
    sample_key: str | None = None
    sample_label: str = ""


# The first time a group saw a member: (event time, order of arrival, event, observation).
_First = tuple[datetime, int, Event, Observation]


@dataclass(slots=True)
class _Group:
    """One entity's baseline in a batch: each member it showed, with where it first did.

    ``evaluate`` looks at a member once, at its earliest event (the first to arrive among
    equals), so that is all a batch keeps of it; ``members`` is in order of first arrival
    (the fields read).
    """

    novelty: int
    entity: str
    key: str
    members: dict[str, _First] = field(default_factory=dict)


_FACTS, _ACTION, _EVENT = 0, 1, 2
_LEVELS = {"facts": _FACTS, "action": _ACTION, "event": _EVENT}
# What observers saw for one key: the members of the group and the observation.
_Seen = list[tuple[dict[str, _First], Observation]]
# A facts key of a batch: its facts, what observers saw for it, and for each action.
_Known = tuple[Facts, _Seen, dict[tuple[object, ...], _Seen]]
# An observer bound for a batch: novelty index, observe, its groups, what it reads.
_Observer = tuple[int, Observe, dict[str, _Group], int]


class NoveltyFamily:
    def __init__(
        self,
        novelties: Sequence[Novelty],
        *,
        prefix: str,
        learning: timedelta,
        ttl: int,
    ) -> None:
        self.novelties = tuple(novelties)
        self._prefix = prefix
        self._learning = learning
        self._ttl = ttl
        self._by_source: dict[str, list[tuple[int, Novelty]]] = {}
        for index, novelty in enumerate(self.novelties):
            for source in novelty.spec.sources:
                self._by_source.setdefault(source, []).append((index, novelty))

    def prepare(self, events: Sequence[Event]) -> tuple[list[_Group], list[HashRead]]:
        # The per-event loop is the costliest part of scoring: everything that does not
        # depend on the event is bound once per batch, observers run once per distinct
        # value of what they read (``Novelty.reads``), and a member seen again costs a
        # comparison.
        ordered: list[_Group] = []
        groups: list[dict[str, _Group]] = [{} for _ in self.novelties]
        prefix, novelties = self._prefix, self.novelties
        arrival = itertools.count()
        # The observers of a source in catalog order: all of them for a new facts key,
        # those that read more than facts for a new action, and those that read anything.
        new_facts: dict[str, Sequence[_Observer]] = {}
        new_action: dict[str, Sequence[_Observer]] = {}
        every: dict[str, Sequence[_Observer]] = {}
        for source, pairs in self._by_source.items():
            bound = [(i, n.observe, groups[i], _LEVELS[n.reads]) for i, n in pairs]
            # For a new facts key, what action-level observers see is not kept (as if they
            # read the event): in a varied batch most keys never come back, and one that
            # does observes its action again.
            new_facts[source] = [
                (i, observe, mine, _EVENT if level == _ACTION else level)
                for i, observe, mine, level in bound
            ]
            new_action[source] = [o for o in bound if o[3] >= _ACTION]
            every[source] = [o for o in bound if o[3] == _EVENT]
        # Facts depend on these fields only (the address through its network), and a batch
        # repeats the same few principals and actions: what observers saw for the first
        # event of a facts key (or of an action under it) is replayed for the others.
        known: dict[tuple[object, ...], _Known] = {}
        networks: dict[str | None, str | None] = {}
        observers: Sequence[_Observer]
        for event in events:
            source = event.source
            when = event.time
            ip = event.source_ip
            if ip in networks:
                network = networks[ip]
            else:
                network = networks[ip] = network_of(ip)
            seen = (event.principal, source, event.account, network, event.user_agent)
            entry = known.get(seen)
            if entry is None:
                facts = Facts.with_network(event, network)
                by_facts: _Seen = []
                by_action: _Seen = []  # not kept (see new_facts)
                known[seen] = (facts, by_facts, {})
                observers = new_facts.get(source, ())
            else:
                facts, by_facts, actions = entry
                for members, obs in by_facts:
                    if when < members[obs.member][0]:
                        members[obs.member] = (when, next(arrival), event, obs)
                action = (event.region, event.cluster, event.action)
                found = actions.get(action)
                if found is None:
                    by_action = actions[action] = []
                    observers = new_action.get(source, ())
                else:
                    for members, obs in found:
                        if when < members[obs.member][0]:
                            members[obs.member] = (when, next(arrival), event, obs)
                    by_action = found
                    observers = every.get(source, ())
            for index, observe, mine, level in observers:
                for obs in observe(event, facts):
                    group = mine.get(obs.entity)
                    if group is None:
                        key = f"{prefix}nv:{novelties[index].short}:{stable_digest(obs.entity)}"
                        group = mine[obs.entity] = _Group(index, obs.entity, key)
                        ordered.append(group)
                    members = group.members
                    known_first = members.get(obs.member)
                    if known_first is None or when < known_first[0]:
                        members[obs.member] = (when, next(arrival), event, obs)
                    if level == _FACTS:
                        by_facts.append((members, obs))
                    elif level == _ACTION:
                        by_action.append((members, obs))
        reads = [HashRead(g.key, (*_META, *g.members)) for g in ordered]
        return ordered, reads

    def evaluate(
        self, groups: Sequence[_Group], values: Sequence[HashValue], now: datetime
    ) -> tuple[list[Finding], list[HashWrite]]:
        findings: list[Finding] = []
        writes: list[HashWrite] = []
        wall = _epoch(now)
        for group, value in zip(groups, values, strict=True):
            novelty = self.novelties[group.novelty]
            stored = value.values
            size = value.size - sum(1 for m in _META if m in stored)
            # Members in the order their first events happened (then arrived): time and
            # arrival never tie, so events are never compared.
            firsts = sorted(group.members.values())
            first = firsts[0][0]
            born = _when(stored.get(BORN))
            op = HashWrite(group.key, ttl=self._ttl)
            if born is None or first < born:
                born = first
                op.set[BORN] = str(_epoch(first))
            touched = _when(stored.get(TOUCHED))
            if touched is None or wall - _epoch(touched) > 86400:
                op.set[TOUCHED] = str(wall)
            for _, _, event, obs in firsts:
                member = obs.member
                if member in stored:
                    continue
                trained = event.time - born >= self._learning
                quiet = size >= novelty.max_members or (
                    novelty.diverse_at is not None and size >= novelty.diverse_at
                )
                if not quiet and (
                    trained or (novelty.untrained is not None and novelty.untrained(event, member))
                ):
                    baseline = Baseline(group.entity, born, size, trained, group.key)
                    hit = novelty.judge(event, member, baseline)
                    if hit is not None:
                        if obs.scope is not None:
                            hit.scope = obs.scope
                        # One anomaly per detector, entity and day: the new members of
                        # a day are its events, not anomalies of their own.
                        hit.discriminator = hit.discriminator or "new"
                        findings.append(
                            Finding(
                                novelty.spec,
                                hit,
                                [event],
                                sample_key=group.key,
                                sample_label=novelty.label,
                            )
                        )
                if size < novelty.max_members:
                    op.set[member] = str(_epoch(event.time))
                    size += 1
            if op.set:
                writes.append(op)
        return findings, writes


# --- bursts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    """A count per entity and event-time bucket, judged against the entity's own peak.

    ``unit`` says whether an event counts (None: it does not) and, for ``variety`` bursts,
    what distinct thing it adds (an error code). ``entity`` says whose burst it is when not
    the principal's (a source network's), and names it in the summary; ``explain`` says what
    a window's events were (who was tried, how often) in place of the list of units. A burst
    whose spec does not learn is judged from its first event (an attacker's network is
    always new to us).
    """

    spec: DetectorSpec
    short: str
    unit: Callable[[Event], str | None]
    what: str
    minimum: int
    factor: float
    variety: bool = False
    entity: Callable[[Event], str | None] | None = None
    explain: Callable[[Sequence[Event]], str] | None = None


@dataclass(slots=True)
class _Counts:
    burst: int
    entity: str
    key: str
    buckets: dict[int, list[tuple[Event, str]]] = field(default_factory=dict)


_COUNT = "c:"
_VARIETY = "v:"
# A burst bound for a batch: its index, unit, entity (None: the principal's) and groups.
_Counted = tuple[
    int, Callable[[Event], str | None], Callable[[Event], str | None] | None, dict[str, _Counts]
]


class BurstFamily:
    def __init__(
        self,
        bursts: Sequence[Burst],
        *,
        prefix: str,
        learning: timedelta,
        ttl: int,
        bucket: timedelta,
        half_life: timedelta = timedelta(days=7),
    ) -> None:
        self.bursts = tuple(bursts)
        self._prefix = prefix
        self._learning = learning
        self._ttl = ttl
        self._bucket = int(bucket.total_seconds())
        self._half_life = half_life.total_seconds()

    def prepare(self, events: Sequence[Event]) -> tuple[list[_Counts], list[HashRead]]:
        # Per-event loop: most events count for no burst, so the units are all it pays for.
        ordered: list[_Counts] = []
        groups: list[dict[str, _Counts]] = [{} for _ in self.bursts]
        size = self._bucket
        by_source: dict[str, list[_Counted]] = {}
        for event in events:
            principal: str | None = None
            bucket = -1
            counted = by_source.get(event.source)
            if counted is None:
                counted = by_source[event.source] = [
                    (index, burst.unit, burst.entity, groups[index])
                    for index, burst in enumerate(self.bursts)
                    if event.source in burst.spec.sources
                ]
            for index, unit_of, owner_of, mine in counted:
                unit = unit_of(event)
                if unit is None:
                    continue
                if owner_of is not None:
                    entity = owner_of(event)
                    if entity is None:
                        continue
                else:
                    if principal is None:  # the first principal's burst the event counts for
                        principal = behaviour_entity(event)
                        if principal is None:
                            continue
                    entity = principal
                if bucket < 0:
                    bucket = int(event.time.timestamp()) // size * size
                group = mine.get(entity)
                if group is None:
                    short = self.bursts[index].short
                    key = f"{self._prefix}bu:{short}:{stable_digest(entity)}"
                    group = mine[entity] = _Counts(index, entity, key)
                    ordered.append(group)
                items = group.buckets.get(bucket)
                if items is None:
                    items = group.buckets[bucket] = []
                items.append((event, unit))
        return ordered, [HashRead(g.key) for g in ordered]

    def evaluate(
        self, groups: Sequence[_Counts], values: Sequence[HashValue], now: datetime
    ) -> tuple[list[Finding], list[HashWrite]]:
        findings: list[Finding] = []
        writes: list[HashWrite] = []
        for group, value in zip(groups, values, strict=True):
            burst = self.bursts[group.burst]
            stored = value.values
            op = HashWrite(group.key, ttl=self._ttl)
            first = min(e.time for items in group.buckets.values() for e, _ in items)
            born = _when(stored.get(BORN))
            if born is None or first < born:
                born = first
                op.set[BORN] = str(_epoch(first))
            counts, units = self._stored_buckets(stored)
            newest = max([*group.buckets, *counts, *units])
            peak = self._decayed_peak(stored, newest)
            # Buckets two windows older than the newest are complete: they join the peak
            # before anything is judged against it.
            horizon = newest - 2 * self._bucket
            folded = False
            for bucket in sorted(set(counts) | set(units)):
                if bucket >= horizon or bucket in group.buckets:
                    continue
                folded = True
                peak = max(peak, float(self._forget(op, bucket, counts, units, burst.variety)))
            trained = (
                not burst.spec.learns
                or datetime.fromtimestamp(newest, UTC) - born >= self._learning
            )
            # While learning, the bar is higher than the minimum, and never below what the
            # entity was already seen doing.
            floor = burst.minimum if trained else burst.minimum * 2
            threshold = max(floor, math.ceil(burst.factor * peak))
            for bucket, items in sorted(group.buckets.items()):
                listed: set[str] | None = None
                if burst.variety:
                    known = units.setdefault(bucket, set())
                    for unit in {u for _, u in items} - known:
                        op.set[f"{_VARIETY}{bucket}:{unit}"] = "1"
                        known.add(unit)
                    total = len(known)
                    listed = known
                else:
                    total = counts.get(bucket, 0) + len(items)
                    counts[bucket] = total
                    op.incr[f"{_COUNT}{bucket}"] = len(items)
                if total >= threshold:
                    findings.append(
                        self._finding(
                            burst,
                            group,
                            bucket,
                            items,
                            total=total,
                            peak=peak,
                            threshold=threshold,
                            trained=trained,
                            units=listed,
                        )
                    )
                if bucket < horizon:
                    # Late events for a window already complete: counted, then folded (the
                    # delete is applied after the increment).
                    folded = True
                    peak = max(peak, float(self._forget(op, bucket, counts, units, burst.variety)))
            if folded or PEAK not in stored:
                op.set[PEAK] = f"{peak:.3f}"
                op.set[PEAK_AT] = str(newest)
            writes.append(op)
        return findings, writes

    @staticmethod
    def _forget(
        op: HashWrite,
        bucket: int,
        counts: dict[int, int],
        units: dict[int, set[str]],
        variety: bool,
    ) -> int:
        """Drop a completed bucket from state; returns its value for the peak."""
        if variety:
            gone = units.pop(bucket, set())
            op.delete.extend(f"{_VARIETY}{bucket}:{u}" for u in gone)
            return len(gone)
        op.delete.append(f"{_COUNT}{bucket}")
        return counts.pop(bucket, 0)

    def _decayed_peak(self, stored: dict[str, str], at: int) -> float:
        try:
            peak = float(stored.get(PEAK, "0"))
            peak_at = int(stored[PEAK_AT]) if PEAK_AT in stored else None
        except ValueError:
            return 0.0
        if peak_at is not None and at > peak_at:
            peak *= 0.5 ** ((at - peak_at) / self._half_life)
        return peak

    @staticmethod
    def _stored_buckets(stored: dict[str, str]) -> tuple[dict[int, int], dict[int, set[str]]]:
        counts: dict[int, int] = {}
        units: dict[int, set[str]] = {}
        for name, value in stored.items():
            if name.startswith(_COUNT):
                try:
                    counts[int(name[len(_COUNT) :])] = int(value)
                except ValueError:
                    continue
            elif name.startswith(_VARIETY):
                bucket, _, unit = name[len(_VARIETY) :].partition(":")
                try:
                    units.setdefault(int(bucket), set()).add(unit)
                except ValueError:
                    continue
        return counts, units

    def _finding(
        self,
        burst: Burst,
        group: _Counts,
        bucket: int,
        items: list[tuple[Event, str]],
        *,
        total: int,
        peak: float,
        threshold: int,
        trained: bool,
        units: set[str] | None,
    ) -> Finding:
        first = items[0][0]
        minutes = self._bucket // 60
        what = f"{total} distinct {burst.what}" if burst.variety else f"{total} {burst.what}"
        if burst.entity is not None:
            summary = f"{group.entity}: {what} within {minutes} minutes"
        else:
            who = display_principal(first) or group.entity
            summary = f"{who} made {what} within {minutes} minutes"
        if burst.explain is not None:
            summary += f" ({burst.explain([e for e, _ in items])})"
        elif units:
            summary += f" ({', '.join(sorted(units)[:8])})"
        if trained:
            context = (
                f"its usual peak is {peak:.0f} per {minutes} minutes; the alert threshold is "
                f"{threshold}"
            )
        else:
            context = (
                f"its baseline is still being learned (peak so far {peak:.0f} per {minutes} "
                f"minutes); the alert threshold is {threshold}"
            )
        ratio = total / max(threshold, 1)
        severity = burst.spec.severity.raised(1) if ratio >= 3 else burst.spec.severity
        hit = Hit(
            summary=summary,
            context=context,
            severity=severity,
            discriminator=str(bucket),
            # One anomaly per network (or user) targeted, not per account tried from it.
            scope=group.entity if burst.entity is not None else None,
        )
        return Finding(burst.spec, hit, [e for e, _ in items])


# --- the novelty detectors ---------------------------------------------------------------------

# Services whose events are recorded in one region whatever the caller did.
_GLOBAL_SERVICES = frozenset(
    (
        "iam",
        "organizations",
        "route53",
        "route53domains",
        "cloudfront",
        "support",
        "health",
        "signin",
        "sts",
        "account",
        "billingconsole",
        "ce",
        "sso",
        "sso-directory",
        "identitystore",
        "shield",
        "waf",
        "globalaccelerator",
        "trustedadvisor",
        "pricing",
        "budgets",
        "notifications",
        "artifact",
    )
)
_GLOBAL_CALLS = frozenset(("ListBuckets", "ListAllMyBuckets", "GetBucketLocation"))
_SILENT_AGENTS = ("none", "aws-internal")


def _observe_network(event: Event, facts: Facts) -> Sequence[Observation]:
    if facts.skip or facts.instance or facts.entity is None:
        return ()
    if event.source == "eks" and event.principal.type != "k8s_user":
        return ()
    network = facts.network
    if network is None or network == "private":
        return ()
    return (Observation(facts.entity, network),)


def _judge_network(event: Event, member: str, base: Baseline) -> Hit | None:
    who = display_principal(event)
    severity = Severity.low
    if not event.read_only and not is_human(event.principal):
        severity = Severity.medium
    return Hit(
        summary=f"{who} called {action_label(event)} from {event.source_ip}, "
        f"a network ({member}) it had not used",
        context=f"first time in {base.days(event.time)} days of history; it had used "
        f"{base.size} other network(s)",
        severity=severity,
    )


def _regional(event: Event, facts: Facts) -> bool:
    # The facts first: they settle most events without reading the event.
    return (
        not facts.skip
        and facts.network is not None
        and event.source == "cloudtrail"
        and bool(event.region)
        and event.action.service not in _GLOBAL_SERVICES
        and event.action.name not in _GLOBAL_CALLS
    )


def _observe_region_principal(event: Event, facts: Facts) -> Sequence[Observation]:
    if facts.entity is None or not _regional(event, facts):
        return ()
    return (Observation(facts.entity, event.region or ""),)


def _observe_region_account(event: Event, facts: Facts) -> Sequence[Observation]:
    if not event.account or not _regional(event, facts):
        return ()
    account = f"account:{event.account}"
    return (Observation(account, event.region or "", account),)


def _judge_region_principal(event: Event, member: str, base: Baseline) -> Hit | None:
    return Hit(
        summary=f"{display_principal(event)} called {action_label(event)} in {member}, a region "
        "it had never used",
        context=f"first time in {base.days(event.time)} days of history; it had used "
        f"{base.size} other region(s)",
    )


def _judge_region_account(event: Event, member: str, base: Baseline) -> Hit | None:
    return Hit(
        summary=f"account {event.account} saw activity in {member} for the first time: "
        f"{display_principal(event)} called {action_label(event)}",
        context=f"first time in {base.days(event.time)} days of history; the account had used "
        f"{base.size} other region(s)",
    )


# How much a first call to an API says, by service; writes weigh more than reads.
_SENSITIVE_WRITE = {
    "iam": 3,
    "organizations": 3,
    "cloudtrail": 3,
    "kms": 2,
    "secretsmanager": 2,
    "guardduty": 2,
    "config": 2,
    "securityhub": 2,
    "sso": 2,
    "sts": 1,
    "ssm": 1,
}
_SENSITIVE_CALLS = {
    "GetSecretValue": 2,
    "BatchGetSecretValue": 3,
    "GetParameter": 2,
    "GetParameters": 2,
    "GetParametersByPath": 2,
    "GetPasswordData": 3,
    "GetAccountAuthorizationDetails": 2,
    "GetFederationToken": 3,
    "GetSessionToken": 2,
    "SendCommand": 3,
    "StartSession": 3,
    "CreateKeyPair": 2,
    "ImportKeyPair": 2,
    "GetCallerIdentity": 0,
    "AssumeRole": 0,
    "Decrypt": 0,
    "GenerateDataKey": 0,
    "Encrypt": 0,
}


def action_weight(event: Event) -> int:
    name = base_name(event.action.name)
    weight = _SENSITIVE_CALLS.get(name)
    if weight is not None:
        return weight
    if event.read_only:
        return 1 if event.action.service in _SENSITIVE_WRITE else 0
    return _SENSITIVE_WRITE.get(event.action.service, 0)


def _observe_action(event: Event, facts: Facts) -> Sequence[Observation]:
    if event.source != "cloudtrail" or facts.entity is None or facts.skip:
        return ()
    return (Observation(facts.entity, f"{event.action.service}:{base_name(event.action.name)}"),)


def _judge_action(event: Event, member: str, base: Baseline) -> Hit | None:
    weight = action_weight(event)
    if weight < 2 or not event.outcome.success:
        return None
    return Hit(
        summary=f"{display_principal(event)} called {member}{_from(event)}, an API it had "
        "never called",
        context=f"first time in {base.days(event.time)} days of history "
        f"({base.size} distinct actions known)",
        severity=Severity.medium if weight >= 3 else Severity.low,
        tactics=("TA0003", "TA0004") if not event.read_only else ("TA0007", "TA0006"),
    )


def _from(event: Event) -> str:
    return f" from {event.source_ip}" if event.source_ip else ""


def _observe_agent(event: Event, facts: Facts) -> Sequence[Observation]:
    if facts.skip or facts.control_plane or facts.entity is None:
        return ()
    family = facts.family
    if family in _SILENT_AGENTS or family.startswith("service:"):
        return ()
    return (Observation(facts.entity, family),)


def _judge_agent(event: Event, member: str, base: Baseline) -> Hit | None:
    human = is_human(event.principal)
    if human and member in ("browser", "console"):
        return None
    return Hit(
        summary=f"{display_principal(event)} called {action_label(event)} with {member} "
        f"({event.user_agent}), a tool it had never used",
        context=f"first time in {base.days(event.time)} days of history; it had used "
        f"{base.size} other tool(s)",
        severity=Severity.low if human else Severity.medium,
    )


def _observe_key(event: Event, facts: Facts) -> Sequence[Observation]:
    key = event.principal.access_key_id
    if event.source != "cloudtrail" or not key or not key.startswith("AKIA"):
        return ()
    network = facts.network
    if network is None:
        return ()
    return (Observation(key, network, scope=f"key:{key}"),)


def _judge_key(event: Event, member: str, base: Baseline) -> Hit | None:
    if member == "private":
        return None
    return Hit(
        summary=f"access key {event.principal.access_key_id} of {display_principal(event)} was "
        f"used from {event.source_ip} ({member}), a network it had never been used from",
        context=f"first time in {base.days(event.time)} days of history; the key had been used "
        f"from {base.size} other network(s)",
    )


def _instance_members(event: Event, facts: Facts) -> Sequence[Observation]:
    if not facts.instance or event.source != "cloudtrail" or event.principal.invoked_by:
        return ()
    family = facts.family
    if family in _SILENT_AGENTS or family.startswith("service:"):
        return ()
    network = facts.network
    role = event.principal.iam_arn
    if role is None or network is None:
        return ()
    return (Observation(role, f"net:{network}"), Observation(role, f"ua:{family}"))


def _instance_untrained(event: Event, member: str) -> bool:
    # Before the role's habits are known, a call from a public address is still worth a look.
    return member.startswith("net:") and member != "net:private"


def _judge_instance(event: Event, member: str, base: Baseline) -> Hit | None:
    kind, _, value = member.partition(":")
    if value == "private":
        return None
    who = display_principal(event)
    if kind == "net":
        summary = (
            f"{who} (instance credentials) called {action_label(event)} from {event.source_ip}, "
            f"outside the networks the role's instances use"
        )
    else:
        summary = (
            f"{who} (instance credentials) called {action_label(event)} with {value} "
            f"({event.user_agent}), a tool the role's instances never used"
        )
    if not base.trained:
        return Hit(
            summary=summary.replace(
                "outside the networks the role's instances use", "a public address"
            ),
            context="the role's baseline is still being learned",
            severity=Severity.low,
        )
    return Hit(
        summary=summary,
        context=f"first time in {base.days(event.time)} days of history of role "
        f"{event.principal.iam_arn}",
    )


_K8S_SENSITIVE = {
    ("secrets", "get"): 2,
    ("secrets", "list"): 3,
    ("secrets", "watch"): 3,
    ("pods/exec", "create"): 3,
    ("pods/attach", "create"): 3,
    ("pods/portforward", "create"): 2,
    ("nodes/proxy", "get"): 3,
    ("nodes/proxy", "create"): 3,
    ("serviceaccounts/token", "create"): 2,
    ("clusterrolebindings", "create"): 3,
    ("clusterrolebindings", "update"): 3,
    ("clusterrolebindings", "patch"): 3,
    ("rolebindings", "create"): 2,
    ("clusterroles", "create"): 2,
    ("clusterroles", "update"): 2,
    ("clusterroles", "patch"): 2,
    ("roles", "create"): 2,
    ("certificatesigningrequests", "create"): 2,
    ("certificatesigningrequests/approval", "update"): 3,
    ("mutatingwebhookconfigurations", "create"): 3,
    ("validatingwebhookconfigurations", "create"): 2,
    ("daemonsets", "create"): 2,
    ("pods/ephemeralcontainers", "patch"): 2,
    ("pods/ephemeralcontainers", "update"): 2,
}


def _k8s_resource(event: Event) -> str:
    a = event.action
    resource = a.resource or "-"
    return f"{resource}/{a.subresource}" if a.subresource else resource


def _k8s_actor(event: Event, facts: Facts) -> str | None:
    if event.source != "eks" or event.principal.type in ("anonymous", "unknown"):
        return None
    return None if facts.control_plane else facts.entity


def _observe_k8s_user(event: Event, facts: Facts) -> Sequence[Observation]:
    if event.principal.type != "k8s_user" or not event.cluster:
        return ()
    actor = _k8s_actor(event, facts)
    if actor is None:
        return ()
    scope = f"cluster:{event.account}/{event.cluster}"
    return (Observation(scope, actor, scope=scope),)


def _judge_k8s_user(event: Event, member: str, base: Baseline) -> Hit | None:
    # Clusters gain users every week (a new hire, a new team): a first request that reads is
    # how a new engineer starts and is low; one that is sensitive, refused or made with an
    # attack tool is how a stolen identity starts, and keeps the detector's severity.
    sensitive = _K8S_SENSITIVE.get((_k8s_resource(event), event.action.verb or ""), 0) >= 2
    tool = offensive_tool(event.user_agent)
    risky = [
        reason
        for reason, present in (
            ("a sensitive action", sensitive),
            ("refused", not event.outcome.success),
            (f"made with {tool}", tool is not None),
        )
        if present
    ]
    context = f"first time in {base.days(event.time)} days of the cluster's history " + (
        f"({base.size} users known)"
    )
    if risky:
        context += f"; its first request was {' and '.join(risky)}"
    return Hit(
        summary=f"{member} acted on cluster {event.cluster} for the first time: "
        f"{action_label(event)}{_from(event)}",
        context=context,
        severity=None if risky else Severity.low,
        discriminator=member,
    )


def _observe_k8s_action(event: Event, facts: Facts) -> Sequence[Observation]:
    actor = _k8s_actor(event, facts)
    if actor is None or (event.principal.k8s_username or "").startswith("system:node:"):
        return ()
    entity = f"{event.cluster}|{actor}"
    return (Observation(entity, f"{event.action.verb} {_k8s_resource(event)}"),)


def _judge_k8s_action(event: Event, member: str, base: Baseline) -> Hit | None:
    verb, _, resource = member.partition(" ")
    weight = _K8S_SENSITIVE.get((resource, verb), 0)
    if weight < 2 or not event.outcome.success:
        return None
    return Hit(
        summary=f"{display_principal(event)} did {member} on cluster {event.cluster} "
        f"({event.action.namespace or 'all namespaces'}){_from(event)} for the first time",
        context=f"first time in {base.days(event.time)} days of history "
        f"({base.size} distinct verb/resource pairs known)",
        severity=Severity.medium if weight >= 3 else Severity.low,
    )


NOVELTIES: tuple[Novelty, ...] = (
    Novelty(
        behaviour_spec(
            "behav.new-network",
            title="Principal active from a new network",
            severity=Severity.low,
            tactics=["TA0001"],
            techniques=["T1078.004"],
            description=(
                "A principal acted from a /24 (IPv4) or /64 (IPv6) it had never used. Principals "
                "that change networks all the time (CI runners, Lambda) are left out."
            ),
            sources=("cloudtrail", "eks"),
        ),
        "net",
        _observe_network,
        _judge_network,
        diverse_at=24,
        label="networks",
        reads="facts",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-region-principal",
            title="Principal active in a new region",
            severity=Severity.low,
            tactics=["TA0005"],
            techniques=["T1535"],
            description=("A principal made regional calls in a region it had never used."),
        ),
        "rgp",
        _observe_region_principal,
        _judge_region_principal,
        diverse_at=10,
        label="regions",
        reads="action",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-region-account",
            title="Account active in a new region",
            severity=Severity.medium,
            tactics=["TA0005"],
            techniques=["T1535"],
            description=(
                "An account saw regional activity in a region nobody in it had used: unwatched "
                "regions are where resources are started for mining or staging."
            ),
        ),
        "rga",
        _observe_region_account,
        _judge_region_account,
        diverse_at=14,
        label="regions",
        reads="action",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-sensitive-action",
            title="First use of a sensitive API",
            severity=Severity.low,
            tactics=["TA0003", "TA0004"],
            techniques=["T1098", "T1078.004"],
            description=(
                "A principal called, for the first time, an API that matters: IAM, STS, KMS, "
                "Secrets Manager, SSM parameters and commands, Organizations, CloudTrail."
            ),
        ),
        "act",
        _observe_action,
        _judge_action,
        max_members=1024,
        label="actions",
        reads="action",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-user-agent",
            title="Principal using a new tool",
            severity=Severity.low,
            tactics=["TA0001", "TA0005"],
            techniques=["T1078", "T1059.009"],
            description=(
                "A principal called APIs with a user-agent family (aws-cli, boto3, terraform, a "
                "browser…) it had never used; workloads do not change tools on their own."
            ),
            sources=("cloudtrail", "eks"),
        ),
        "ua",
        _observe_agent,
        _judge_agent,
        diverse_at=8,
        label="tools",
        reads="facts",
    ),
    Novelty(
        behaviour_spec(
            "behav.access-key-new-network",
            title="Access key used from a new network",
            severity=Severity.medium,
            tactics=["TA0001", "TA0006"],
            techniques=["T1078.004", "T1552.001"],
            description=(
                "A long-lived access key (AKIA…) was used from a network it had never been used "
                "from."
            ),
        ),
        "key",
        _observe_key,
        _judge_key,
        diverse_at=16,
        label="networks",
        reads="facts",
    ),
    Novelty(
        behaviour_spec(
            "behav.instance-credentials-elsewhere",
            title="Instance credentials used from an unusual place or tool",
            severity=Severity.high,
            tactics=["TA0006", "TA0001"],
            techniques=["T1552.005", "T1078.004"],
            description=(
                "An EC2 instance role's session (named after the instance) was used from a network"
                " or with a tool never seen for that role: the credentials were taken from the "
                "metadata service. Before the role is learned, any public address is reported at "
                "low severity."
            ),
        ),
        "ec2",
        _instance_members,
        _judge_instance,
        diverse_at=32,
        untrained=_instance_untrained,
        label="networks and tools",
        reads="facts",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-k8s-user",
            title="New Kubernetes user",
            severity=Severity.medium,
            tactics=["TA0001"],
            techniques=["T1078.001"],
            description=(
                "A user (person or IAM principal, not a service account) acted on a cluster for "
                "the first time."
            ),
            sources=("eks",),
        ),
        "k8u",
        _observe_k8s_user,
        _judge_k8s_user,
        max_members=4096,
        label="users",
        reads="action",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-k8s-action",
            title="First sensitive Kubernetes action of a user",
            severity=Severity.low,
            tactics=["TA0004", "TA0006"],
            techniques=["T1609", "T1552.007", "T1098"],
            description=(
                "A user or service account did something sensitive (read secrets, exec into pods, "
                "bind roles, mint tokens…) it had never done on that cluster."
            ),
            sources=("eks",),
        ),
        "k8a",
        _observe_k8s_action,
        _judge_k8s_action,
        max_members=512,
        label="verb/resource pairs",
        reads="action",
    ),
)


# --- the burst detectors -----------------------------------------------------------------------


def _denied(event: Event) -> str | None:
    if event.source == "cloudtrail" and not event.outcome.error_code:
        return None  # most events: what error_is_denied() says, without the call
    return "" if error_is_denied(event) else None


def _error_code(event: Event) -> str | None:
    outcome = event.outcome
    if outcome.success:
        return None
    if event.source == "eks":
        return str(outcome.status_code or outcome.error_code or "error")
    return outcome.error_code or None


_SECRET_READS = frozenset(
    (
        "GetSecretValue",
        "BatchGetSecretValue",
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
        "GetParameterHistory",
    )
)


def _secret_read(event: Event) -> str | None:
    if event.source == "eks":
        if event.action.resource != "secrets" or event.action.verb not in ("get", "list"):
            return None
        user = event.principal.k8s_username or ""
        if is_control_plane_user(user) or user.startswith("system:node:"):
            return None
        return ""
    if event.action.service in ("secretsmanager", "ssm") and event.action.name in _SECRET_READS:
        return ""
    return None


def _object_read(event: Event) -> str | None:
    return "" if event.action.service == "s3" and event.action.name == "GetObject" else None


_DESTRUCTIVE = (
    "Delete",
    "Terminate",
    "Remove",
    "Detach",
    "Disable",
    "Stop",
    "Deregister",
    "Revoke",
    "Purge",
    "Cancel",
    "Disassociate",
    "Schedule",
)


def _destructive(event: Event) -> str | None:
    if not event.outcome.success:
        return None
    if event.source == "eks":
        if event.action.verb not in ("delete", "deletecollection"):
            return None
        return None if is_control_plane_user(event.principal.k8s_username) else ""
    if event.read_only or not event.action.name.startswith(_DESTRUCTIVE):
        return None
    return ""


BURSTS: tuple[Burst, ...] = (
    Burst(
        behaviour_spec(
            "behav.access-denied-burst",
            title="Burst of access-denied errors",
            severity=Severity.medium,
            tactics=["TA0007"],
            techniques=["T1580", "T1526"],
            description=(
                "Far more refused calls than the principal's own peak: enumerating what stolen "
                "credentials may do."
            ),
            sources=("cloudtrail", "eks"),
            dedup_window=timedelta(hours=1),
        ),
        "denied",
        _denied,
        "refused calls",
        minimum=15,
        factor=4.0,
    ),
    Burst(
        behaviour_spec(
            "behav.error-variety-burst",
            title="Burst of different error codes",
            severity=Severity.low,
            tactics=["TA0007"],
            techniques=["T1580"],
            description=("Many different error codes in a short time: a tool trying many APIs."),
            sources=("cloudtrail", "eks"),
            dedup_window=timedelta(hours=1),
        ),
        "errvar",
        _error_code,
        "error codes",
        minimum=5,
        factor=2.0,
        variety=True,
    ),
    Burst(
        behaviour_spec(
            "behav.secret-read-burst",
            title="Burst of secret and parameter reads",
            severity=Severity.medium,
            tactics=["TA0006"],
            techniques=["T1555.006", "T1552.007"],
            description=(
                "Far more Secrets Manager, SSM parameter or Kubernetes Secret reads than the "
                "principal's own peak."
            ),
            sources=("cloudtrail", "eks"),
            dedup_window=timedelta(hours=1),
        ),
        "secret",
        _secret_read,
        "secret reads",
        minimum=20,
        factor=5.0,
    ),
    Burst(
        behaviour_spec(
            "behav.object-read-burst",
            title="Burst of S3 object reads",
            severity=Severity.medium,
            tactics=["TA0009", "TA0010"],
            techniques=["T1530"],
            description=(
                "Far more S3 GetObject calls than the principal's own peak: bulk download."
            ),
            dedup_window=timedelta(hours=1),
        ),
        "s3get",
        _object_read,
        "object reads",
        minimum=300,
        factor=8.0,
    ),
    Burst(
        behaviour_spec(
            "behav.destructive-burst",
            title="Burst of destructive calls",
            severity=Severity.high,
            tactics=["TA0040"],
            techniques=["T1485"],
            description=(
                "Far more Delete*, Terminate*, Remove*, Disable*… calls (or Kubernetes deletes) "
                "than the principal's own peak."
            ),
            sources=("cloudtrail", "eks"),
            dedup_window=timedelta(hours=1),
        ),
        "destroy",
        _destructive,
        "destructive calls",
        minimum=15,
        factor=5.0,
    ),
)
