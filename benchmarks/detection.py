"""Detection quality and throughput: ``python -m benchmarks.detection``.

1. The labelled corpora in ``<repo>/../shared/corpus``: every event is scored on its own,
   with empty state (they are single, hand-made events, so behavioural detectors have no
   history there). Recall on attack events, false positives per 10,000 benign events, and a
   per-detector table.
2. The generated organization (``harvester.synth.org``): two weeks of several accounts and a
   cluster with attacks injected. Recall per technique, anomalies per 10,000 benign events
   after the learning period.
3. Throughput: events scored per second in this process with the memory store and with Redis
   (``HARVESTER_TEST_REDIS_URL`` or redis://127.0.0.1:6379/9; skipped when unreachable).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from harvester.detect.engine import EngineConfig, Scorer, merge_anomaly
from harvester.detect.incidents import build_incidents
from harvester.detect.model import Anomaly, Incident
from harvester.detect.rules import RuleConfig
from harvester.detect.state import MemoryStore, RedisStore, StateStore
from harvester.events import Event, InvalidRecordError, normalize_cloudtrail, normalize_k8s

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
REDIS_URL = os.environ.get("HARVESTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
_FIXED_NOW = datetime(2030, 1, 1, tzinfo=UTC)


# --- corpus ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Labelled:
    event: Event
    label: str  # "attack", "benign", or "other" (neither counted)
    group: str  # the upstream rule or technique, for the tables
    note: str = ""


@dataclass(slots=True)
class CorpusResult:
    name: str
    attacks: int = 0
    detected: int = 0
    benign: int = 0
    false_positives: int = 0
    other: int = 0
    skipped: int = 0
    per_detector: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    missed: list[str] = field(default_factory=list)
    explained: int = 0
    anomalies: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.attacks if self.attacks else float("nan")

    @property
    def fp_per_10k(self) -> float:
        return self.false_positives * 10_000 / self.benign if self.benign else float("nan")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def _panther(kind: str, corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "panther-analysis"
    events = folder / f"{kind}.events.jsonl"
    labels = folder / f"{kind}.labels.jsonl"
    out: list[Labelled] = []
    skipped = 0
    for index, (record, label) in enumerate(zip(_lines(events), _lines(labels), strict=True)):
        try:
            if kind == "cloudtrail":
                event = normalize_cloudtrail(record, bucket="corpus", key=str(events), index=index)
            else:
                event = normalize_k8s(
                    record,
                    cluster="corpus",
                    account=None,
                    region=None,
                    bucket="corpus",
                    key=str(events),
                    index=index,
                )
        except InvalidRecordError:
            skipped += 1
            continue
        severity = label.get("rule_severity")
        if label["label"] == "malicious":
            # Info-severity upstream rules log activity worth keeping, not attacks.
            kind_label = "other" if severity == "Info" else "attack"
        else:
            kind_label = "benign"
        group = label.get("rule_id") or label.get("test_name") or "scenario"
        out.append(Labelled(event, kind_label, str(group), str(label.get("test_name", ""))))
    return out, skipped


def _falco(corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "falco-k8s-audit-traces"
    out: list[Labelled] = []
    for index, (record, label) in enumerate(
        zip(_lines(folder / "events.jsonl"), _lines(folder / "labels.jsonl"), strict=True)
    ):
        event = normalize_k8s(
            record,
            cluster="corpus",
            account=None,
            region=None,
            bucket="corpus",
            key="falco/events.jsonl",
            index=index,
        )
        kind = "attack" if label["label"] == "suspicious" else "benign"
        rules = label.get("falco_rules_default") or ["-"]
        out.append(Labelled(event, kind, str(rules[0])))
    return out, 0


def _otrf(corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "otrf-security-datasets"
    out: list[Labelled] = []
    skipped = 0
    for index, (record, label) in enumerate(
        zip(_lines(folder / "events.jsonl"), _lines(folder / "labels.jsonl"), strict=True)
    ):
        kind = {"malicious": "attack", "benign": "benign"}.get(label["label"], "other")
        try:
            event = normalize_cloudtrail(record, bucket="corpus", key="otrf", index=index)
        except InvalidRecordError:
            skipped += 1
            continue
        out.append(Labelled(event, kind, str(label.get("technique") or label["label"])))
    return out, skipped


CORPORA: dict[str, Callable[[Path], tuple[list[Labelled], int]]] = {
    "panther-analysis/cloudtrail": lambda c: _panther("cloudtrail", c),
    "panther-analysis/k8s_audit": lambda c: _panther("k8s_audit", c),
    "falco-k8s-audit-traces": _falco,
    "otrf-security-datasets": _otrf,
}


def score_alone(event: Event, config: EngineConfig) -> list[Anomaly]:
    """One event, empty state: what the rules (and untrained baselines) say about it."""
    scorer = Scorer(store=MemoryStore(), config=config, clock=lambda: _FIXED_NOW)
    return scorer.score_and_commit([event]).anomalies


def evaluate_corpus(
    name: str, corpus: Path = CORPUS, config: EngineConfig | None = None
) -> CorpusResult:
    config = config or EngineConfig()
    items, skipped = CORPORA[name](corpus)
    result = CorpusResult(name, skipped=skipped)
    for item in items:
        anomalies = score_alone(item.event, config)
        result.anomalies += len(anomalies)
        result.explained += sum(1 for a in anomalies if a.explanation and a.evidence)
        detectors = {a.detector for a in anomalies}
        if item.label == "attack":
            result.attacks += 1
            if anomalies:
                result.detected += 1
            else:
                result.missed.append(f"{item.group} [{item.note}]")
            for detector in detectors:
                result.per_detector[detector][0] += 1
        elif item.label == "benign":
            result.benign += 1
            if anomalies:
                result.false_positives += 1
            for detector in detectors:
                result.per_detector[detector][1] += 1
        else:
            result.other += 1
    return result


def print_corpus(result: CorpusResult, *, verbose: bool) -> None:
    print(
        f"\n== {result.name}: recall {result.detected}/{result.attacks} = {result.recall:.3f}; "
        f"false positives {result.false_positives}/{result.benign} benign = "
        f"{result.fp_per_10k:.0f} per 10,000; {result.other} other-labelled and "
        f"{result.skipped} unparseable events not counted"
    )
    print(f"   anomalies with explanation and evidence: {result.explained}/{result.anomalies}")
    print(f"   {'detector':44} {'attack events':>13} {'benign events':>13}")
    for detector, (tp, fp) in sorted(result.per_detector.items(), key=lambda kv: -kv[1][0]):
        print(f"   {detector:44} {tp:13d} {fp:13d}")
    if verbose and result.missed:
        print("   missed:")
        for miss in sorted(result.missed):
            print(f"     - {miss}")


# --- the generated organization ------------------------------------------------------------------


@dataclass(slots=True)
class OrgResult:
    events: int
    benign_after_learning: int
    attack_events: int
    anomalies: list[Anomaly]
    incidents: list[Incident]
    techniques: dict[str, set[str]]
    expected: dict[str, tuple[str, ...]]
    benign_anomalies: list[Anomaly]
    seconds: float

    @property
    def benign_per_10k(self) -> float:
        if not self.benign_after_learning:
            return float("nan")
        return len(self.benign_anomalies) * 10_000 / self.benign_after_learning

    @property
    def detected(self) -> int:
        return sum(1 for found in self.techniques.values() if found)


def org_config(org: Any, learning: timedelta = timedelta(days=7)) -> EngineConfig:
    known = frozenset(a.id for a in org.accounts)
    return EngineConfig(rules=RuleConfig(known_accounts=known), learning_period=learning)


def evaluate_org(
    *,
    seed: int = 7,
    days: int = 14,
    scale: float = 1.0,
    batch_size: int = 2000,
    store: StateStore | None = None,
) -> OrgResult:
    """Replay the generated organization through the scorer, as the pipeline would."""
    from harvester.synth.org import ATTACKS, DEFAULT_START, default_org, generate, to_event

    org = default_org(seed)
    config = org_config(org)
    learning_end = DEFAULT_START + config.learning_period
    scorer = Scorer(
        store=store if store is not None else MemoryStore(), config=config, clock=lambda: _FIXED_NOW
    )
    labels: dict[str, str] = {}
    merged: dict[str, Anomaly] = {}
    events = benign_after = attack_events = 0
    started = time.perf_counter()
    batch: list[Event] = []

    def flush() -> None:
        result = scorer.score_and_commit(batch)
        for anomaly in result.anomalies:
            old = merged.get(anomaly.dedup_key)
            merged[anomaly.dedup_key] = anomaly if old is None else merge_anomaly(old, anomaly)
        batch.clear()

    for index, record in enumerate(generate(org, seed=seed, days=days, scale=scale)):
        event = to_event(record, index=index)
        events += 1
        if record.technique:
            labels[event.id] = record.technique
            attack_events += 1
        elif record.time >= learning_end:
            benign_after += 1
        batch.append(event)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    seconds = time.perf_counter() - started
    anomalies = sorted(merged.values(), key=lambda a: a.first_seen)
    in_range = [a for a in ATTACKS if a.day < days]
    techniques: dict[str, set[str]] = {a.id: set() for a in in_range}
    benign: list[Anomaly] = []
    for anomaly in anomalies:
        named = {labels[e.event_id] for e in anomaly.evidence if e.event_id in labels}
        for technique in named:
            techniques.setdefault(technique, set()).add(anomaly.detector)
        if not named and anomaly.first_seen >= learning_end:
            benign.append(anomaly)
    return OrgResult(
        events=events,
        benign_after_learning=benign_after,
        attack_events=attack_events,
        anomalies=anomalies,
        incidents=build_incidents(anomalies),
        techniques=techniques,
        expected={a.id: a.expected for a in in_range},
        benign_anomalies=benign,
        seconds=seconds,
    )


def print_org(result: OrgResult, *, verbose: bool) -> None:
    total = len(result.techniques)
    print(
        f"\n== generated organization: {result.events} events "
        f"({result.attack_events} attack events), scored in {result.seconds:.1f} s"
    )
    print(
        f"   techniques detected: {result.detected}/{total}; benign anomalies after the "
        f"learning period: {len(result.benign_anomalies)} in {result.benign_after_learning} "
        f"benign events = {result.benign_per_10k:.2f} per 10,000"
    )
    print(f"   incidents: {len(result.incidents)}")
    for incident in result.incidents:
        print(
            f"     - {incident.severity:8} {incident.title} ({len(incident.anomaly_ids)} anomalies)"
        )
    print(f"   {'technique':34} {'detected':8}  detectors naming its events (expected)")
    for technique, found in result.techniques.items():
        expected = ", ".join(result.expected.get(technique, ()))
        mark = "yes" if found else "NO"
        print(f"   {technique:34} {mark:8}  {', '.join(sorted(found)) or '-'} ({expected})")
    if result.benign_anomalies:
        counts = Counter(a.detector for a in result.benign_anomalies)
        print(
            "   benign anomalies after learning by detector: "
            + ", ".join(f"{d} {n}" for d, n in counts.most_common())
        )
        if verbose:
            for anomaly in result.benign_anomalies:
                print(
                    f"     - {anomaly.first_seen:%m-%d %H:%M} {anomaly.detector}: "
                    f"{anomaly.explanation[:160]}"
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
        f"\n== throughput: scoring {len(events)} generated events in batches of 2000, one process"
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
    parser.add_argument("--verbose", "-v", action="store_true", help="List missed attacks.")
    parser.add_argument("--only", choices=("corpus", "org", "throughput"), action="append")
    parser.add_argument("--scale", type=float, default=1.0, help="Volume of the generated org.")
    args = parser.parse_args(argv)
    parts = set(args.only or ("corpus", "org", "throughput"))
    if "corpus" in parts:
        if not args.corpus.is_dir():
            print(f"corpus not found at {args.corpus}; skipping the corpus evaluation")
        else:
            for name in CORPORA:
                print_corpus(evaluate_corpus(name, args.corpus), verbose=args.verbose)
    if "org" in parts:
        print_org(evaluate_org(scale=args.scale), verbose=args.verbose)
    if "throughput" in parts:
        print_throughput(scale=args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
