"""Detection quality and throughput: ``python -m benchmarks.detection`` (under a minute).

An evaluation that cannot flatter. Sets are of two kinds: the *tuning* sets (the labelled
public corpora and the generated organization ``org-tuning``) that detectors are written
against, and the *check* set (``org-check``: another generated organization, seed, size and
mix) that nobody tunes on; its figures are printed in a section of their own.

Recall. ``benchmarks/expected_detectors.yaml`` declares, for every labelled attack group, the
detectors meant to find it. An attack is found *strictly* when one of those raised an alert
(low or above; info is logged, not alerted) on its events; *any-alert* recall counts any alert.
A group declared with no detector counts as a miss.

Precision. A false positive is an alert whose events are all benign. Corpus events are scored
one by one with empty state; the generated organizations are replayed in time order through
one scorer, and every anomaly counts, those first seen during the learning period included.
Rates per 10,000 benign events: a detector that does not learn (``DetectorSpec.learns``) is
measured over all benign events, one that learns over those after the learning period; the
set's rate is the sum. The Panther negative cases' alert rate at medium or above, and a
per-detector false-positive table. Every anomaly must carry an explanation and evidence.

Targets of issue 13 are printed as ``TARGET MET`` / ``TARGET NOT MET`` at the end.
Throughput: events scored per second in this process with the memory store and with Redis
(``HARVESTER_TEST_REDIS_URL`` or redis://127.0.0.1:6379/9; skipped when unreachable).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from benchmarks.expected import Expected, load_expected
from benchmarks.peers.cases import CORPORA, CORPUS, Case
from harvester.detect.engine import DEFAULT_CATALOG, EngineConfig, Scorer, merge_anomaly
from harvester.detect.incidents import build_incidents
from harvester.detect.model import Anomaly, Incident, Severity
from harvester.detect.rules import RuleConfig
from harvester.detect.state import MemoryStore, RedisStore, StateStore
from harvester.events import Event, InvalidRecordError, normalize_cloudtrail, normalize_k8s

REDIS_URL = os.environ.get("HARVESTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
_FIXED_NOW = datetime(2030, 1, 1, tzinfo=UTC)

# An anomaly is an alert from this severity on; info is kept for the record, not alerted.
ALERT = Severity.low
# Issue 13's targets.
TARGET_STRICT_RECALL = 0.9
TARGET_PANTHER_NEGATIVES = 0.03
TARGET_FP_MEDIUM_PER_10K = 2.0

Purpose = Literal["tuning", "checking"]
PANTHER = ("panther-analysis/cloudtrail", "panther-analysis/k8s_audit")


def _at_least(anomaly: Anomaly, floor: Severity) -> bool:
    return anomaly.severity.rank >= floor.rank


def _unexplained(anomalies: Iterable[Anomaly]) -> int:
    return sum(1 for a in anomalies if not (a.explanation.strip() and a.evidence))


def _learns() -> dict[str, bool]:
    return {spec.id: spec.learns for spec in DEFAULT_CATALOG.specs()}


@dataclass(slots=True)
class FalsePositives:
    """Per detector: benign alerts (low or above) and how many of them were medium or above."""

    alerts: Counter[str] = field(default_factory=Counter)
    medium: Counter[str] = field(default_factory=Counter)

    def add(self, anomalies: Iterable[Anomaly]) -> None:
        for anomaly in anomalies:
            if _at_least(anomaly, ALERT):
                self.alerts[anomaly.detector] += 1
            if _at_least(anomaly, Severity.medium):
                self.medium[anomaly.detector] += 1

    def top(self, count: int = 8) -> list[tuple[str, int, int]]:
        return [(d, n, self.medium[d]) for d, n in self.alerts.most_common(count)]


# --- the labelled corpora ------------------------------------------------------------------------


@dataclass(slots=True)
class CorpusResult:
    name: str
    attacks: int = 0
    strict: int = 0
    any_alert: int = 0
    benign: int = 0
    false_positives: int = 0  # benign events with an alert
    false_positives_medium: int = 0  # benign events with an alert of medium or above
    other: int = 0
    skipped: int = 0
    fp: FalsePositives = field(default_factory=FalsePositives)
    found_by: Counter[str] = field(default_factory=Counter)  # detector → attack events alerted
    strict_misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    undeclared: set[str] = field(default_factory=set)
    anomalies: int = 0
    unexplained: int = 0

    @property
    def strict_recall(self) -> float:
        return self.strict / self.attacks if self.attacks else float("nan")

    @property
    def any_recall(self) -> float:
        return self.any_alert / self.attacks if self.attacks else float("nan")

    @property
    def fp_per_10k(self) -> float:
        return self.false_positives * 10_000 / self.benign if self.benign else float("nan")

    @property
    def fp_medium_rate(self) -> float:
        """Share of benign events with an alert of medium or above."""
        return self.false_positives_medium / self.benign if self.benign else float("nan")


def score_alone(event: Event, config: EngineConfig) -> list[Anomaly]:
    """One event, empty state: what the rules (and untrained baselines) say about it."""
    scorer = Scorer(store=MemoryStore(), config=config, clock=lambda: _FIXED_NOW)
    return scorer.score_and_commit([event]).anomalies


def normalize_case(case: Case, *, key: str, index: int) -> Event:
    """A corpus record as the harvester would see it."""
    if case.kind == "cloudtrail":
        return normalize_cloudtrail(case.record, bucket="corpus", key=key, index=index)
    return normalize_k8s(
        case.record,
        cluster="corpus",
        account=None,
        region=None,
        bucket="corpus",
        key=key,
        index=index,
    )


def evaluate_corpus(
    name: str,
    corpus: Path = CORPUS,
    config: EngineConfig | None = None,
    expected: Expected | None = None,
) -> CorpusResult:
    config = config or EngineConfig()
    expected = expected or load_expected()
    result = CorpusResult(name)
    for index, item in enumerate(CORPORA[name](corpus)):
        try:
            event = normalize_case(item, key=name, index=index)
        except InvalidRecordError:
            result.skipped += 1
            continue
        anomalies = score_alone(event, config)
        result.anomalies += len(anomalies)
        result.unexplained += _unexplained(anomalies)
        alerts = [a for a in anomalies if _at_least(a, ALERT)]
        if item.label == "attack":
            _count_attack(result, item, alerts, expected)
        elif item.label == "benign":
            result.benign += 1
            result.fp.add(anomalies)
            result.false_positives += bool(alerts)
            result.false_positives_medium += any(_at_least(a, Severity.medium) for a in alerts)
        else:
            result.other += 1
    return result


def _count_attack(
    result: CorpusResult, item: Case, alerts: list[Anomaly], expected: Expected
) -> None:
    result.attacks += 1
    fired = {a.detector for a in alerts}
    result.found_by.update(fired)
    result.any_alert += bool(fired)
    meant = expected.meant(result.name, item.group)
    if meant is None:
        result.undeclared.add(item.group)
        meant = ()
    if fired & set(meant):
        result.strict += 1
    else:
        credit = f" (alerted by {', '.join(sorted(fired))})" if fired else ""
        result.strict_misses[item.group].append(f"{item.note or '-'}{credit}")


def print_corpus(result: CorpusResult, *, verbose: bool) -> None:
    print(
        f"\n== {result.name} [tuning]: strict recall {result.strict}/{result.attacks} = "
        f"{result.strict_recall:.3f}, any-alert recall {result.any_alert}/{result.attacks} = "
        f"{result.any_recall:.3f}"
    )
    print(
        f"   benign events alerted: {result.false_positives}/{result.benign} = "
        f"{result.fp_per_10k:.0f} per 10,000; at medium or above {result.false_positives_medium}"
        f" = {result.fp_medium_rate:.1%}; {result.other} other-labelled and {result.skipped} "
        f"unparseable events not counted"
    )
    print(f"   anomalies without explanation or evidence: {result.unexplained}/{result.anomalies}")
    if result.undeclared:
        print(f"   groups missing from expected_detectors.yaml: {sorted(result.undeclared)}")
    _print_fp_table(result.fp)
    if result.strict_misses:
        misses = sum(len(v) for v in result.strict_misses.values())
        print(f"   strict misses ({misses} events in {len(result.strict_misses)} groups):")
        for group, notes in sorted(result.strict_misses.items()):
            detail = "; ".join(notes) if verbose else f"{len(notes)} event(s)"
            print(f"     - {group}: {detail}")


def _print_fp_table(fp: FalsePositives, rates: dict[str, float] | None = None) -> None:
    if not fp.alerts:
        print("   false positives by detector: none")
        return
    print("   false positives by detector (top):")
    print(f"     {'detector':44} {'alerts':>6} {'>=medium':>8}" + ("  per 10k" if rates else ""))
    for detector, alerts, medium in fp.top():
        rate = f"  {rates[detector]:8.2f}" if rates and detector in rates else ""
        print(f"     {detector:44} {alerts:6d} {medium:8d}{rate}")


@dataclass(slots=True)
class Pooled:
    attacks: int
    strict: int
    any_alert: int
    benign: int
    false_positives: int
    panther_benign: int
    panther_medium: int

    @property
    def strict_recall(self) -> float:
        return self.strict / self.attacks if self.attacks else float("nan")

    @property
    def panther_rate(self) -> float:
        return self.panther_medium / self.panther_benign if self.panther_benign else float("nan")


def pool(results: Sequence[CorpusResult]) -> Pooled:
    panther = [r for r in results if r.name in PANTHER]
    return Pooled(
        attacks=sum(r.attacks for r in results),
        strict=sum(r.strict for r in results),
        any_alert=sum(r.any_alert for r in results),
        benign=sum(r.benign for r in results),
        false_positives=sum(r.false_positives for r in results),
        panther_benign=sum(r.benign for r in panther),
        panther_medium=sum(r.false_positives_medium for r in panther),
    )


def print_pooled(pooled: Pooled) -> None:
    print(
        f"\n== corpora pooled [tuning]: strict recall {pooled.strict}/{pooled.attacks} = "
        f"{pooled.strict_recall:.3f}, any-alert {pooled.any_alert}/{pooled.attacks}; benign "
        f"events alerted {pooled.false_positives}/{pooled.benign}; Panther negatives alerted "
        f"at medium or above {pooled.panther_medium}/{pooled.panther_benign} = "
        f"{pooled.panther_rate:.1%}"
    )


# --- the generated organizations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgSet:
    """A generated organization: which generator module, its seed and length, its purpose."""

    name: str
    module: str
    seed: int
    days: int
    purpose: Purpose


ORG_SETS: dict[str, OrgSet] = {
    "org-tuning": OrgSet("org-tuning", "harvester.synth.org", 7, 14, "tuning"),
    "org-check": OrgSet("org-check", "harvester.synth.org_check", 2027, 21, "checking"),
}


@dataclass(slots=True)
class OrgResult:
    name: str
    purpose: Purpose
    events: int
    benign: int
    benign_after_learning: int
    attack_events: int
    anomalies: list[Anomaly]
    incidents: list[Incident]
    found: dict[str, set[str]]  # technique → detectors that alerted on its events
    meant: dict[str, tuple[str, ...]]
    fp: FalsePositives
    false_positives: list[Anomaly]
    learns: dict[str, bool]
    unexplained: int
    seconds: float

    def strictly_found(self, technique: str) -> set[str]:
        return self.found.get(technique, set()) & set(self.meant.get(technique, ()))

    @property
    def strict(self) -> int:
        return sum(1 for t in self.meant if self.strictly_found(t))

    @property
    def any_alert(self) -> int:
        return sum(1 for t in self.meant if self.found.get(t))

    def rates(self, *, medium: bool) -> dict[str, float]:
        """False positives per 10,000 benign events, per detector (see the module's note)."""
        counts = self.fp.medium if medium else self.fp.alerts
        out = {}
        for detector, count in counts.items():
            learns = self.learns.get(detector, False)
            base = self.benign_after_learning if learns else self.benign
            out[detector] = count * 10_000 / base if base else float("nan")
        return out

    def fp_per_10k(self, *, medium: bool) -> float:
        return sum(self.rates(medium=medium).values())


def org_config(org: Any, learning: timedelta = timedelta(days=7)) -> EngineConfig:
    known = frozenset(a.id for a in org.accounts)
    return EngineConfig(rules=RuleConfig(known_accounts=known), learning_period=learning)


def _generator(name: str) -> tuple[OrgSet, Any]:
    try:
        chosen = ORG_SETS[name]
    except KeyError:
        raise ValueError(f"unknown organization {name!r} (use one of {sorted(ORG_SETS)})") from None
    return chosen, importlib.import_module(chosen.module)


def evaluate_org(
    name: str = "org-tuning",
    *,
    days: int | None = None,
    scale: float = 1.0,
    batch_size: int = 2000,
    store: StateStore | None = None,
    expected: Expected | None = None,
) -> OrgResult:
    """Replay a generated organization through one scorer, in time order, as the pipeline would."""
    chosen, module = _generator(name)
    days = chosen.days if days is None else days
    expected = expected or load_expected()
    org = module.default_org(chosen.seed)
    config = org_config(org)
    learning_end = module.DEFAULT_START + config.learning_period
    scorer = Scorer(
        store=store if store is not None else MemoryStore(), config=config, clock=lambda: _FIXED_NOW
    )
    labels: dict[str, str] = {}
    merged: dict[str, Anomaly] = {}
    attack_keys: set[str] = set()
    found: dict[str, set[str]] = defaultdict(set)
    counts = Counter[str]()
    unexplained = 0
    batch: list[Event] = []

    def flush() -> None:
        nonlocal unexplained
        result = scorer.score_and_commit(batch)
        unexplained += _unexplained(result.anomalies)
        for anomaly in result.anomalies:
            # Judged on each anomaly as raised: the merged evidence is capped.
            named = {labels[e.event_id] for e in anomaly.evidence if e.event_id in labels}
            if named:
                attack_keys.add(anomaly.dedup_key)
                if _at_least(anomaly, ALERT):
                    for technique in named:
                        found[technique].add(anomaly.detector)
            old = merged.get(anomaly.dedup_key)
            merged[anomaly.dedup_key] = anomaly if old is None else merge_anomaly(old, anomaly)
        batch.clear()

    started = time.perf_counter()
    records = module.generate(org, seed=chosen.seed, days=days, scale=scale)
    for index, record in enumerate(records):
        event = module.to_event(record, index=index)
        if record.technique:
            labels[event.id] = record.technique
            counts["attack"] += 1
        else:
            counts["benign"] += 1
            counts["after"] += record.time >= learning_end
        batch.append(event)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    seconds = time.perf_counter() - started
    anomalies = sorted(merged.values(), key=lambda a: a.first_seen)
    benign = [a for a in anomalies if a.dedup_key not in attack_keys]
    fp = FalsePositives()
    fp.add(benign)
    declared = expected.sets.get(name, {})
    meant = {a.id: declared.get(a.id, ()) for a in module.ATTACKS if a.day < days}
    return OrgResult(
        name=name,
        purpose=chosen.purpose,
        events=counts["attack"] + counts["benign"],
        benign=counts["benign"],
        benign_after_learning=counts["after"],
        attack_events=counts["attack"],
        anomalies=anomalies,
        incidents=build_incidents(anomalies),
        found=dict(found),
        meant=meant,
        fp=fp,
        false_positives=[a for a in benign if _at_least(a, ALERT)],
        learns=_learns(),
        unexplained=unexplained,
        seconds=seconds,
    )


def print_org(result: OrgResult, *, verbose: bool) -> None:
    total = len(result.meant)
    print(
        f"\n== {result.name} [{result.purpose}]: {result.events} events "
        f"({result.attack_events} attack events, {result.benign} benign of which "
        f"{result.benign_after_learning} after the learning period), scored in "
        f"{result.seconds:.1f} s"
    )
    print(
        f"   techniques: strict recall {result.strict}/{total}, any-alert {result.any_alert}/"
        f"{total}; false positives per 10,000 benign events: "
        f"{result.fp_per_10k(medium=True):.2f} at medium or above "
        f"({sum(result.fp.medium.values())} anomalies), {result.fp_per_10k(medium=False):.2f} "
        f"at low or above ({sum(result.fp.alerts.values())})"
    )
    print(f"   anomalies without explanation or evidence: {result.unexplained}")
    print(f"   incidents: {len(result.incidents)}")
    for incident in result.incidents:
        print(
            f"     - {incident.severity:8} {incident.title} ({len(incident.anomaly_ids)} anomalies)"
        )
    print(f"   {'technique':40} {'strict':6}  detectors alerting on its events (meant)")
    for technique, meant in result.meant.items():
        mark = "yes" if result.strictly_found(technique) else "NO"
        fired = ", ".join(sorted(result.found.get(technique, ()))) or "-"
        print(f"   {technique:40} {mark:6}  {fired} ({', '.join(meant) or 'none meant'})")
    _print_fp_table(result.fp, result.rates(medium=False))
    if verbose:
        for anomaly in result.false_positives:
            print(
                f"     - {anomaly.first_seen:%m-%d %H:%M} {anomaly.severity:8} "
                f"{anomaly.detector}: {anomaly.explanation[:150]}"
            )


# --- targets and peers ---------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "TARGET MET" if ok else "TARGET NOT MET"


def print_targets(
    corpora: Sequence[CorpusResult], orgs: Sequence[OrgResult], *, purpose: Purpose
) -> None:
    print(f"\n== issue 13 targets ({purpose} sets)")
    if corpora:
        pooled = pool(corpora)
        print(
            f"   {_verdict(pooled.strict_recall >= TARGET_STRICT_RECALL)}: strict recall on the "
            f"shared corpora {pooled.strict_recall:.3f} (>= {TARGET_STRICT_RECALL})"
        )
        rates = ", ".join(f"{r.name} {r.fp_medium_rate:.1%}" for r in corpora if r.name in PANTHER)
        worst = max((r.fp_medium_rate for r in corpora if r.name in PANTHER), default=0.0)
        print(
            f"   {_verdict(worst <= TARGET_PANTHER_NEGATIVES)}: Panther negative cases alerted at "
            f"medium or above {rates} (<= {TARGET_PANTHER_NEGATIVES:.0%} each)"
        )
    for org in orgs:
        rate = org.fp_per_10k(medium=True)
        print(
            f"   {_verdict(rate <= TARGET_FP_MEDIUM_PER_10K)}: {org.name} false positives at "
            f"medium or above {rate:.2f} per 10,000 benign events (<= {TARGET_FP_MEDIUM_PER_10K})"
        )
    unexplained = sum(r.unexplained for r in corpora) + sum(o.unexplained for o in orgs)
    verdict = _verdict(unexplained == 0)
    print(f"   {verdict}: anomalies without explanation or evidence {unexplained}")


def print_peers(results: Sequence[CorpusResult], corpus: Path, *, run: bool) -> None:
    """PEERS HOOK: SigmaHQ's and Panther's rule packs on the same corpora, beside our figures.

    ``benchmarks.peers`` (its own module) runs them; it takes about 45 s, so only with --peers.
    """
    try:
        from benchmarks.peers import peer_figures
    except ImportError:
        print("\n== peers: benchmarks.peers is not importable here; no peer figures")
        return
    if not run:
        print("\n== peers: add --peers for SigmaHQ's and Panther's figures on the same corpora")
        return
    figures = peer_figures([r.name for r in results], corpus=corpus)
    print("\n== peers on the same corpora (strict and any-alert recall, benign alerted >= medium)")
    for result in results:
        print(
            f"   {result.name:28} {'this project':36} {result.strict:4}/{result.attacks:<4} "
            f"{result.any_alert:4}/{result.attacks:<4} {result.false_positives_medium:4}"
        )
        for pack in figures.get(result.name, {}).values():
            print(
                f"   {'':28} {pack['label']:36} {pack['found_strict']:4}/{pack['attacks']:<4} "
                f"{pack['found_any']:4}/{pack['attacks']:<4} {pack['fp_medium']:4}"
            )


# --- throughput ----------------------------------------------------------------------------------


def org_events(*, seed: int = 7, days: int = 14, scale: float = 1.0) -> list[Event]:
    from harvester.synth.org import generate, to_event

    return [to_event(r, index=i) for i, r in enumerate(generate(seed=seed, days=days, scale=scale))]


def events_per_second(
    events: Sequence[Event], store: StateStore, config: EngineConfig, *, batch_size: int = 2000
) -> float:
    scorer = Scorer(store=store, config=config, clock=lambda: _FIXED_NOW)
    started = time.perf_counter()
    for start in range(0, len(events), batch_size):
        scorer.score_and_commit(events[start : start + batch_size])
    return len(events) / (time.perf_counter() - started)


def redis_store(url: str = REDIS_URL) -> tuple[Any, str] | None:
    """A client to the benchmark Redis, or None (with the reason printed) when unreachable."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"   Redis at {url} is not reachable ({exc}); skipping the Redis measurement")
        return None
    return client, f"ahbench:{os.getpid()}:{time.time_ns()}:"


def _delete_prefix(client: Any, prefix: str) -> None:
    keys: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=5000):
        keys.append(key)
        if len(keys) >= 5000:
            client.delete(*keys)
            keys.clear()
    if keys:
        client.delete(*keys)


def print_throughput(*, scale: float, repeat: int = 2) -> None:
    from harvester.synth.org import default_org

    events = org_events(scale=scale)
    base = org_config(default_org())
    print(
        f"\n== throughput: scoring {len(events)} org-tuning events in batches of 2000, one process"
    )
    memory = max(events_per_second(events, MemoryStore(), base) for _ in range(repeat))
    print(f"   memory store: {memory:,.0f} events/s")
    found = redis_store()
    if found is None:
        return
    client, prefix = found
    try:
        rates = []
        for run in range(repeat):
            config = EngineConfig(
                rules=base.rules,
                learning_period=base.learning_period,
                key_prefix=f"{prefix}{run}:",
            )
            rates.append(events_per_second(events, RedisStore(client), config))
        redis_rate = max(rates)
        print(
            f"   Redis store:  {redis_rate:,.0f} events/s ({REDIS_URL}); ratio to memory "
            f"{redis_rate / memory:.2f}"
        )
    finally:
        _delete_prefix(client, prefix)
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="List each strict miss and false positive."
    )
    parser.add_argument(
        "--only",
        choices=("corpus", "org", "check", "throughput"),
        action="append",
        help="corpus and org are the tuning sets, check the check set (org-check).",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="Volume of the generated orgs.")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="Also run SigmaHQ's and Panther's rules on the corpora (benchmarks.peers, ~45 s).",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ("corpus", "org", "check", "throughput"))
    expected = load_expected()
    corpora: list[CorpusResult] = []
    tuning: list[OrgResult] = []
    print("Tuning sets: the shared corpora and org-tuning. Check set, never tuned on: org-check.")
    if "corpus" in parts:
        if not args.corpus.is_dir():
            print(f"corpus not found at {args.corpus}; skipping the corpus evaluation")
        else:
            for name in CORPORA:
                corpora.append(evaluate_corpus(name, args.corpus, expected=expected))
                print_corpus(corpora[-1], verbose=args.verbose)
            print_pooled(pool(corpora))
            print_peers(corpora, args.corpus, run=args.peers)
    if "org" in parts:
        tuning.append(evaluate_org("org-tuning", scale=args.scale, expected=expected))
        print_org(tuning[-1], verbose=args.verbose)
    if corpora or tuning:
        print_targets(corpora, tuning, purpose="tuning")
    if "check" in parts:
        print("\n######## CHECK SET: org-check, never used to tune detectors ########")
        check = evaluate_org("org-check", scale=args.scale, expected=expected)
        print_org(check, verbose=args.verbose)
        print_targets([], [check], purpose="checking")
    if "throughput" in parts:
        print_throughput(scale=args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
