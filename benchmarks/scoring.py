"""Scoring throughput: ``python -m benchmarks.scoring`` (a minute or two).

    python -m benchmarks.scoring                  # both mixes, both modes the code offers
    python -m benchmarks.scoring --quick          # fewer events
    python -m benchmarks.scoring --mode inline    # only the per-batch defaults
    python -m benchmarks.scoring --profile        # cProfile of the timed batches, our code

What one ``score.batch`` task does, in this process and without Celery: decode a batch body
(``decode_batch``), then ``score_and_store`` — detection with its state in Redis, the anomaly
upsert, incident correlation, the database commit, the detector state commit — on a fresh
PostgreSQL database. Two traffic mixes, in batches built by ``BatchBuilder`` as the harvest
side builds them:

a. ``org``: the generated organization (``harvester.synth.org``), realistic traffic with
   few anomalies. Its first week (the learning period) is scored untimed, so the timed days
   run against trained baselines and a database that already holds what they found.
b. ``logs``: ``harvester.synth.logs.cloudtrail_record`` records, the mix the pipeline
   benchmark uploads: random principals, addresses and errors, so anomaly-heavy.

Two modes:

* ``inline``: ``score_and_store(session, scorer, events)`` with its defaults, correlation
  and suppressions per batch. Runs on any version of the code, for before/after figures.
* ``deferred``: how the fleet runs it when the code offers it — ``correlate=False``,
  suppressions read once a minute and passed in, and ``correlate_pending`` over the
  identities of every ``--correlate-every`` batches (its time is counted).

Events per second are wall time; "per CPU s" counts this process only (not PostgreSQL or
Redis). Statements are SQL statements sent per batch. Redis keys and the database are
removed at the end. ``HARVESTER_BENCH_REDIS_URL`` (default db 13) and
``HARVESTER_TEST_POSTGRES_URL`` choose the servers.
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks._fleet import Cleanup, Figure, create_database, rate, render_table

REDIS_URL = os.environ.get("HARVESTER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get(
    "HARVESTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
LOG_ACCOUNTS = ("111122223333", "444455556666")
LOG_REGIONS = ("us-east-1", "eu-west-1")
LOG_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SUPPRESSION_REFRESH = 60.0


@dataclass(frozen=True)
class Workload:
    name: str
    warm: list[bytes]  # scored first, untimed
    timed: list[bytes]
    events: int  # in the timed bodies
    known_accounts: frozenset[str]


def _bodies(events: Sequence[Any]) -> list[bytes]:
    from harvester.batches import BatchBuilder

    bodies: list[bytes] = []
    builder = BatchBuilder(lambda body, _count: bodies.append(body))
    for event in events:
        builder.add(event)
    builder.flush()
    return bodies


def org_workload(*, scale: float, days: int, warm_days: int = 7) -> Workload:
    from harvester.synth.org import DEFAULT_START, default_org, generate, to_event

    split = DEFAULT_START + timedelta(days=warm_days)
    warm, timed = [], []
    for index, record in enumerate(generate(seed=7, days=days, scale=scale)):
        (warm if record.time < split else timed).append(to_event(record, index=index))
    return Workload(
        "org",
        _bodies(warm),
        _bodies(timed),
        len(timed),
        frozenset(a.id for a in default_org().accounts),
    )


def logs_workload(*, events: int, seed: int = 11) -> Workload:
    from harvester.events import normalize_cloudtrail
    from harvester.synth.logs import cloudtrail_record

    rng = random.Random(seed)
    # Fixed event times: the same anomalies on every run and every version of the code.
    when = LOG_START
    out = []
    for index in range(events):
        account = LOG_ACCOUNTS[index % len(LOG_ACCOUNTS)]
        region = LOG_REGIONS[(index // len(LOG_ACCOUNTS)) % len(LOG_REGIONS)]
        record = cloudtrail_record(rng, account_id=account, region=region, when=when)
        out.append(normalize_cloudtrail(record, bucket="bench", key="synth", index=index))
        when += timedelta(milliseconds=rng.randrange(0, 40))
    return Workload("logs", [], _bodies(out), events, frozenset(LOG_ACCOUNTS))


@dataclass
class Measured:
    workload: str
    mode: str
    events: int
    batches: int
    wall: float
    cpu: float
    statements: int
    anomalies: int
    incidents: int

    @property
    def per_second(self) -> float:
        return rate(self.events, self.wall)

    @property
    def per_cpu_second(self) -> float:
        return rate(self.events, self.cpu)


def _offers(name: str) -> bool:
    from harvester.detect import repository

    function = getattr(repository, "score_and_store", None)
    return function is not None and name in inspect.signature(function).parameters


def run(
    workload: Workload,
    *,
    mode: str,
    redis_url: str,
    postgres_url: str,
    correlate_every: int,
    profile: bool,
    dump: str | None = None,
) -> Measured:
    import cProfile
    import pstats

    import redis
    from sqlalchemy import event, func, select

    from harvester.batches import decode_batch
    from harvester.db.anomaly_models import IncidentRecord, SuppressionRecord
    from harvester.db.engine import make_engine, session_factory
    from harvester.detect import repository as repo
    from harvester.detect.engine import EngineConfig, Scorer
    from harvester.detect.rules import RuleConfig
    from harvester.detect.state import RedisStore

    with Cleanup() as local:
        url = create_database(local, postgres_url, f"scoring_{workload.name}")
        engine = make_engine(url)
        local.callback(engine.dispose)
        sessions = session_factory(engine)
        client = redis.Redis.from_url(redis_url)
        local.callback(client.close)
        prefix = f"ahscore:{os.getpid()}:{time.time_ns()}:"
        local.callback(_delete_prefix, client, prefix)
        now = datetime.now(UTC)
        with sessions.begin() as session:
            # A few rules in force, as an operator would have: they are read and matched.
            for detector, principal in (
                ("aws.guardduty-disabled", None),
                ("*", "arn:aws:iam::*:role/pentest-*"),
                ("behav.new-region-account", None),
            ):
                session.add(
                    SuppressionRecord(detector=detector, principal=principal, created_at=now)
                )
        config = EngineConfig(
            rules=RuleConfig(known_accounts=workload.known_accounts), key_prefix=prefix
        )
        scorer = Scorer(store=RedisStore(client), config=config)

        statements = 0

        def count(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        deferred = mode == "deferred"
        suppressions: list[Any] = []
        loaded_at = float("-inf")
        pending: set[str] = set()
        anomalies = 0

        def score(body: bytes, index: int) -> None:
            nonlocal anomalies, loaded_at, suppressions
            events = decode_batch(body)
            with sessions() as session:
                if not deferred:
                    summary = repo.score_and_store(session, scorer, events)
                else:
                    if time.monotonic() - loaded_at > SUPPRESSION_REFRESH:
                        suppressions = repo.active_suppressions(session, now=scorer.clock())
                        loaded_at = time.monotonic()
                    summary = repo.score_and_store(
                        session, scorer, events, correlate=False, suppressions=suppressions
                    )
                    pending.update(summary.identities)
                    if pending and (index + 1) % correlate_every == 0:
                        _correlate(session, pending, scorer.clock)
                anomalies += summary.anomalies

        for index, body in enumerate(workload.warm):
            score(body, index)
        if deferred and pending:
            with sessions() as session:
                _correlate(session, pending, scorer.clock)
        event.listen(engine, "before_cursor_execute", count)
        anomalies = 0
        profiler = cProfile.Profile() if profile else None
        began, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for index, body in enumerate(workload.timed):
            score(body, index)
        if deferred and pending:
            with sessions() as session:
                _correlate(session, pending, scorer.clock)
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        event.remove(engine, "before_cursor_execute", count)
        with sessions() as session:
            incidents = session.scalar(select(func.count()).select_from(IncidentRecord)) or 0
            if dump is not None:
                _dump(session, f"{dump}.{workload.name}.{mode}.json")
    if profiler is not None:
        print(f"\n  where {workload.name}/{mode} spends its time (cProfile, cumulative, our code):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(r"harvester/", 30)
    return Measured(
        workload.name,
        mode,
        workload.events,
        len(workload.timed),
        wall,
        cpu,
        statements,
        anomalies,
        incidents,
    )


def _correlate(session: Any, pending: set[str], clock: Callable[[], datetime]) -> None:
    from harvester.detect import repository as repo

    repo.correlate_pending(session, sorted(pending), clock=clock)
    session.commit()
    pending.clear()


def _dump(session: Any, path: str) -> None:
    """What was stored, to compare two versions of the code.

    Explanations are left out: they quote a random sample of a baseline's members.
    """
    import json

    from harvester.detect import repository as repo

    anomalies = sorted(
        (
            {
                "dedup_key": a.dedup_key,
                "detector": a.detector,
                "severity": a.severity.value,
                "score": a.score,
                "count": a.count,
                "first_seen": a.first_seen.isoformat(),
                "last_seen": a.last_seen.isoformat(),
                "evidence": a.event_ids,
                "title": a.title,
            }
            for a in repo.list_anomalies(session, limit=1_000_000)
        ),
        key=lambda a: a["dedup_key"],
    )
    incidents = sorted(
        (
            {
                "id": i.id,
                "severity": i.severity.value,
                "score": i.score,
                "title": i.title,
                "first_seen": i.first_seen.isoformat(),
                "last_seen": i.last_seen.isoformat(),
                "anomalies": list(i.anomaly_ids),
                "accounts": list(i.account_ids),
                "tactics": list(i.tactics),
            }
            for i in repo.list_incidents(session, limit=1_000_000)
        ),
        key=lambda i: i["id"],
    )
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"anomalies": anomalies, "incidents": incidents}, out, indent=1)


def _delete_prefix(client: Any, prefix: str) -> None:
    keys: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=5000):
        keys.append(key)
        if len(keys) >= 5000:
            client.delete(*keys)
            keys.clear()
    if keys:
        client.delete(*keys)


def figures(results: Sequence[Measured]) -> list[Figure]:
    return [
        Figure(
            f"{r.workload} ({r.events:,} events, {r.batches} batches), {r.mode}",
            f"{r.per_second:,.0f} events/s, {r.per_cpu_second:,.0f} per CPU s; "
            f"{r.statements / max(1, r.batches):.1f} statements, "
            f"{r.anomalies / max(1, r.batches):.1f} anomalies per batch; "
            f"{r.incidents} incidents",
        )
        for r in results
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a third of the events")
    parser.add_argument("--workload", choices=("org", "logs"), action="append")
    parser.add_argument("--mode", choices=("inline", "deferred"), action="append")
    parser.add_argument("--correlate-every", type=int, default=10, metavar="BATCHES")
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--dump", metavar="PREFIX", help="write what was stored to PREFIX.<mix>.<mode>.json"
    )
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args(argv)
    modes = args.mode or ["inline", "deferred"]
    if "deferred" in modes and not _offers("correlate"):
        print("this version of score_and_store has no correlate=...; measuring inline only")
        modes = [m for m in modes if m != "deferred"]
    loaders: dict[str, Callable[[], Workload]] = {
        "org": lambda: org_workload(scale=1.0 if args.quick else 2.0, days=9 if args.quick else 10),
        "logs": lambda: logs_workload(events=15_000 if args.quick else 40_000),
    }
    results: list[Measured] = []
    for name in args.workload or ["org", "logs"]:
        workload = loaders[name]()
        for mode in modes:
            runs = [
                run(
                    workload,
                    mode=mode,
                    redis_url=args.redis_url,
                    postgres_url=args.postgres_url,
                    correlate_every=args.correlate_every,
                    profile=args.profile,
                    dump=args.dump,
                )
                for _ in range(max(1, args.repeat))
            ]
            best = max(runs, key=lambda r: r.per_second)
            results.append(best)
            print(figures([best])[0].name, "—", figures([best])[0].value, flush=True)
    print()
    print(render_table(figures(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
