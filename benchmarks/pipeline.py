"""The pipeline on real processes: ``python -m benchmarks.pipeline`` (about 2-4 minutes).

    python -m benchmarks.pipeline              # 40 CloudTrail objects of 5 MB (200 MB)
    python -m benchmarks.pipeline --quick      # 4 objects (20 MB), fewer score batches
    python -m benchmarks.pipeline --skip-e2e   # sections 2-4 only
    python -m benchmarks.pipeline --traffic random   # anomaly-heavy objects end to end

Four measurements, one run, one table:

1. End to end. A moto server (subprocess) holds ``--objects`` CloudTrail objects of
   ``--object-mb`` MB (uncompressed) over 2 accounts x 2 regions, key times in the last
   3 hours. ``--traffic org`` (the default) fills them with the generated organization's
   records (``harvester.synth.org``: realistic activity, about 1 anomaly in 1,000 events
   with its injected attacks); ``--traffic random`` with ``harvester.synth.logs`` records,
   made to stress the parser: random principals, addresses and sensitive calls, so about 2%
   of events raise an anomaly and storing them dominates. An inventory is applied to a
   fresh PostgreSQL database; one
   ``celery -A workers.app worker -c 2 -P prefork -Q harvest,score`` (two worker processes)
   and beat run on a private Redis. Timed from the first dispatch (beat's commit of the
   sources' next slots, polled every 10 ms) to the last event scored (every object done in
   the ledger, the ``score`` queue empty and no ``score`` message unacknowledged, polled
   every 50 ms); the confirmed scoring claims in Redis are then counted against the events
   generated. The ratio is to the single-process parse + normalize figure of
   ``benchmarks.parse`` (its child, CPU time, one core) over objects of the same run.
2. S3 requests per cycle in steady state, in-process on the embedded path
   (``harvester.embedded.run_cycle``, ``Runtime.build(settings, embedded=True)``), counted
   by a botocore ``before-parameter-build.s3`` hook: a first cycle with new data, a cycle
   with a few new objects, an idle cycle. Listings under ``CloudTrail-Digest/`` are the
   integrity check's (one discovery and one LIST per region, at most once an hour per
   source) and are shown in their own column, apart from the harvest's.
3. The score queue alone: a producer process sends pre-built batches of 1,000 realistic
   events (``BatchBuilder``) with ``app.send_task("score.batch", (body,))`` (the project's
   msgpack serializer) to one Redis; a consumer process reads them with kombu's Redis
   transport as a Celery worker does (reserve, ack each) and decodes each with
   ``decode_batch``. No scoring: this is the queue's capacity.
4. One dispatch tick over 10,000 sources in PostgreSQL: ``dispatch_due`` with an enqueue
   that only counts, all due and one tenth due; plus, for information, the same tick with
   the real Celery enqueue (one ``send_task`` per source).

Everything it starts (servers, workers, databases) is stopped or dropped at the end, on
failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._fleet import (
    MB,
    SECRET,
    CeleryProcesses,
    Cleanup,
    Figure,
    ObjectSpec,
    RequestTally,
    Server,
    aws_env,
    create_database,
    environ,
    operation_of,
    plan_objects,
    postgres_cpu,
    process_cpu,
    rate,
    render_table,
    start_moto,
    start_redis,
    wait_for,
)

ACCOUNTS = ("123456789012", "210987654321")
REGIONS = ("us-east-1", "eu-west-1")
E2E_BUCKET = "bench-org-trail"
REQUESTS_BUCKET = "bench-requests"
POSTGRES_URL = os.environ.get(
    "HARVESTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RATIO_TARGET = 0.5
QUEUE_TARGET = 100_000.0
DISPATCH_TARGET = 1.0


# --- 1. end to end ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    path: str
    records: int
    uncompressed: int
    compressed: int


def _seed_object(spec: ObjectSpec, bucket: str, target_bytes: int, directory: str) -> Seeded:
    """Generate one object (records start 5 minutes before its key time) and upload it."""
    import boto3

    from harvester.synth import write_cloudtrail_object

    path = Path(directory) / f"object-{spec.seed}.json.gz"
    summary = write_cloudtrail_object(
        path,
        target_bytes=target_bytes,
        seed=spec.seed,
        account_id=spec.account,
        region=spec.region,
        start=spec.when - timedelta(minutes=5),
    )
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=bucket, Key=spec.key, Body=path.read_bytes()
    )
    return Seeded(str(path), summary.records, summary.uncompressed_bytes, summary.compressed_bytes)


def seed_bucket(
    specs: list[ObjectSpec], *, bucket: str, target_bytes: int, directory: Path
) -> list[Seeded]:
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    directory.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [
            pool.submit(_seed_object, spec, bucket, target_bytes, str(directory)) for spec in specs
        ]
        return [f.result() for f in futures]


def _org_records(total_bytes: int) -> list[dict[str, Any]]:
    """CloudTrail records of the generated organization, at least ``total_bytes`` of JSON.

    Realistic traffic: a few dozen people, services, CI and batch jobs, a handful of
    networks, and the organization's injected attacks; its scale grows until the bytes are
    there (about 1 KB a record).
    """
    import orjson

    from harvester.synth.org import generate

    scale = max(1.0, total_bytes / (72 * MB))
    for _attempt in range(5):
        records, size = [], 0
        for record in generate(seed=7, days=14, scale=scale):
            if record.kind == "cloudtrail":
                records.append(record.record)
                size += len(orjson.dumps(record.record))
        if size >= total_bytes:
            return records
        scale *= 1.1 * total_bytes / size  # not every kind of activity grows with the scale
    raise RuntimeError(f"the generated organization gave only {size} of {total_bytes} bytes")


def seed_org_bucket(
    specs: list[ObjectSpec], *, bucket: str, target_bytes: int, directory: Path
) -> list[Seeded]:
    """The generated organization's records, in order, cut into objects of ``target_bytes``.

    Record times are the generator's, not the keys': the harvest lists by key and scores by
    record, as with any trail that delivers late.
    """
    import gzip

    import boto3
    import orjson

    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    directory.mkdir(parents=True, exist_ok=True)
    records = iter(_org_records(target_bytes * len(specs)))
    seeded = []
    for spec in specs:
        chunk, size = [], 0
        for record in records:
            data = orjson.dumps(record)
            chunk.append(data)
            size += len(data) + 1
            if size >= target_bytes:
                break
        raw = b'{"Records":[' + b",".join(chunk) + b"]}"
        body = gzip.compress(raw, compresslevel=6)
        path = directory / f"object-{spec.seed}.json.gz"
        path.write_bytes(body)
        client.put_object(Bucket=bucket, Key=spec.key, Body=body)
        seeded.append(Seeded(str(path), len(chunk), len(raw), len(body)))
    return seeded


def inventory(bucket: str, accounts: tuple[str, ...] = ACCOUNTS) -> Any:
    from harvester.inventory.spec import AccountSpec, InventorySpec, StorageSpec

    return InventorySpec(
        accounts=tuple(
            AccountSpec(
                account_id=account,
                name=f"bench-{index}",
                cloudtrail=StorageSpec(bucket, "us-east-1", f"AWSLogs/{account}"),
            )
            for index, account in enumerate(accounts)
        )
    )


def apply_inventory(engine: Any, bucket: str) -> None:
    from sqlalchemy.orm import Session

    from harvester.clock import utcnow
    from harvester.crypto import SecretBox
    from harvester.inventory.plan import apply

    with Session(engine) as session, session.begin():
        apply(session, inventory(bucket), box=SecretBox.from_keys(SECRET), clock=utcnow)


@dataclass(frozen=True)
class ParseFigure:
    events: int
    cpu_seconds: float
    wall_seconds: float
    objects: int

    @property
    def events_per_second(self) -> float:
        return rate(self.events, self.cpu_seconds)


def parse_figure(paths: list[str], directory: Path) -> ParseFigure:
    """``benchmarks.parse``'s measurement of our parser, one child per object, summed."""
    from benchmarks.parse import Case, _run_child
    from harvester.synth import write_cloudtrail_object

    warmup = directory / "warmup-1mb.json.gz"
    write_cloudtrail_object(warmup, target_bytes=MB, seed=987_654)
    events, cpu, wall = 0, 0.0, 0.0
    for path in paths:
        size = Path(path).stat().st_size
        measure = _run_child("ours", Case("cloudtrail", size // MB, Path(path), warmup))
        events += measure.events
        cpu += measure.seconds
        wall += measure.wall_seconds
    return ParseFigure(events, cpu, wall, len(paths))


@dataclass
class E2EResult:
    objects: int
    events_generated: int
    uncompressed_bytes: int
    compressed_bytes: int
    seconds: float = 0.0
    parsed_after: float = 0.0  # every object done in the ledger, from the first dispatch
    events_parsed: int = 0  # the ledger's event counts
    events_scored: int = 0  # confirmed scoring claims in Redis
    max_score_backlog: int = 0
    ledger: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0  # CPU seconds the whole machine was busy during the run
    parse: ParseFigure | None = None
    error: str | None = None

    @property
    def events_per_second(self) -> float:
        return rate(self.events_scored, self.seconds)

    @property
    def ratio(self) -> float:
        if self.parse is None or not self.parse.events_per_second:
            return 0.0
        return self.events_per_second / self.parse.events_per_second

    @property
    def cpu_bound_rate(self) -> float:
        """Events/s if our processes had the cores to themselves: events / (our CPU / cores)."""
        ours = sum(self.cpu.values())
        return rate(self.events_scored, ours / (os.cpu_count() or 1))


def _ledger(engine: Any) -> tuple[dict[str, int], int]:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from harvester.db.models import ProcessedObject

    with Session(engine) as session:
        rows = session.execute(
            select(
                ProcessedObject.status,
                func.count(),
                func.coalesce(func.sum(ProcessedObject.events), 0),
            ).group_by(ProcessedObject.status)
        ).all()
    return {row[0]: int(row[1]) for row in rows}, sum(int(row[2]) for row in rows)


def _dispatched(engine: Any) -> bool:
    from sqlalchemy import text

    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT 1 FROM sources WHERE next_run_at IS NOT NULL LIMIT 1")
            ).first()
        )


def _unacked_on(client: Any, queue: str) -> int:
    """Messages of ``queue`` that kombu's Redis transport holds as delivered, not yet acked."""
    count = 0
    for raw in client.hvals("unacked"):
        try:
            _message, _exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            continue
        count += routing_key == queue
    return count


def _confirmed_claims(client: Any, prefix: str, min_ttl: int) -> int:
    """Scoring claims whose TTL shows they were confirmed (the dedup window, not processing)."""
    confirmed = 0
    batch: list[bytes] = []

    def flush() -> int:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.ttl(key)
        ttls = pipe.execute()
        batch.clear()
        return sum(1 for ttl in ttls if ttl > min_ttl)

    for key in client.scan_iter(match=f"{prefix}seen:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            confirmed += flush()
    if batch:
        confirmed += flush()
    return confirmed


def _machine_busy() -> float:
    import psutil

    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def run_e2e(
    *,
    work: Path,
    moto: Server,
    redis_server: Server,
    objects: int,
    object_mb: int,
    parse_objects: int,
    timeout: float,
    traffic: str = "org",
) -> E2EResult:
    import redis

    from harvester.clock import utcnow
    from harvester.db.engine import make_engine
    from harvester.detect.engine import EngineConfig

    redis_url = redis_server.url
    specs = plan_objects(now=utcnow(), count=objects, accounts=ACCOUNTS, regions=REGIONS, seed=1)
    began = time.perf_counter()
    seeder = seed_org_bucket if traffic == "org" else seed_bucket
    seeded = seeder(
        specs, bucket=E2E_BUCKET, target_bytes=object_mb * MB, directory=work / "objects"
    )
    result = E2EResult(
        objects=len(seeded),
        events_generated=sum(s.records for s in seeded),
        uncompressed_bytes=sum(s.uncompressed for s in seeded),
        compressed_bytes=sum(s.compressed for s in seeded),
    )
    print(
        f"  seeded {result.objects} objects, {result.events_generated} events, "
        f"{result.uncompressed_bytes / MB:.0f} MB ({result.compressed_bytes / MB:.0f} MB gzip) "
        f"in {time.perf_counter() - began:.1f}s",
        flush=True,
    )
    # The baseline, on objects of this run, before the fleet competes for the cores.
    result.parse = parse_figure([s.path for s in seeded[:parse_objects]], work / "objects")
    print(
        f"  single-process parse: {result.parse.events} events of {result.parse.objects} "
        f"objects in {result.parse.cpu_seconds:.2f} CPU s: "
        f"{result.parse.events_per_second:,.0f} events/s",
        flush=True,
    )

    with Cleanup() as local:
        db_url = create_database(local, POSTGRES_URL, "e2e")
        engine = make_engine(db_url)
        local.callback(engine.dispose)
        apply_inventory(engine, E2E_BUCKET)
        broker = redis.Redis.from_url(f"{redis_url}/0")
        state = redis.Redis.from_url(f"{redis_url}/1")
        local.callback(broker.close)
        local.callback(state.close)
        broker.flushdb()
        state.flushdb()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")}
        env.update(
            {
                "HARVESTER_DATA_DIR": str(work / "fleet-data"),
                "HARVESTER_DATABASE_URL": db_url,
                "HARVESTER_BROKER_URL": f"{redis_url}/0",
                "HARVESTER_REDIS_URL": f"{redis_url}/1",
                "HARVESTER_SECRET_KEY": SECRET,
                "HARVESTER_DISPATCH_INTERVAL": "1s",
                "HARVESTER_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            }
        )
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        fleet = CeleryProcesses(local, env, logs)
        fleet.start_worker(concurrency=2)
        print(f"  worker ready (logs in {logs}); starting beat", flush=True)
        fleet.start_beat()
        try:
            wait_for(lambda: _dispatched(engine), timeout=60, interval=0.01, what="first dispatch")
            t0 = time.perf_counter()
            busy0 = _machine_busy()
            cpu_before = fleet.cpu_seconds()
            servers0 = {
                "moto": process_cpu(moto.pid),
                "redis": process_cpu(redis_server.pid),
                "postgres (all)": postgres_cpu(),
            }
            parsed_at: float | None = None
            deadline = t0 + timeout
            while True:
                ledger, events = _ledger(engine)
                finished = sum(ledger.values()) - ledger.get("queued", 0)
                backlog = int(broker.llen("score"))
                result.max_score_backlog = max(result.max_score_backlog, backlog)
                if finished >= result.objects:
                    if parsed_at is None:
                        parsed_at = time.perf_counter()
                    if (
                        backlog == 0
                        and broker.llen("harvest") == 0
                        and _unacked_on(broker, "score") == 0
                    ):
                        break
                if time.perf_counter() > deadline:
                    raise TimeoutError(
                        f"not finished after {timeout:.0f}s: ledger {ledger}, "
                        f"score backlog {backlog}"
                    )
                time.sleep(0.05)
            t_end = time.perf_counter()
            result.machine_busy = _machine_busy() - busy0
            servers = {
                "moto": process_cpu(moto.pid),
                "redis": process_cpu(redis_server.pid),
                "postgres (all)": postgres_cpu(),
            }
            result.seconds = t_end - t0
            result.parsed_after = (parsed_at or t_end) - t0
            result.ledger, result.events_parsed = ledger, events
            cpu_after = fleet.cpu_seconds()
            result.cpu = {
                name: cpu_after[name] - cpu_before.get(name, 0.0)
                for name in cpu_after
                if not name.startswith("beat") or name == "beat"
            }
            result.cpu.update({name: servers[name] - servers0[name] for name in servers})
            result.events_scored = _confirmed_claims(
                state, EngineConfig().key_prefix, min_ttl=30 * 60
            )
        except Exception as exc:  # noqa: BLE001  report what was measured, then clean up
            result.error = f"{exc.__class__.__name__}: {exc}"
    return result


def e2e_figures(result: E2EResult) -> list[Figure]:
    parse_rate = result.parse.events_per_second if result.parse else 0.0
    if result.error:
        return [
            Figure("end to end", f"failed: {result.error}", f">= {RATIO_TARGET} x parse", False)
        ]
    complete = result.events_scored == result.events_generated
    return [
        Figure(
            "end to end: data",
            f"{result.objects} objects, {result.uncompressed_bytes / MB:.0f} MB, "
            f"{result.events_generated} events",
            ">= 200 MB",
            result.uncompressed_bytes >= 200 * MB,
        ),
        Figure(
            "end to end: first dispatch -> last scored",
            f"{result.seconds:.2f} s (all parsed at {result.parsed_after:.2f} s)",
        ),
        Figure(
            "end to end: events scored (confirmed claims)",
            f"{result.events_scored} of {result.events_generated}",
            "all",
            complete,
        ),
        Figure("end to end: events/s", f"{result.events_per_second:,.0f}"),
        Figure(
            "end to end: events/s from our CPU only (idle-machine estimate)",
            f"{result.cpu_bound_rate:,.0f} (ratio {rate(result.cpu_bound_rate, parse_rate):.2f})",
        ),
        Figure("single-process parse+normalize events/s", f"{parse_rate:,.0f}"),
        Figure(
            "end to end / single-process parse",
            f"{result.ratio:.2f}",
            f">= {RATIO_TARGET}",
            result.ratio >= RATIO_TARGET and complete,
        ),
    ]


def print_e2e_diagnosis(result: E2EResult) -> None:
    if result.error or not result.seconds:
        return
    print(
        f"  ledger {result.ledger}; events parsed (ledger) {result.events_parsed}; "
        f"max score backlog {result.max_score_backlog} batches"
    )
    cores = os.cpu_count() or 1
    print(
        f"  the machine (every user) was busy {result.machine_busy:.1f} of "
        f"{cores * result.seconds:.1f} CPU s ({cores} cores x {result.seconds:.1f} s); "
        "CPU s of ours during the run:"
    )
    for name, seconds in sorted(result.cpu.items()):
        print(f"    {name:<16} {seconds:6.2f}")
    children = sum(s for n, s in result.cpu.items() if "child" in n and n.startswith("w1"))
    if children and result.events_scored:
        print(
            f"  worker children: {children:.2f} CPU s for {result.events_scored} events = "
            f"{result.events_scored / children:,.0f} events per worker CPU second "
            "(parse + emit + score + ledger)"
        )


@dataclass(frozen=True)
class ScoreAlone:
    events: int
    batches: int
    anomalies: int
    incidents: int
    wall_seconds: float
    cpu_seconds: float


def run_score_alone(*, redis_url: str, paths: list[str], profile: bool = False) -> ScoreAlone:
    """``score_batch`` in this process (PostgreSQL + Redis state) on batches the pipeline makes.

    What each score.batch task of the end-to-end run does, without Celery around it. With
    ``profile``, prints where the time goes (cProfile, our functions, cumulative).
    """
    import cProfile
    import pstats

    import redis

    from harvester.batches import BatchBuilder
    from harvester.parse import parse_object
    from harvester.pipeline import score_batch
    from harvester.runtime import Runtime
    from harvester.settings import load_settings

    bodies: list[bytes] = []
    builder = BatchBuilder(lambda body, _n: bodies.append(body))
    for path in paths:
        with open(path, "rb") as stream:
            for event in parse_object(stream, kind="cloudtrail", bucket="bench", key=path):
                builder.add(event)
    builder.flush()
    state_url = f"{redis_url}/6"
    with Cleanup() as local:
        db_url = create_database(local, POSTGRES_URL, "score")
        settings = load_settings(
            {},
            database_url=db_url,
            redis_url=state_url,
            broker_url=state_url,
            secret_key=SECRET,
            data_dir=Path(tempfile.gettempdir()) / "ah-bench-unused",
        )
        rt = Runtime.build(settings)
        local.callback(rt.close)
        client = redis.Redis.from_url(state_url)
        local.callback(client.close)
        local.callback(client.flushdb)
        apply_inventory(rt.engine, E2E_BUCKET)
        _ = rt.scorer  # built once per process in a worker too
        profiler = cProfile.Profile() if profile else None
        events = anomalies = incidents = 0
        began, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for body in bodies:
            summary = score_batch(rt, body=body)
            events += summary.events
            anomalies += summary.anomalies
            incidents += summary.incidents
        if profiler is not None:
            profiler.disable()
        result = ScoreAlone(
            events,
            len(bodies),
            anomalies,
            incidents,
            time.perf_counter() - began,
            time.process_time() - cpu,
        )
    if profiler is not None:
        print("  where score_batch spends its time (cProfile, cumulative, our code):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(r"harvester/(detect|pipeline|batches)", 25)
    return result


def score_alone_figures(result: ScoreAlone) -> list[Figure]:
    return [
        Figure(
            "score_batch alone, one process (PostgreSQL + Redis)",
            f"{rate(result.events, result.wall_seconds):,.0f} events/s, "
            f"{rate(result.events, result.cpu_seconds):,.0f} per CPU s; "
            f"{rate(result.anomalies, result.batches):.0f} anomalies and "
            f"{rate(result.incidents, result.batches):.0f} incidents stored per batch",
        )
    ]


# --- 2. S3 requests per cycle -----------------------------------------------------------------


@dataclass
class CycleRequests:
    name: str
    new: dict[str, int]  # new objects per account
    counts: Counter[tuple[str, str]]

    def ok(self, regions: int) -> bool:
        for account, new in self.new.items():
            # Regions are discovered on the first cycle and then once an hour; the digest
            # folder (integrity) is looked at once an hour too.
            if self.counts.get((account, "LIST-discovery"), 0) > 1:
                return False
            if self.counts.get((account, "LIST-digest"), 0) > 1:
                return False
            if self.counts.get((account, "LIST"), 0) != regions:
                return False
            if self.counts.get((account, "GET"), 0) != new:
                return False
        # Digest listings are the integrity check's (hourly), shown apart from the harvest's.
        known = {"LIST", "LIST-discovery", "LIST-digest", "GET"}
        return all(kind in known for _, kind in self.counts)


class _MovingClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def run_requests(*, work: Path, redis_url: str) -> list[CycleRequests]:
    import boto3
    from sqlalchemy.orm import Session

    from harvester.aws.session import ClientSettings, SessionFactory
    from harvester.crypto import SecretBox
    from harvester.db.migrate import upgrade
    from harvester.embedded import run_cycle
    from harvester.inventory.plan import apply
    from harvester.runtime import Runtime
    from harvester.settings import load_settings
    from harvester.synth import write_cloudtrail_object

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    clock = _MovingClock(datetime.now(UTC).replace(second=0, microsecond=0))
    serial = 0

    def put(account: str, region: str, when: datetime) -> None:
        nonlocal serial
        serial += 1
        path = work / "requests-object.json.gz"
        write_cloudtrail_object(
            path,
            target_bytes=20_000,
            seed=50_000 + serial,
            account_id=account,
            region=region,
            start=when,
        )
        from benchmarks._fleet import ct_key, unique_suffix

        key = ct_key(account, region, when, unique_suffix(serial, "requests"))
        s3.put_object(Bucket=REQUESTS_BUCKET, Key=key, Body=path.read_bytes())

    settings = load_settings(
        {},
        data_dir=work / "embedded",
        secret_key=SECRET,
        redis_url=f"{redis_url}/2",
        broker_url=f"{redis_url}/2",
    )
    rt = Runtime.build(settings, clock=clock, embedded=True)
    tally = RequestTally()

    def hook(params: dict[str, Any], event_name: str, **_: Any) -> None:
        tally.record(operation_of(event_name), params)

    # A counting factory in place of the default one (a cached_property: assignable).
    rt.aws = SessionFactory(
        settings=ClientSettings(fetch_concurrency=rt.fetch_concurrency),
        event_hooks=[("before-parameter-build.s3", hook)],
    )
    try:
        upgrade(rt.engine)
        with Session(rt.engine) as session, session.begin():
            apply(session, inventory(REQUESTS_BUCKET), box=SecretBox.from_keys(SECRET), clock=clock)
        cycles: list[CycleRequests] = []

        # Cycle 1: three objects per scope, all new.
        for account in ACCOUNTS:
            for region in REGIONS:
                for step in range(3):
                    put(account, region, clock() - timedelta(minutes=40 - 10 * step))
        run_cycle(rt)
        cycles.append(
            CycleRequests(
                "first (new data)", dict.fromkeys(ACCOUNTS, 3 * len(REGIONS)), tally.reset()
            )
        )
        # Cycle 2: a cadence later, one new object per region of the first account only.
        clock.now += timedelta(minutes=6)
        for region in REGIONS:
            put(ACCOUNTS[0], region, clock() - timedelta(minutes=2))
        run_cycle(rt)
        new = {ACCOUNTS[0]: len(REGIONS), ACCOUNTS[1]: 0}
        cycles.append(CycleRequests("steady (a few new)", new, tally.reset()))
        # Cycle 3: nothing new.
        clock.now += timedelta(minutes=6)
        run_cycle(rt)
        cycles.append(CycleRequests("idle", dict.fromkeys(ACCOUNTS, 0), tally.reset()))
        return cycles
    finally:
        rt.close()


def print_requests(cycles: list[CycleRequests]) -> None:
    header = (
        f"  {'cycle':<20} {'source (account)':<17} {'new':>4} {'LIST disc.':>10} "
        f"{'LIST':>5} {'GET':>4} {'digest LIST':>11}  other"
    )
    print(header)
    for cycle in cycles:
        for account, new in cycle.new.items():
            other = {
                kind: n
                for (acct, kind), n in cycle.counts.items()
                if acct == account and kind not in ("LIST", "LIST-discovery", "LIST-digest", "GET")
            }
            print(
                f"  {cycle.name:<20} {account:<17} {new:>4} "
                f"{cycle.counts.get((account, 'LIST-discovery'), 0):>10} "
                f"{cycle.counts.get((account, 'LIST'), 0):>5} "
                f"{cycle.counts.get((account, 'GET'), 0):>4} "
                f"{cycle.counts.get((account, 'LIST-digest'), 0):>11}  {other or ''}"
            )
        strays = {k: n for k, n in cycle.counts.items() if k[0] not in cycle.new}
        if strays:
            print(f"  {cycle.name:<20} (no account)      {strays}")


def requests_figures(cycles: list[CycleRequests]) -> list[Figure]:
    figures = []
    for cycle in cycles:
        lists = max(cycle.counts.get((a, "LIST"), 0) for a in cycle.new)
        discovery = max(cycle.counts.get((a, "LIST-discovery"), 0) for a in cycle.new)
        gets = sum(cycle.counts.get((a, "GET"), 0) for a in cycle.new)
        digest = max(cycle.counts.get((a, "LIST-digest"), 0) for a in cycle.new)
        new = sum(cycle.new.values())
        figures.append(
            Figure(
                f"S3 per source, {cycle.name} cycle",
                f"LIST {lists} + {discovery} discovery; GET {gets} for {new} new"
                + (f" (+ {digest} digest LIST, integrity, hourly)" if digest else ""),
                f"LIST {len(REGIONS)} (1/region) + <= 1 hourly; GET = new",
                cycle.ok(len(REGIONS)),
            )
        )
    return figures


# --- 3. the score queue alone -----------------------------------------------------------------


def _child_settings(broker_url: str) -> Any:
    from harvester.settings import load_settings

    return load_settings({}, broker_url=broker_url, redis_url=broker_url)


def build_bodies(paths: list[str], batch_events: int = 1000) -> list[tuple[bytes, int]]:
    """Score batch bodies of exactly ``batch_events`` events (the last one may be short)."""
    from harvester.batches import BatchBuilder
    from harvester.parse import parse_object

    bodies: list[tuple[bytes, int]] = []
    # The byte bound is lifted so that every batch holds the same number of events.
    builder = BatchBuilder(
        lambda body, n: bodies.append((body, n)), max_events=batch_events, max_bytes=64 * MB
    )
    for path in paths:
        with open(path, "rb") as stream:
            for event in parse_object(stream, kind="cloudtrail", bucket="bench", key=path):
                builder.add(event)
    builder.flush()
    return [b for b in bodies if b[1] == batch_events] or bodies


def child_producer(broker_url: str, count: int, paths: list[str]) -> None:
    from workers.app import make_app

    bodies = build_bodies(paths)
    app = make_app(_child_settings(broker_url))
    with app.connection_for_write() as conn:
        conn.ensure_connection()
        began, cpu = time.time(), time.process_time()
        events = size = 0
        for index in range(count):
            body, n = bodies[index % len(bodies)]
            app.send_task("score.batch", (body,), queue="score", connection=conn)
            events += n
            size += len(body)
        ended, cpu = time.time(), time.process_time() - cpu
    print(
        json.dumps(
            {
                "began": began,
                "ended": ended,
                "cpu": cpu,
                "messages": count,
                "events": events,
                "bytes": size,
                "distinct_bodies": len(bodies),
            }
        ),
        flush=True,
    )


def child_consumer(broker_url: str, count: int, mode: str) -> None:
    """Read ``count`` score.batch messages as a Celery worker does; ``mode`` "decode" also
    turns each body into events with ``decode_batch``, "transport" only counts it."""
    from kombu import Connection, Consumer, Queue

    from harvester.batches import decode_batch
    from workers.app import SERIALIZER, make_app

    make_app(_child_settings(broker_url))  # registers the serializer
    decode = mode == "decode"
    first = last = cpu = 0.0
    received = events = 0

    def on_message(body: Any, message: Any) -> None:
        nonlocal first, last, received, events, cpu
        payload: bytes = body[0][0]  # Celery protocol 2: (args, kwargs, embed)
        events += len(decode_batch(payload)) if decode else 1
        message.ack()
        received += 1
        last, cpu = time.time(), time.process_time()
        if received == 1:
            first = last

    with Connection(broker_url) as conn:
        accept = [SERIALIZER, "json"]
        with Consumer(conn, [Queue("score")], callbacks=[on_message], accept=accept) as consumer:
            # A Celery worker reserves concurrency x prefetch multiplier messages: 2 here.
            consumer.qos(prefetch_count=2)
            print("ready", flush=True)
            cpu_ready = time.process_time()
            deadline = time.time() + 300
            while received < count and time.time() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    continue
    print(
        json.dumps(
            {
                "first": first,
                "last": last,
                "messages": received,
                "events": events,
                "cpu": cpu - cpu_ready,
            }
        ),
        flush=True,
    )


@dataclass(frozen=True)
class QueueResult:
    mode: str
    messages: int
    events: int
    bytes: int
    seconds: float  # producer's first send to the consumer's last message
    producer_seconds: float
    producer_cpu: float  # while sending
    consumer_cpu: float  # from ready to the last message

    @property
    def events_per_second(self) -> float:
        return rate(self.events, self.seconds)


def run_queue(*, redis_url: str, messages: int, paths: list[str], mode: str) -> QueueResult:
    import subprocess

    import redis

    broker_url = f"{redis_url}/3"
    client = redis.Redis.from_url(broker_url)
    client.flushdb()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-m", "benchmarks.pipeline", "--child"]
    procs: list[subprocess.Popen[str]] = []
    try:
        consumer = subprocess.Popen(
            [*command, "consumer", broker_url, str(messages), mode],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        procs.append(consumer)
        assert consumer.stdout is not None
        line = consumer.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the consumer did not start: {line!r}")
        producer = subprocess.Popen(
            [*command, "producer", broker_url, str(messages), *paths],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        procs.append(producer)
        produced_out, _ = producer.communicate(timeout=300)
        consumed_out, _ = consumer.communicate(timeout=300)
        produced = json.loads(produced_out.strip().splitlines()[-1])
        consumed = json.loads(consumed_out.strip().splitlines()[-1])
        if consumed["messages"] != messages:
            raise RuntimeError(f"the consumer got {consumed['messages']} of {messages} messages")
        return QueueResult(
            mode=mode,
            messages=messages,
            events=produced["events"],
            bytes=produced["bytes"],
            seconds=consumed["last"] - produced["began"],
            producer_seconds=produced["ended"] - produced["began"],
            producer_cpu=produced["cpu"],
            consumer_cpu=consumed["cpu"],
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        client.flushdb()
        client.close()


def queue_figures(decoded: QueueResult, transport: QueueResult) -> list[Figure]:
    def rates(result: QueueResult) -> str:
        return (
            f"{result.events_per_second:,.0f} events/s "
            f"({rate(result.messages, result.seconds):,.0f} msg/s of "
            f"{result.bytes / result.messages / 1024:.0f} KB); consumer CPU alone: "
            f"{rate(result.events, result.consumer_cpu):,.0f} events/s"
        )

    return [
        Figure(
            "score queue: send_task -> Redis -> kombu consumer + decode_batch",
            rates(decoded),
            f">= {QUEUE_TARGET:,.0f} events/s",
            decoded.events_per_second >= QUEUE_TARGET,
        ),
        Figure("score queue: the same without decode_batch", rates(transport)),
        Figure(
            "score queue: producer alone (send_task)",
            f"{rate(decoded.events, decoded.producer_seconds):,.0f} events/s "
            f"({1000 * decoded.producer_cpu / decoded.messages:.1f} CPU ms/msg)",
        ),
    ]


# --- 4. a dispatch tick over 10,000 sources ----------------------------------------------------


@dataclass
class DispatchResult:
    sources: int
    all_due: list[float] = field(default_factory=list)
    tenth_due: list[float] = field(default_factory=list)
    dispatched_all: int = 0
    dispatched_tenth: int = 0
    with_enqueue: float = 0.0


def _insert_sources(engine: Any, count: int) -> None:
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from harvester.db.models import Account, Source

    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.execute(
            insert(Account),
            [
                {
                    "account_id": f"{100_000_000_000 + i}",
                    "name": f"bench-{i}",
                    "partition": "aws",
                    "enabled": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
        ids = session.scalars(select(Account.id).order_by(Account.id)).all()
        session.execute(
            insert(Source),
            [
                {
                    "kind": "cloudtrail",
                    "account_pk": pk,
                    "cluster_name": "",
                    "bucket": "bench-org-trail",
                    "region": "us-east-1",
                    "prefix": f"AWSLogs/{100_000_000_000 + i}",
                    "enabled": True,
                    "health": "new",
                    "last_run_objects": 0,
                    "last_run_events": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, pk in enumerate(ids)
            ],
        )


def run_dispatch(*, work: Path, redis_url: str, sources: int, repeat: int) -> DispatchResult:
    from sqlalchemy import text

    from harvester.pipeline import dispatch_due
    from harvester.runtime import Runtime
    from harvester.settings import load_settings
    from workers.app import make_app

    result = DispatchResult(sources)
    with Cleanup() as local:
        db_url = create_database(local, POSTGRES_URL, "dispatch")
        settings = load_settings(
            {},
            data_dir=work / "dispatch-data",
            database_url=db_url,
            redis_url=f"{redis_url}/4",
            broker_url=f"{redis_url}/5",
            secret_key=SECRET,
        )
        rt = Runtime.build(settings)
        local.callback(rt.close)
        began = time.perf_counter()
        _insert_sources(rt.engine, sources)
        print(f"  inserted {sources} accounts and sources in {time.perf_counter() - began:.1f}s")
        sent = 0

        def count(due: Sequence[tuple[int, timedelta]]) -> None:
            nonlocal sent
            sent += len(due)

        def all_due() -> None:
            with rt.engine.begin() as conn:
                conn.execute(text("UPDATE sources SET next_run_at = NULL"))

        def tenth_due() -> None:
            with rt.engine.begin() as conn:
                conn.execute(text("UPDATE sources SET next_run_at = now() + interval '1 day'"))
                conn.execute(
                    text(
                        "UPDATE sources SET next_run_at = now() - interval '1 minute' "
                        "WHERE id % 10 = 0"
                    )
                )

        for prepare, into in ((all_due, result.all_due), (tenth_due, result.tenth_due)):
            for _ in range(repeat):
                prepare()
                sent = 0
                began = time.perf_counter()
                dispatch_due(rt, enqueue=count)
                into.append(time.perf_counter() - began)
            if into is result.all_due:
                result.dispatched_all = sent
            else:
                result.dispatched_tenth = sent

        # For information: the same all-due tick with the real enqueue of workers.tasks.
        app = make_app(settings)
        local.callback(app.close)
        all_due()
        with app.connection_for_write() as conn:
            conn.ensure_connection()

            def enqueue(due: Sequence[tuple[int, timedelta]]) -> None:
                # As workers.tasks does it: one producer for the whole tick.
                with app.producer_or_acquire() as producer:
                    for source_id, cadence in due:
                        app.send_task(
                            "harvest.source",
                            (source_id,),
                            queue=settings.harvest_queue,
                            expires=cadence.total_seconds(),
                            producer=producer,
                        )

            began = time.perf_counter()
            dispatch_due(rt, enqueue=enqueue)
            result.with_enqueue = time.perf_counter() - began
        rt.redis.flushdb()
        import redis

        broker = redis.Redis.from_url(settings.broker_url)
        broker.flushdb()
        broker.close()
    return result


def dispatch_figures(result: DispatchResult) -> list[Figure]:
    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s median (max {max(values):.3f})"

    return [
        Figure(
            f"dispatch tick, {result.sources} sources, all due ({result.dispatched_all} sent)",
            fmt(result.all_due),
            f"< {DISPATCH_TARGET:.0f} s",
            max(result.all_due) < DISPATCH_TARGET,
        ),
        Figure(
            f"dispatch tick, {result.sources} sources, 1/10 due ({result.dispatched_tenth} sent)",
            fmt(result.tenth_due),
            f"< {DISPATCH_TARGET:.0f} s",
            max(result.tenth_due) < DISPATCH_TARGET,
        ),
        Figure(
            "dispatch tick, all due, real Celery enqueue",
            f"{result.with_enqueue:.3f} s",
        ),
    ]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 MB end to end, fewer batches")
    parser.add_argument("--skip-e2e", action="store_true", help="sections 2-4 only")
    parser.add_argument("--objects", type=int, help="CloudTrail objects (default 40, quick 4)")
    parser.add_argument("--object-mb", type=int, default=5, help="MB per object, uncompressed")
    parser.add_argument("--messages", type=int, help="score batches (default 300, quick 60)")
    parser.add_argument("--sources", type=int, default=10_000, help="sources for the dispatch tick")
    parser.add_argument(
        "--traffic",
        choices=("org", "random"),
        default="org",
        help="end-to-end objects: the generated organization's traffic (realistic, few "
        "anomalies; default) or harvester.synth.logs records (random principals and "
        "addresses, about 2%% of events anomalous)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile", action="store_true", help="profile score_batch (after the end-to-end run)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        role, broker_url, count, *rest = args.child
        if role == "producer":
            child_producer(broker_url, int(count), rest)
        else:
            child_consumer(broker_url, int(count), rest[0])
        return 0

    objects = args.objects or (4 if args.quick else 40)
    messages = args.messages or (60 if args.quick else 300)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {_load()} (other work on the machine skews every figure)",
        flush=True,
    )
    figures: list[Figure] = []
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ah-bench-pipeline-"))
    with Cleanup() as cleanup:
        if not args.keep:
            import shutil

            cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        else:
            print(f"work directory: {work}")
        moto = start_moto(cleanup)
        redis_server = start_redis(cleanup, work)
        redis_url = redis_server.url
        cleanup.enter_context(environ(aws_env(moto.url)))
        print(f"moto {moto.url}, redis {redis_url}, PostgreSQL {POSTGRES_URL}", flush=True)

        object_paths: list[str] = []
        if not args.skip_e2e:
            print(
                f"\n1. end to end: {objects} objects x {args.object_mb} MB, {args.traffic} traffic",
                flush=True,
            )
            e2e = run_e2e(
                work=work,
                moto=moto,
                redis_server=redis_server,
                objects=objects,
                object_mb=args.object_mb,
                parse_objects=min(objects, 8),
                timeout=240,
                traffic=args.traffic,
            )
            print_e2e_diagnosis(e2e)
            figures += e2e_figures(e2e)
            object_paths = sorted(str(p) for p in (work / "objects").glob("object-*.json.gz"))
            if object_paths:
                print("\n1b. score_batch alone, in this process, on the same kind of batches")
                alone = run_score_alone(
                    redis_url=redis_url,
                    paths=object_paths[: min(len(object_paths), 6)],
                    profile=args.profile,
                )
                print(
                    f"  {alone.events} events in {alone.batches} batches: "
                    f"{alone.wall_seconds:.2f} s wall, {alone.cpu_seconds:.2f} CPU s",
                    flush=True,
                )
                figures += score_alone_figures(alone)

        print("\n2. S3 requests per cycle (embedded run_cycle, 2 sources x 2 regions)", flush=True)
        cycles = run_requests(work=work, redis_url=redis_url)
        print_requests(cycles)
        figures += requests_figures(cycles)

        print(f"\n3. score queue: {messages} batches of 1,000 events", flush=True)
        if not object_paths:
            from harvester.synth import write_cloudtrail_object

            for index in range(3):
                path = work / f"queue-{index}.json.gz"
                write_cloudtrail_object(path, target_bytes=4 * MB, seed=70_000 + index)
                object_paths.append(str(path))
        results = {}
        for mode in ("transport", "decode"):
            queue = run_queue(
                redis_url=redis_url, messages=messages, paths=object_paths[:3], mode=mode
            )
            results[mode] = queue
            print(
                f"  {mode}: {queue.messages} messages, {queue.events} events in "
                f"{queue.seconds:.2f}s (producer done after {queue.producer_seconds:.2f}s)",
                flush=True,
            )
        figures += queue_figures(results["decode"], results["transport"])

        print(f"\n4. dispatch tick over {args.sources} sources in PostgreSQL", flush=True)
        dispatch = run_dispatch(work=work, redis_url=redis_url, sources=args.sources, repeat=3)
        figures += dispatch_figures(dispatch)

    print(f"\nresults ({time.perf_counter() - started:.0f}s in all; load average now {_load()})\n")
    print(render_table(figures))
    return 0 if all(f.ok is not False for f in figures) else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every process and database started was stopped or dropped")
        raise SystemExit(130) from None
