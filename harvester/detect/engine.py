"""The scoring engine: a batch of normalized events in, anomalies out.

One engine runs every detector of the catalog ("declare, then run"): rules on each event,
behavioural baselines on the batch. State is touched in whole batches through a
``StateStore``: one call claims the event ids and reads every hash the batch needs, one call
keeps the claims and writes every change (two round trips with Redis).

Scoring is two-phase so that a worker killed at any point loses nothing and doubles
nothing::

    result = scorer.score(events)      # claims the events (briefly), reads state, decides
    persist(result.anomalies)          # the caller stores anomalies (upsert by dedup key)
    result.commit()                    # keeps the claims for the lateness window, writes state

If the caller dies before ``commit``, the short claims expire and a redelivered batch is
scored again from the same state, giving the same anomalies (same dedup keys). A batch
redelivered after ``commit`` finds its events claimed and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice

import msgspec

from harvester.clock import Clock, utcnow
from harvester.detect import routine as habits
from harvester.detect.behaviour import (
    BURSTS,
    NOVELTIES,
    Burst,
    BurstFamily,
    Finding,
    Novelty,
    NoveltyFamily,
    _Counts,
    _Group,
)
from harvester.detect.behaviour_sensitive import MORE_BURSTS, MORE_NOVELTIES
from harvester.detect.behaviour_signin import SIGN_IN_BURSTS
from harvester.detect.features import (
    action_label,
    behaviour_entity,
    display_principal,
    network_of,
    ua_family,
)
from harvester.detect.grants import WILDCARD_BINDING, RoleGrantFamily, _Cluster
from harvester.detect.incidents import build_incidents
from harvester.detect.model import (
    SCORE_OF,
    Anomaly,
    DetectorSpec,
    Evidence,
    Incident,
    Severity,
    SuppressionRule,
    stable_digest,
)
from harvester.detect.rules import ALL_RULES, Rule, RuleConfig, Subject, base_name
from harvester.detect.rules.base import Check
from harvester.detect.state import (
    ANONYMOUS,
    HashRead,
    HashValue,
    HashWrite,
    MemoryStore,
    StateStore,
)
from harvester.events import Event

__all__ = [
    "DEFAULT_CATALOG",
    "Catalog",
    "EngineConfig",
    "ScanReport",
    "ScoreResult",
    "Scorer",
    "merge_anomaly",
    "scan_events",
]

# Rules defend themselves against odd payloads, but a record of an unexpected shape must
# never stop a batch: these are the errors such a record can raise inside a check.
_RULE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    rules: RuleConfig = field(default_factory=RuleConfig)
    # Behavioural detectors stay quiet until an entity has this much history (event time).
    learning_period: timedelta = timedelta(days=7)
    # How long an event id is remembered: redeliveries within it change nothing.
    dedup_ttl: timedelta = timedelta(hours=6)
    # How long a batch's claim holds before ``commit``: longer than a scoring task may take,
    # shorter than the broker's visibility timeout, so that a batch redelivered because its
    # worker died finds the dead worker's claims gone.
    processing_ttl: timedelta = timedelta(minutes=15)
    # Baselines of entities not seen for this long are forgotten.
    state_ttl: timedelta = timedelta(days=35)
    burst_bucket: timedelta = timedelta(minutes=10)
    key_prefix: str = "ah:"
    evidence_cap: int = 20
    routine_cap: int = 512
    sample_size: int = 6
    disabled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Catalog:
    rules: tuple[Rule, ...]
    novelties: tuple[Novelty, ...]
    bursts: tuple[Burst, ...]
    wildcard_bindings: bool = True

    def specs(self) -> list[DetectorSpec]:
        """Every declaration, with the tunables of behavioural detectors as parameters."""
        novelties = [
            replace(
                n.spec,
                parameters={
                    **n.spec.parameters,
                    "max_members": n.max_members,
                    "quiet_when_members_reach": n.diverse_at,
                },
            )
            for n in self.novelties
        ]
        bursts = [
            replace(
                b.spec,
                parameters={
                    **b.spec.parameters,
                    "minimum": b.minimum,
                    "factor_over_peak": b.factor,
                },
            )
            for b in self.bursts
        ]
        return [
            *(r.spec for r in self.rules),
            *((WILDCARD_BINDING,) if self.wildcard_bindings else ()),
            *novelties,
            *bursts,
        ]

    def without(self, disabled: Iterable[str]) -> Catalog:
        off = frozenset(disabled)
        if not off:
            return self
        return Catalog(
            tuple(r for r in self.rules if r.spec.id not in off),
            tuple(n for n in self.novelties if n.spec.id not in off),
            tuple(b for b in self.bursts if b.spec.id not in off),
            self.wildcard_bindings and WILDCARD_BINDING.id not in off,
        )


DEFAULT_CATALOG = Catalog(
    ALL_RULES, (*NOVELTIES, *MORE_NOVELTIES), (*BURSTS, *MORE_BURSTS, *SIGN_IN_BURSTS)
)


@dataclass(slots=True)
class ScoreResult:
    anomalies: list[Anomaly]
    suppressed: list[Anomaly]
    events: int
    fresh: int
    errors: int
    _store: StateStore
    _claims: list[str]
    _writes: list[HashWrite]
    _dedup_ttl: int
    _done: bool = False

    @property
    def duplicates(self) -> int:
        return self.events - self.fresh

    def commit(self) -> None:
        """Make the batch count: keep its event ids for the lateness window, learn from it."""
        if self._done:
            return
        self._store.confirm_and_write(self._claims, self._dedup_ttl, self._writes)
        self._done = True

    def abort(self) -> None:
        """Give the events back (the anomalies could not be stored): a retry scores them."""
        if self._done:
            return
        self._store.release(self._claims)
        self._done = True


@dataclass(frozen=True, slots=True)
class _Plan:
    novelty_groups: list[_Group]
    burst_groups: list[_Counts]
    routine: list[tuple[str, list[str]]]
    grant_groups: list[_Cluster]
    reads: list[HashRead]


def _narrowed(
    store: StateStore,
    wanted: Sequence[HashRead],
    asked: Sequence[HashRead],
    answers: Sequence[HashValue],
) -> list[HashValue]:
    """Answers to ``wanted`` from those to ``asked``, which covered more events.

    Fewer events need the same hashes with fewer fields, so each wanted read is found among
    those asked and limited to its own fields: what reading it alone would have returned.
    A read that was not asked (no detector plans that way) goes to the store.
    """
    by_key = {read.key: (read, value) for read, value in zip(asked, answers, strict=True)}
    out: list[HashValue | None] = []
    missing: list[int] = []
    for read in wanted:
        found = by_key.get(read.key)
        if found is None or (
            found[0].fields is not None
            and (read.fields is None or not set(read.fields) <= set(found[0].fields))
        ):
            missing.append(len(out))
            out.append(None)
        elif read.fields is None:
            out.append(found[1])
        else:
            values = found[1].values
            out.append(HashValue({f: values[f] for f in read.fields if f in values}, found[1].size))
    if missing:
        for index, value in zip(missing, store.read([wanted[i] for i in missing]), strict=True):
            out[index] = value
    return [value for value in out if value is not None]


# The checks of the rules an event may trigger, with their declarations.
_Checks = tuple[tuple[DetectorSpec, Check], ...]


@dataclass(slots=True)
class _Draft:
    spec: DetectorSpec
    finding: Finding
    events: dict[str, Event]
    severity: Severity
    score: int
    identity: str
    sample_key: str | None
    sample_label: str


class Scorer:
    """Runs the catalog over batches of events with state in ``store``."""

    def __init__(
        self,
        *,
        store: StateStore,
        config: EngineConfig | None = None,
        clock: Clock = utcnow,
        catalog: Catalog = DEFAULT_CATALOG,
    ) -> None:
        self.config = config or EngineConfig()
        self.store = store
        self.clock = clock
        self.catalog = catalog.without(self.config.disabled)
        cfg = self.config
        ttl = int(cfg.state_ttl.total_seconds())
        self._novelty = NoveltyFamily(
            self.catalog.novelties, prefix=cfg.key_prefix, learning=cfg.learning_period, ttl=ttl
        )
        self._bursts = BurstFamily(
            self.catalog.bursts,
            prefix=cfg.key_prefix,
            learning=cfg.learning_period,
            ttl=ttl,
            bucket=cfg.burst_bucket,
        )
        self._grants = (
            RoleGrantFamily(prefix=cfg.key_prefix, ttl=ttl)
            if self.catalog.wildcard_bindings
            else None
        )
        self._ttl = ttl
        self._by_name: dict[str, list[Rule]] = {}
        self._by_resource: dict[str, list[Rule]] = {}
        self._any: dict[str, list[Rule]] = {"cloudtrail": [], "eks": []}
        for rule in self.catalog.rules:
            for source in rule.spec.sources:
                if source == "cloudtrail" and rule.names is not None:
                    for name in rule.names:
                        self._by_name.setdefault(name, []).append(rule)
                elif source == "eks" and rule.resources is not None:
                    for resource in rule.resources:
                        self._by_resource.setdefault(resource, []).append(rule)
                else:
                    self._any[source].append(rule)
        # The rules an event may trigger, by source, outcome (failed, succeeded) and the
        # event's own name or resource: filled as names show up, so the per-event lookup is
        # one dict get without base_name().
        self._candidates: dict[str, tuple[dict[str | None, _Checks], dict[str | None, _Checks]]] = {
            "cloudtrail": ({}, {}),
            "eks": ({}, {}),
        }

    # --- the batch ---------------------------------------------------------------------------

    def score(
        self,
        events: Sequence[Event],
        *,
        suppressions: Sequence[SuppressionRule] = (),
        owner: str = ANONYMOUS,
    ) -> ScoreResult:
        """Claim, read, decide; ``commit`` or ``abort`` the result.

        ``owner`` names the work this batch is (a task id): if its state could not be
        written, a retry under the same owner takes its pending claims back and scores the
        events again, where anyone else would skip them as claimed.
        """
        cfg = self.config
        claims = self._claim_keys(events)
        # Claims and state travel in one round trip, so the state a batch needs is worked out
        # before the claims answer which events are new: from every event, on the bet that a
        # batch is new (a redelivery is the rare case, and then only the new events count).
        # A request logged before it was authorized says nothing yet; later stages of one
        # request share its audit id, so the claim keeps whichever stage arrives first.
        final = [
            i
            for i, e in enumerate(events)
            if e.source != "eks" or e.event_type != "RequestReceived"
        ]
        candidates = [events[i] for i in final]
        checked = self._check(candidates)
        plan = self._plan(candidates, [f for found, _ in checked for f in found])
        taken, values = self.store.claim_and_read(
            claims, int(cfg.processing_ttl.total_seconds()), plan.reads, owner
        )
        claimed = [k for k, new in zip(claims, taken, strict=True) if new]
        kept = [n for n, i in enumerate(final) if taken[i]]
        if len(kept) < len(final):
            candidates = [candidates[n] for n in kept]
            checked = [checked[n] for n in kept]
            known = plan
            plan = self._plan(candidates, [f for found, _ in checked for f in found])
            values = _narrowed(self.store, plan.reads, known.reads, values)
        fresh = candidates
        errors = sum(failed for _, failed in checked)
        rule_findings = [f for found, _ in checked for f in found]

        now = self.clock()
        n1 = len(plan.novelty_groups)
        n2 = n1 + len(plan.burst_groups)
        n3 = n2 + len(plan.routine)
        novelty_findings, writes = self._novelty.evaluate(plan.novelty_groups, values[:n1], now)
        burst_findings, burst_writes = self._bursts.evaluate(plan.burst_groups, values[n1:n2], now)
        writes.extend(burst_writes)
        kept_findings, routine_writes = self._routine_filter(
            rule_findings, plan.routine, values[n2:n3], now
        )
        writes.extend(routine_writes)
        grant_findings: list[Finding] = []
        if self._grants is not None:
            grant_findings, grant_writes = self._grants.evaluate(plan.grant_groups, values[n3:])
            writes.extend(grant_writes)

        shown: list[Anomaly] = []
        muted: list[Anomaly] = []
        found = [*kept_findings, *grant_findings, *novelty_findings, *burst_findings]
        for anomaly in self._anomalies(found):
            muting = any(rule.matches(anomaly, now) for rule in suppressions)
            (muted if muting else shown).append(anomaly)
        return ScoreResult(
            anomalies=shown,
            suppressed=muted,
            events=len(events),
            fresh=len(fresh),
            errors=errors,
            _store=self.store,
            _claims=claimed,
            _writes=writes,
            _dedup_ttl=int(cfg.dedup_ttl.total_seconds()),
        )

    def _plan(self, events: Sequence[Event], findings: Sequence[Finding]) -> _Plan:
        """Every hash the batch reads: novelty, bursts, routine rule hits, role grants."""
        novelty_groups, novelty_reads = self._novelty.prepare(events)
        burst_groups, burst_reads = self._bursts.prepare(events)
        routine, routine_reads = self._routine_reads(findings)
        grant_groups, grant_reads = self._grants.prepare(events) if self._grants else ([], [])
        return _Plan(
            novelty_groups,
            burst_groups,
            routine,
            grant_groups,
            [*novelty_reads, *burst_reads, *routine_reads, *grant_reads],
        )

    def score_and_commit(
        self, events: Sequence[Event], *, suppressions: Sequence[SuppressionRule] = ()
    ) -> ScoreResult:
        """For callers that keep anomalies in memory (``scan``): nothing to persist first."""
        result = self.score(events, suppressions=suppressions)
        result.commit()
        return result

    def _claim_keys(self, events: Sequence[Event]) -> list[str]:
        """The key that claims each event: ``<prefix>seen:<digest of source and id>``."""
        prefix = f"{self.config.key_prefix}seen:"
        digest = stable_digest
        return [prefix + digest(e.source, e.id)[:24] for e in events]

    # --- rules ---------------------------------------------------------------------------------

    def _candidates_for(self, event: Event) -> _Checks:
        """The rules an event may trigger: indexed by name or resource, and by outcome."""
        source = event.source
        success = event.outcome.success
        if source == "eks":
            raw: str | None = event.action.resource
            token, index = raw or "", self._by_resource
        else:
            raw = event.action.name
            token, index = base_name(raw), self._by_name
        known = self._candidates.setdefault(source, ({}, {}))[success]
        found = known.get(raw)
        if found is None:
            found = known[raw] = tuple(
                (rule.spec, rule.check)
                for rule in (*index.get(token, ()), *self._any.get(source, ()))
                if (rule.successes if success else rule.failures)
            )
        return found

    def _check(self, events: Sequence[Event]) -> list[tuple[Sequence[Finding], int]]:
        """Rule findings and check errors of each event (this loop runs for every event)."""
        config = self.config.rules
        tables = self._candidates
        out: list[tuple[Sequence[Finding], int]] = []
        nothing: tuple[Sequence[Finding], int] = ((), 0)
        for event in events:
            source = event.source
            name = event.action.resource if source == "eks" else event.action.name
            known = tables.get(source)
            found = None if known is None else known[event.outcome.success].get(name)
            if found is None:
                found = self._candidates_for(event)
            if not found:
                out.append(nothing)
                continue
            subject = Subject(event)
            findings: list[Finding] = []
            errors = 0
            for spec, check in found:
                try:
                    hit = check(subject, config)
                except _RULE_ERRORS:
                    errors += 1
                    continue
                if hit is not None:
                    findings.append(Finding(spec, hit, [event]))
            out.append((findings, errors) if findings or errors else nothing)
        return out

    def _routine_key(self, finding: Finding) -> str:
        entity = _identity(finding.events[0])
        return f"{self.config.key_prefix}rt:{finding.spec.id}:{stable_digest(entity)}"

    def _routine_reads(
        self, findings: Sequence[Finding]
    ) -> tuple[list[tuple[str, list[str]]], list[HashRead]]:
        wanted: dict[str, dict[str, None]] = {}
        for finding in findings:
            if finding.hit.routine_key is not None:
                fields = wanted.setdefault(self._routine_key(finding), {})
                network, agent = _place_fields(finding.events[0])
                fields.update({finding.hit.routine_key[:200]: None, habits.DAYS_FIELD: None})
                fields.update({network: None, agent: None})
        plan = [(key, list(fields)) for key, fields in wanted.items()]
        return plan, [HashRead(key, tuple(fields)) for key, fields in plan]

    def _routine_filter(
        self,
        findings: Sequence[Finding],
        plan: Sequence[tuple[str, list[str]]],
        values: Sequence[HashValue],
        now: datetime,
    ) -> tuple[list[Finding], list[HashWrite]]:
        """Grade routine hits by the actor's habit (``harvester.detect.routine``)."""
        # Each hash as this batch leaves it, so later hits in the batch see earlier ones.
        known = {key: dict(value.values) for (key, _), value in zip(plan, values, strict=True)}
        sizes = {key: value.size for (key, _), value in zip(plan, values, strict=True)}
        writes: dict[str, HashWrite] = {}
        kept: list[Finding] = []
        for finding in findings:
            hit = finding.hit
            if hit.routine_key is None:
                kept.append(finding)
                continue
            key = self._routine_key(finding)
            fields = known[key]
            event = finding.events[0]
            today = habits.epoch_day(event.time)
            field_name = hit.routine_key[:200]
            network, agent = _place_fields(event)
            days = habits.prior_days(fields.get(habits.DAYS_FIELD), today)
            # Places are only judged once some are recorded (hashes from before they were).
            places = any(f.startswith(("n:", "u:")) for f in fields)
            graded = habits.grade(
                rule_severity=hit.severity or finding.spec.severity,
                days=days,
                key_known=field_name in fields,
                new_network=places and network not in fields,
                new_agent=places and agent not in fields,
                network=network[2:],
                agent=agent[2:],
            )
            context = " ".join(p for p in (hit.context, graded.context) if p)
            kept.append(
                replace(
                    finding,
                    hit=replace(
                        hit,
                        severity=graded.severity or hit.severity,
                        context=context,
                        discriminator=habits.FOLD,
                    ),
                )
            )
            op = writes.setdefault(key, HashWrite(key, ttl=self._ttl))
            updates = {habits.DAYS_FIELD: habits.with_day(fields.get(habits.DAYS_FIELD), today)}
            stamp = str(int(event.time.timestamp()))
            for name in (field_name, network, agent):
                if name not in fields and sizes[key] < self.config.routine_cap:
                    updates[name] = stamp
                    sizes[key] += 1
            fields.update(updates)
            op.set.update(updates)
        return kept, list(writes.values())

    # --- anomalies -----------------------------------------------------------------------------

    def _anomalies(self, findings: Sequence[Finding]) -> list[Anomaly]:
        drafts: dict[str, _Draft] = {}
        for finding in findings:
            first = finding.events[0]
            identity = _identity(first)
            scope = finding.hit.scope or identity
            window = max(1, int(finding.spec.dedup_window.total_seconds()))
            bucket = int(first.time.timestamp()) // window
            dedup = stable_digest(finding.spec.id, scope, finding.hit.discriminator, str(bucket))
            severity = finding.hit.severity or finding.spec.severity
            score = finding.hit.score if finding.hit.score is not None else SCORE_OF[severity]
            draft = drafts.get(dedup)
            if draft is None:
                drafts[dedup] = _Draft(
                    finding.spec,
                    finding,
                    {e.id: e for e in finding.events},
                    severity,
                    score,
                    identity,
                    finding.sample_key,
                    finding.sample_label,
                )
                continue
            for event in finding.events:
                draft.events.setdefault(event.id, event)
            if severity.rank > draft.severity.rank:
                draft.severity, draft.finding = severity, finding
            draft.score = max(draft.score, score)
        samples = self._samples(drafts.values())
        return [self._anomaly(dedup, d, samples) for dedup, d in drafts.items()]

    def _samples(self, drafts: Iterable[_Draft]) -> dict[str, list[str]]:
        keys = sorted({d.sample_key for d in drafts if d.sample_key})
        if not keys:
            return {}
        found = self.store.sample(keys, self.config.sample_size + 4)
        return {
            key: sorted(m for m in members if not m.startswith("~"))[: self.config.sample_size]
            for key, members in zip(keys, found, strict=True)
        }

    def _anomaly(self, dedup: str, draft: _Draft, samples: dict[str, list[str]]) -> Anomaly:
        events = sorted(draft.events.values(), key=lambda e: e.time)
        first = events[0]
        hit = draft.finding.hit
        count = len(events)
        explanation = _sentence(hit.summary)
        if hit.context:
            explanation += " " + _sentence(hit.context)
        usual = samples.get(draft.sample_key or "")
        if usual:
            explanation += f" Its usual {draft.sample_label} include: {', '.join(usual)}."
        if count > 1:
            explanation += f" {count} events in all."
        score = min(100, draft.score + min(5, int(math.log2(count))))
        return Anomaly(
            id=f"an-{dedup[:16]}",
            dedup_key=dedup,
            detector=draft.spec.id,
            detector_version=draft.spec.version,
            title=hit.title or draft.spec.title,
            severity=draft.severity,
            score=score,
            account_id=first.account,
            region=first.region,
            cluster=first.cluster,
            principal=display_principal(first),
            identity=draft.identity,
            source_ip=first.source_ip,
            first_seen=first.time,
            last_seen=events[-1].time,
            count=count,
            explanation=explanation,
            evidence=tuple(_evidence(e) for e in events[: self.config.evidence_cap]),
            mitre_tactics=hit.tactics or draft.spec.tactics,
            mitre_techniques=draft.spec.techniques,
        )


def _place_fields(event: Event) -> tuple[str, str]:
    """The routine hash fields that record where and with what an actor did something."""
    return f"n:{network_of(event.source_ip) or '-'}", f"u:{ua_family(event.user_agent)}"


def _identity(event: Event) -> str:
    return behaviour_entity(event) or display_principal(event) or "-"


def _sentence(text: str) -> str:
    # Sentences often start with an ARN or a user name: their case is left as it is.
    text = text.strip()
    if not text:
        return ""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _evidence(event: Event) -> Evidence:
    return Evidence(
        event_id=event.id,
        time=event.time,
        source=event.source,
        action=action_label(event),
        bucket=event.raw.bucket,
        key=event.raw.key,
        index=event.raw.index,
    )


def merge_anomaly(old: Anomaly, new: Anomaly, *, cap: int = 20) -> Anomaly:
    """The same anomaly seen again (same dedup key): more events, a wider window.

    Events already in the evidence are not counted twice, so storing one batch's anomalies
    twice leaves them as they were.
    """
    known = {e.event_id for e in old.evidence}
    added = [e for e in new.evidence if e.event_id not in known]
    overlap = len(new.evidence) - len(added)
    evidence = tuple(sorted((*old.evidence, *added), key=lambda e: e.time)[:cap])
    worse = new.severity.rank > old.severity.rank
    return msgspec.structs.replace(
        old,
        count=old.count + max(0, new.count - overlap),
        first_seen=min(old.first_seen, new.first_seen),
        last_seen=max(old.last_seen, new.last_seen),
        evidence=evidence,
        severity=new.severity if worse else old.severity,
        score=max(old.score, new.score),
        explanation=new.explanation if worse else old.explanation,
        title=new.title if worse else old.title,
    )


# --- scan: everything in memory ------------------------------------------------------------------


@dataclass(slots=True)
class ScanReport:
    anomalies: list[Anomaly]
    incidents: list[Incident]
    events: int
    duplicates: int
    errors: int
    # Anomalies left out by ``max_anomalies`` (the least severe first).
    dropped: int = 0


def _batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def scan_events(
    events: Iterable[Event],
    *,
    config: EngineConfig | None = None,
    clock: Clock = utcnow,
    store: StateStore | None = None,
    suppressions: Sequence[SuppressionRule] = (),
    batch_size: int = 5000,
    incident_window: timedelta = timedelta(hours=1),
    max_anomalies: int | None = None,
) -> ScanReport:
    """Score a stream of events with state in memory: the engine behind ``harvester scan``.

    With ``max_anomalies``, memory stays bounded however many anomalies the input raises:
    beyond it the least severe are dropped (and counted), a quarter of the cap at a time.
    """
    scorer = Scorer(store=store if store is not None else MemoryStore(), config=config, clock=clock)
    cap = scorer.config.evidence_cap
    merged: dict[str, Anomaly] = {}
    total = duplicates = errors = dropped = 0
    for batch in _batches(events, batch_size):
        result = scorer.score_and_commit(batch, suppressions=suppressions)
        total += result.events
        duplicates += result.duplicates
        errors += result.errors
        for anomaly in result.anomalies:
            old = merged.get(anomaly.dedup_key)
            merged[anomaly.dedup_key] = (
                anomaly if old is None else merge_anomaly(old, anomaly, cap=cap)
            )
        if max_anomalies is not None and len(merged) > max_anomalies * 5 // 4:
            dropped += _drop_least_severe(merged, max_anomalies)
    if max_anomalies is not None and len(merged) > max_anomalies:
        dropped += _drop_least_severe(merged, max_anomalies)
    anomalies = sorted(merged.values(), key=lambda a: (a.first_seen, a.detector))
    incidents = build_incidents(anomalies, window=incident_window)
    return ScanReport(anomalies, incidents, total, duplicates, errors, dropped)


def _drop_least_severe(merged: dict[str, Anomaly], keep: int) -> int:
    ranked = sorted(merged.values(), key=lambda a: (a.severity.rank, a.score, a.last_seen))
    gone = ranked[: len(ranked) - keep]
    for anomaly in gone:
        del merged[anomaly.dedup_key]
    return len(gone)
