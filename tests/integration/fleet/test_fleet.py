"""The pipeline on real processes: worker (prefork, 2), beat, Redis, PostgreSQL, moto.

Fault tests each break one thing in the middle of a run and check that nothing is lost.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.models import Account, ProcessedObject, Source
from harvester.detect.engine import EngineConfig
from harvester.detect.model import stable_digest
from harvester.synth.logs import cloudtrail_record
from tests.conftest import REPO, FixedClock, wait_until
from tests.integration.fleet.conftest import Fleet
from tests.integration.seeding import ACCOUNTS, CLUSTER, REGIONS, Bucket, ct_key

PREFIX = EngineConfig().key_prefix


def scored(fleet: Fleet, event_ids: set[str], source: str = "cloudtrail") -> set[str]:
    """Event ids whose scoring committed (their claim was confirmed for the dedup window)."""
    client = redis.Redis.from_url(fleet.env["HARVESTER_REDIS_URL"])
    try:
        pipe = client.pipeline(transaction=False)
        ordered = sorted(event_ids)
        for event_id in ordered:
            pipe.ttl(f"{PREFIX}seen:{stable_digest(source, event_id)[:24]}")
        ttls = pipe.execute()
    finally:
        client.close()
    # A confirmed claim lives for the dedup window (hours); a pending one for minutes.
    return {i for i, ttl in zip(ordered, ttls, strict=True) if ttl > 30 * 60}


def seed(bucket: Bucket, now: FixedClock, *, per_scope: int = 3) -> None:
    start = now() - timedelta(hours=2)
    for account in ACCOUNTS:
        for region in REGIONS:
            for step in range(per_scope):
                bucket.put_trail(account, region, start + timedelta(minutes=15 * step), records=20)


def ct_ids(bucket: Bucket) -> set[str]:
    return {
        i for key, ids in bucket.seeded.event_ids.items() if key.startswith("AWSLogs/") for i in ids
    }


def test_beat_and_workers_harvest_everything_once(
    fleet: Fleet, bucket: Bucket, now: FixedClock
) -> None:
    seed(bucket, now)
    bucket.put_eks(ACCOUNTS[0], now() - timedelta(hours=1), seed=3)
    fleet.start_worker()
    fleet.start_beat()
    total = len(bucket.seeded.event_ids)
    wait_until(
        lambda: fleet.ledger().get("done", 0) == total, timeout=120, what="every object done"
    )
    expected = ct_ids(bucket)
    wait_until(lambda: scored(fleet, expected) == expected, timeout=60, what="every event scored")
    eks = {
        i for key, ids in bucket.seeded.event_ids.items() if key.startswith("EKSLogs/") for i in ids
    }
    wait_until(lambda: scored(fleet, eks, "eks") == eks, timeout=60, what="every EKS event scored")
    assert fleet.ledger() == {"done": total}


def test_sigkill_worker_child_mid_object(fleet: Fleet, bucket: Bucket, now: FixedClock) -> None:
    # Large objects keep a child busy long enough to be killed in the middle.
    start = now() - timedelta(hours=1)
    for step in range(4):
        bucket.put_trail(
            ACCOUNTS[0], REGIONS[0], start + timedelta(minutes=10 * step), records=6000
        )
    worker = fleet.start_worker()
    fleet.start_beat()

    def busy_child() -> int | None:
        with Session(fleet.engine) as session:
            queued = session.query(ProcessedObject).filter_by(status="queued").count()
        children = [c for c in fleet.children(worker) if c.cpu_percent(interval=0.05) > 20]
        return children[0].pid if queued and children else None

    pid = wait_until(busy_child, timeout=90, interval=0.1, what="a child busy on an object")
    os.kill(pid, signal.SIGKILL)
    log = fleet.logs / "worker-w1.log"
    wait_until(
        lambda: b"WorkerLostError" in log.read_bytes(), timeout=30, what="the lost task noticed"
    )
    total = len(bucket.seeded.event_ids)
    wait_until(
        lambda: fleet.ledger().get("done", 0) == total,
        timeout=180,
        what="every object done after the kill",
    )
    expected = ct_ids(bucket)
    wait_until(lambda: scored(fleet, expected) == expected, timeout=120, what="every event scored")


def fast_cadence(fleet: Fleet) -> None:
    """A 1-minute cadence: work a fault left for the next cycle is redone within the test."""
    with fleet.engine.begin() as conn:
        conn.execute(update(Account).values(cadence_seconds=60))


@pytest.mark.timeout(600)
def test_redis_restart_mid_run(fleet: Fleet, bucket: Bucket, now: FixedClock) -> None:
    seed(bucket, now, per_scope=4)
    fast_cadence(fleet)
    fleet.start_worker()
    fleet.start_beat()
    wait_until(lambda: fleet.ledger().get("done", 0) > 0, timeout=90, what="the run to start")
    fleet.redis.stop()
    fleet.redis.start()
    total = len(bucket.seeded.event_ids)
    wait_until(
        lambda: fleet.ledger().get("done", 0) == total,
        # Messages prefetched by the worker when Redis went down are lost with it; their
        # objects stay "queued" in the ledger and are queued again after HARVESTER_REQUEUE_AFTER.
        timeout=360,
        what="the run to complete after the restart",
    )
    expected = ct_ids(bucket)
    wait_until(lambda: scored(fleet, expected) == expected, timeout=120, what="every event scored")


def test_postgres_connections_dropped_mid_run(
    fleet: Fleet, bucket: Bucket, now: FixedClock
) -> None:
    seed(bucket, now, per_scope=4)
    fast_cadence(fleet)
    fleet.start_worker()
    fleet.start_beat()
    wait_until(lambda: fleet.ledger().get("done", 0) > 0, timeout=90, what="the run to start")
    database = fleet.engine.url.database
    with fleet.engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar()
    assert (killed or 0) > 0
    total = len(bucket.seeded.event_ids)
    wait_until(
        lambda: fleet.ledger().get("done", 0) == total, timeout=360, what="the run to complete"
    )
    assert set(fleet.ledger()) == {"done"}
    expected = ct_ids(bucket)
    wait_until(lambda: scored(fleet, expected) == expected, timeout=120, what="every event scored")


def test_two_beats_dispatch_once_per_interval(fleet: Fleet) -> None:
    # No worker: dispatch messages pile up in the queue, one per interval if one beat leads.
    first = fleet.start_beat("b1")
    fleet.start_beat("b2")
    client = redis.Redis.from_url(fleet.env["HARVESTER_BROKER_URL"])
    wait_until(lambda: client.llen("harvest") >= 6, timeout=60, what="six dispatches")
    # Six dispatches took at least five intervals; two leaders would have sent about twice.
    leaders = [
        b"now the leader" in (fleet.logs / f"beat-{n}.log").read_bytes() for n in ("b1", "b2")
    ]
    assert leaders.count(True) == 1
    count_then = client.llen("harvest")
    assert count_then <= 8
    # The leader dies: the standby takes over within the lock's TTL.
    leader_proc = first if leaders[0] else fleet.procs[-1]
    leader_proc.kill()
    leader_proc.wait(timeout=10)
    other = "b2" if leaders[0] else "b1"
    wait_until(
        lambda: (fleet.logs / f"beat-{other}.log").read_bytes().count(b"now the leader") >= 1,
        timeout=30,
        what="takeover",
    )
    grown = client.llen("harvest")
    wait_until(
        lambda: client.llen("harvest") > grown + 2, timeout=30, what="dispatches after takeover"
    )
    client.close()


def test_late_earlier_key_and_corrupt_object(fleet: Fleet, bucket: Bucket, now: FixedClock) -> None:
    account, region = ACCOUNTS[1], REGIONS[0]
    first = bucket.put_trail(account, region, now() - timedelta(minutes=20))
    bad = ct_key(account, region, now() - timedelta(minutes=25), "corruptcorrupt00")
    bucket.put_raw(bad, b"\x1f\x8b\x08\x00not really gzip")
    fleet.start_worker()
    fleet.start_beat()
    wait_until(lambda: fleet.ledger() == {"done": 1, "corrupt": 1}, timeout=90, what="first cycle")
    late = bucket.put_trail(account, region, now() - timedelta(minutes=50))
    # Bring the next cycle forward instead of waiting a cadence.
    with fleet.engine.begin() as conn:
        conn.execute(update(Source).values(next_run_at=None))
    wait_until(
        lambda: fleet.ledger() == {"done": 2, "corrupt": 1}, timeout=90, what="the late object"
    )
    expected = set(bucket.seeded.event_ids[first]) | set(bucket.seeded.event_ids[late])
    wait_until(lambda: scored(fleet, expected) == expected, timeout=60, what="scored")
    assert CLUSTER  # the inventory also holds a cluster with no logs: it must not block anything


def test_poison_message_ends_as_a_dead_letter(fleet: Fleet) -> None:
    """A message that keeps killing its worker is recorded once, then acknowledged."""
    client = redis.Redis.from_url(fleet.env["HARVESTER_REDIS_URL"])
    task_id = "poison-0001"
    # As if it had already been started (and its worker killed) five times.
    client.set(f"harvester:deliveries:{task_id}:0", 5)
    client.close()
    from celery import Celery

    sender = Celery(broker=fleet.env["HARVESTER_BROKER_URL"])
    sender.send_task(
        "harvest.object",
        args=(1, [["some/key.json.gz", "etag"]]),
        task_id=task_id,
        queue="harvest",
        serializer="json",
    )
    sender.close()
    fleet.start_worker()
    from harvester.db.models import DeadLetter

    def letters() -> list[DeadLetter]:
        with Session(fleet.engine) as session:
            return list(session.query(DeadLetter).all())

    (letter,) = wait_until(letters, timeout=60, what="the dead letter")
    assert letter.task == "harvest.object"
    assert letter.task_id == task_id
    assert "some/key.json.gz" in letter.args
    assert fleet.ledger() == {}


def test_worker_probes_and_metrics(fleet: Fleet, bucket: Bucket, now: FixedClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ready and heartbeat files for the probes; one metrics endpoint summing both children."""
    import urllib.request

    from tests.conftest import _free_port, http_get

    seed(bucket, now, per_scope=1)
    # Root activity in one object, so scoring stores anomalies for the metrics to count.
    rng = random.Random(3)
    when = now() - timedelta(minutes=30)
    root = [
        cloudtrail_record(
            rng, account_id=ACCOUNTS[1], region=REGIONS[0], when=when, identity_type="Root"
        )
        for _ in range(3)
    ]
    key = ct_key(ACCOUNTS[1], REGIONS[0], when, "root0000000000000")
    bucket.put_raw(key, gzip.compress(json.dumps({"Records": root}).encode()))
    bucket.seeded.event_ids[key] = [r["eventID"] for r in root]
    port = _free_port()
    health = tmp_path / "health"
    fleet.start_worker(
        extra_env={
            "HARVESTER_METRICS_PORT": str(port),
            # What --metrics-addr sets: this machine only.
            "HARVESTER_METRICS_ADDR": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
            "HARVESTER_HEALTH_DIR": str(health),
            "HARVESTER_LOG_FORMAT": "json",
        }
    )
    wait_until(
        lambda: (health / "ready").exists() and (health / "heartbeat").exists(),
        timeout=30,
        what="probe files",
    )
    fleet.start_beat()
    total = len(bucket.seeded.event_ids)
    wait_until(
        lambda: fleet.ledger().get("done", 0) == total, timeout=120, what="every object done"
    )

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    def objects_counted() -> bool:
        line = f'harvester_objects_total{{kind="cloudtrail",outcome="done"}} {float(total)}'
        return line in scrape()

    wait_until(
        objects_counted, timeout=30, what=f"the objects in the worker's metrics: {scrape()[-3000:]}"
    )
    text = scrape()
    assert 'harvester_worker_processes{queue="harvest"} 2.0' in text
    assert "harvester_s3_requests_total" in text
    # Error and dead-letter series exist at zero before the first one (issue 12, item 1).
    assert 'harvester_dead_letters_total{task="score.batch"} 0.0' in text
    assert 'harvester_parse_errors_total{kind="cloudtrail",reason="bad_gzip"} 0.0' in text
    assert 'harvester_task_gave_up_total{task="harvest.source"} 0.0' in text
    # Every anomaly stored by the score worker is counted once, by detector and severity.
    wait_until(
        lambda: anomalies_in_metrics(scrape()) == anomalies_stored(fleet) != {},
        timeout=30,
        what=f"the stored anomalies {anomalies_stored(fleet)} in the worker's metrics",
    )
    # Logs: one JSON object per line (Celery's banner aside), task and source ids where
    # known, and no INFO line per score batch (issue 12, item 9).
    lines = (fleet.logs / "worker-w1.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    harvests = [r for r in records if "harvest.source[" in str(r["message"])]
    assert harvests
    assert all("task_id" in r and "source_id" in r for r in harvests)
    assert all(r["level"] != "INFO" for r in records if "score.batch[" in str(r["message"]))

    # The same port answers the probes, and nothing but them and /metrics.
    def status(path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{port}{path}")

    assert status("/healthz")[0] == 200
    code, body = status("/readyz")
    assert code == 200, body
    assert json.loads(body)["checks"] == {
        "database": "ok",
        "broker": "ok",
        "redis": "ok",
        "started": "ok",
    }
    assert status("/nothing-here")[0] == 404


_ANOMALIES_LINE = re.compile(
    r'^harvester_anomalies_total\{detector="([^"]+)",severity="([^"]+)"\} ([0-9.]+)$', re.M
)


def anomalies_in_metrics(text: str) -> dict[tuple[str, str], int]:
    return {(d, s): int(float(n)) for d, s, n in _ANOMALIES_LINE.findall(text) if float(n)}


def anomalies_stored(fleet: Fleet) -> dict[tuple[str, str], int]:
    with Session(fleet.engine) as session:
        rows = session.execute(
            select(AnomalyRecord.detector, AnomalyRecord.severity, func.count()).group_by(
                AnomalyRecord.detector, AnomalyRecord.severity
            )
        )
        return {(detector, severity): count for detector, severity, count in rows}


def test_worker_without_its_database_exits_before_ready(fleet: Fleet) -> None:
    """A worker that cannot reach its database says so and stops: it never logs "ready"."""
    log_path = fleet.logs / "worker-nodb.log"
    env = fleet.env | {"HARVESTER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
    with log_path.open("ab") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "harvest"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
    text = log_path.read_text()
    assert proc.returncode == 1, text[-3000:]
    assert "ready." not in text
    assert "the worker cannot start: cannot reach the database (OperationalError)" in text
