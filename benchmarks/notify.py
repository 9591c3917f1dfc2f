"""Notification latency: ``python -m benchmarks.notify`` (about a minute).

    python -m benchmarks.notify                      # 5 s dispatch interval, 120 findings
    python -m benchmarks.notify --interval 30 --findings 60 --spread 4

From an anomaly's database commit to its webhook's receipt, through the fleet as it runs:
a private redis-server as the broker, a fresh PostgreSQL database, ``celery beat`` sending
``notify.send`` every dispatch interval and one ``celery worker -Q notify`` draining the
outbox to a local HTTP receiver. Findings are committed one by one at random times over
``--spread`` intervals by this process (the score workers' part), each in the transaction
that writes its outbox row.

The baseline, measured in the same run on the same database and receiver: commit then an
immediate in-process drain (what the latency would be if a drain ran right after every
commit). The target is p95 under 2 dispatch intervals; the table also checks that every
finding arrived exactly once per delivery id, signed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import orjson
from sqlalchemy.orm import Session, sessionmaker

from benchmarks._fleet import (
    Cleanup,
    Figure,
    create_database,
    free_port,
    render_table,
    start_redis,
    wait_for,
)
from harvester.crypto import SecretBox
from harvester.db.engine import make_engine
from harvester.detect import repository as repo
from harvester.detect.model import Anomaly
from harvester.notify.deliver import drain
from harvester.notify.model import DestinationSpec
from harvester.notify.senders import SendContext
from harvester.notify.signing import verify
from harvester.notify.store import upsert_destination
from tests.unit.detect.builders import T0, ct, scorer, sso

POSTGRES_URL = os.environ.get(
    "HARVESTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SECRET = "benchmark-notify-secret-key"  # noqa: S105  a throwaway key for a throwaway database
HOOK_SECRET = "benchmark-webhook-secret"  # noqa: S105


class Receipts:
    """What the receiver got: anomaly id → receipt times, and whether each was signed right."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_anomaly: dict[str, list[float]] = {}
        self.deliveries: Counter[str] = Counter()
        self.bad_signatures = 0

    def record(self, headers: dict[str, str], body: bytes) -> None:
        now = time.time()
        ok = verify(
            HOOK_SECRET,
            headers.get("X-Harvester-Timestamp", ""),
            body,
            headers.get("X-Harvester-Signature-256", ""),
        )
        finding = orjson.loads(body)
        with self.lock:
            self.by_anomaly.setdefault(finding["id"], []).append(now)
            self.deliveries[headers.get("X-Harvester-Delivery", "")] += 1
            self.bad_signatures += not ok


def start_receiver(cleanup: Cleanup, receipts: Receipts) -> str:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receipts.record(dict(self.headers.items()), body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cleanup.callback(server.server_close)
    cleanup.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def findings(count: int, salt: str) -> list[Anomaly]:
    (base,) = (
        scorer()
        .score_and_commit(
            [ct("StopLogging", "cloudtrail", identity=sso(), params={"name": "t"}, when=T0)]
        )
        .anomalies
    )
    return [
        msgspec.structs.replace(base, id=f"an-{salt}-{i:08d}", dedup_key=f"{salt}{i:030x}")
        for i in range(count)
    ]


def commit(sessions: sessionmaker[Session], anomaly: Anomaly) -> float:
    with sessions() as session, session.begin():
        repo.save_anomalies(session, [anomaly], clock=lambda: datetime.now(UTC))
    return time.time()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="dispatch interval, s")
    parser.add_argument("--findings", type=int, default=120)
    parser.add_argument("--spread", type=float, default=6, help="intervals to commit over")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    box = SecretBox.from_keys(SECRET)
    receipts = Receipts()
    with Cleanup() as cleanup, tempfile.TemporaryDirectory(prefix="ah-notify-") as tmp:
        work = Path(tmp)
        redis_server = start_redis(cleanup, work)
        db_url = create_database(cleanup, POSTGRES_URL, "notify")
        engine = make_engine(db_url)
        cleanup.callback(engine.dispose)
        sessions = sessionmaker(engine, expire_on_commit=False)
        url = start_receiver(cleanup, receipts)
        with sessions() as session, session.begin():
            spec = DestinationSpec(
                name="bench", type="webhook", url=url, secret=HOOK_SECRET, rate_limit=100_000
            )
            upsert_destination(session, spec, box=box, clock=lambda: datetime.now(UTC))

        # Baseline: commit, then drain at once in this process.
        base: list[float] = []
        for anomaly in findings(20, "base"):
            committed = commit(sessions, anomaly)
            drain(
                sessions,
                box=box,
                clock=lambda: datetime.now(UTC),
                context=lambda now: SendContext(now=now),
            )
            base.append(receipts.by_anomaly[anomaly.id][0] - committed)

        env = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")}
        env.update(
            {
                "HARVESTER_DATA_DIR": str(work / "data"),
                "HARVESTER_DATABASE_URL": db_url,
                "HARVESTER_BROKER_URL": f"{redis_server.url}/0",
                "HARVESTER_REDIS_URL": f"{redis_server.url}/1",
                "HARVESTER_SECRET_KEY": SECRET,
                "HARVESTER_DISPATCH_INTERVAL": f"{args.interval:g}",
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            }
        )
        worker_log = work / "worker.log"
        worker = cleanup.popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "notify",
             "-c", "1", "--loglevel", "INFO", "-n", "notify@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            env=env,
            log=worker_log,
        )  # fmt: skip

        def ready() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker_log.read_text()[-3000:]}")
            return b"ready." in worker_log.read_bytes()

        wait_for(ready, timeout=90, interval=0.1, what="the notify worker")
        cleanup.popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO",
             "-s", str(work / "beat.schedule")],
            env=env,
            log=work / "beat.log",
        )  # fmt: skip
        print(f"  fleet up: beat every {args.interval:g}s, one notify worker", flush=True)

        planned = sorted(rng.uniform(0, args.spread * args.interval) for _ in range(args.findings))
        anomalies = findings(args.findings, "fleet")
        committed: dict[str, float] = {}
        start = time.time()
        for at, anomaly in zip(planned, anomalies, strict=True):
            time.sleep(max(0.0, start + at - time.time()))
            committed[anomaly.id] = commit(sessions, anomaly)
        wait_for(
            lambda: all(a.id in receipts.by_anomaly for a in anomalies),
            timeout=args.interval * 6 + 60,
            interval=0.1,
            what="every finding at the receiver",
        )
        time.sleep(args.interval)  # one more drain: a duplicate would show now

    latencies = [receipts.by_anomaly[a.id][0] - committed[a.id] for a in anomalies]
    p50, p95, worst = quantile(latencies, 0.5), quantile(latencies, 0.95), max(latencies)
    repeats = sum(1 for n in receipts.deliveries.values() if n > 1)
    ratio = p95 / args.interval
    base95 = quantile(base, 0.95)
    received = len(latencies)
    bad = receipts.bad_signatures
    figures = [
        Figure("baseline: commit → receipt, drain at once, p95", f"{base95 * 1000:.0f} ms"),
        Figure("fleet: commit → receipt p50", f"{p50:.2f} s"),
        Figure("fleet: commit → receipt p95", f"{p95:.2f} s"),
        Figure("fleet: commit → receipt max", f"{worst:.2f} s"),
        Figure("p95 / dispatch interval", f"{ratio:.2f}", "< 2", ratio < 2),
        Figure("p95 / baseline p95", f"{p95 / base95:.0f}x"),
        Figure(
            "findings received", f"{received} of {args.findings}", "all", received == args.findings
        ),
        Figure("delivery ids received twice", str(repeats), "0", repeats == 0),
        Figure("bad signatures", str(bad), "0", bad == 0),
    ]
    print(render_table(figures))
    return 0 if ratio < 2 and repeats == 0 and receipts.bad_signatures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
