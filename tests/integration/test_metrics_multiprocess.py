"""Metrics with real processes: forked workers in multiprocess mode, ``metrics serve``, queues.

The multiprocess test runs a driver in a fresh interpreter (prometheus_client picks its
storage when first imported, so this test process, which imported it long ago, cannot be the
parent): the driver prepares the directory, serves, and forks two children that record
metrics and wait to be told to exit, the way a Celery master and its pool do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from harvester.db.models import Account, Source
from tests.conftest import REDIS_URL, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent(
    r"""
    import json, os, sys

    from harvester.cli.metrics_cmds import start_metrics_server
    from harvester.metrics import child_exit, prepare_multiprocess_dir, record_objects
    from harvester.metrics import worker_process_started
    from harvester.pipeline import ObjectResult, ObjectsResult

    prepare_multiprocess_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    start_metrics_server(int(sys.argv[1]), addr="127.0.0.1")
    pipes = {}
    for index in (1, 2):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            worker_process_started(["harvest"])
            done = ObjectResult("k", "done", events=10 * index, bytes=100 * index)
            record_objects(ObjectsResult(1, [done]), kind="cloudtrail", seconds=0.25 * index)
            # One write() per line: both children share the parent's stdout.
            os.write(1, (json.dumps({"child": index, "pid": os.getpid()}) + "\n").encode())
            os.read(read_end, 1)  # until the parent says exit
            child_exit(os.getpid())  # what worker_process_shutdown does
            os._exit(0)
        os.close(read_end)
        pipes[index] = (pid, write_end)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "exit":
            pid, write_end = pipes[int(arg)]
            os.write(write_end, b"x")
            os.waitpid(pid, 0)
            print(json.dumps({"exited": int(arg)}), flush=True)
        elif command == "quit":
            break
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _try_scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        return scrape(port)
    except OSError:
        return None


def _read_json(stream: IO[str]) -> dict[str, Any]:
    line = stream.readline()
    assert line, "the driver exited early"
    decoded: dict[str, Any] = json.loads(line)
    return decoded


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, dict[int, int], Path]]:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    try:
        children: dict[int, int] = {}
        for _ in range(2):
            message = _read_json(proc.stdout)
            children[int(message["child"])] = int(message["pid"])
        yield proc, port, children, directory
    finally:
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_forked_workers_are_summed_and_dead_ones_drop_their_live_gauges(
    driver: tuple[subprocess.Popen[str], int, dict[int, int], Path],
) -> None:
    proc, port, children, directory = driver
    assert proc.stdin is not None
    assert proc.stdout is not None
    # The stale file of an earlier run was wiped before anyone wrote.
    assert not (directory / "counter_999999.db").exists()

    samples = wait_until(lambda: _try_scrape(port), timeout=30, what="the metrics endpoint")
    assert value(samples, "harvester_objects_total", kind="cloudtrail", outcome="done") == 2
    assert value(samples, "harvester_events_total", kind="cloudtrail") == 30
    assert value(samples, "harvester_object_bytes_total", kind="cloudtrail") == 300
    assert value(samples, "harvester_object_run_duration_seconds_count", kind="cloudtrail") == 2
    assert value(samples, "harvester_object_run_duration_seconds_sum", kind="cloudtrail") == 0.75
    assert value(samples, "harvester_worker_processes", queue="harvest") == 2
    # Aggregated: no per-process series leak out.
    assert not [key for key in samples if dict(key[1]).get("pid")]
    version = [key for key in samples if key[0] == "harvester_build_info"]
    assert len(version) == 1

    # A graceful exit (worker_process_shutdown → child_exit): its live gauge goes, its counts stay.
    proc.stdin.write("exit 1\n")
    proc.stdin.flush()
    assert _read_json(proc.stdout) == {"exited": 1}
    samples = scrape(port)
    assert value(samples, "harvester_worker_processes", queue="harvest") == 1
    assert value(samples, "harvester_objects_total", kind="cloudtrail", outcome="done") == 2

    # Killed without a word (OOM killer): the next scrape finds its pid gone. The parent has
    # not reaped it, so it lingers as a zombie, which must count as dead too.
    os.kill(children[2], signal.SIGKILL)

    def gauge_dropped() -> bool:
        found = value(scrape(port), "harvester_worker_processes", queue="harvest")
        return found in (None, 0.0)

    wait_until(gauge_dropped, timeout=20, what="the killed child's live gauge to be dropped")
    samples = scrape(port)
    assert value(samples, "harvester_objects_total", kind="cloudtrail", outcome="done") == 2
    assert value(samples, "harvester_events_total", kind="cloudtrail") == 30
    assert not list(directory.glob(f"gauge_live*_{children[2]}.db"))
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    assert proc.wait(timeout=20) == 0


# --- harvester metrics serve -------------------------------------------------------------------


@pytest.fixture
def inventory_db(pg_engine: Engine) -> Iterator[Engine]:
    now = datetime.now(UTC)
    with Session(pg_engine) as session, session.begin():
        account = Account(account_id="444455556666", name="ops", created_at=now, updated_at=now)
        session.add(account)
        session.flush()
        session.add_all(
            [
                Source(
                    kind="cloudtrail",
                    account_pk=account.id,
                    bucket="trail-logs",
                    region="us-east-1",
                    prefix="AWSLogs",
                    health="ok",
                    last_success_at=now - timedelta(minutes=1),
                    newest_object_at=now - timedelta(minutes=8),
                    created_at=now,
                    updated_at=now,
                ),
                Source(
                    kind="eks",
                    account_pk=account.id,
                    cluster_name="payments",
                    bucket="eks-logs",
                    region="us-east-1",
                    prefix="EKSLogs",
                    health="degraded",
                    health_reason="access denied: arn:aws:iam::444455556666:role/r may not "
                    "s3:ListBucket on arn:aws:s3:::eks-logs. — Allow it.",
                    created_at=now - timedelta(days=1),
                    updated_at=now,
                ),
            ]
        )
    try:
        yield pg_engine
    finally:
        with pg_engine.begin() as conn:
            conn.execute(text("TRUNCATE sources, accounts RESTART IDENTITY CASCADE"))


def test_metrics_serve_reads_postgres_and_redis_and_stops_on_sigterm(
    inventory_db: Engine, redis_client: Any
) -> None:
    from celery import Celery

    # Real kombu messages: a plain one and a prioritized one, which kombu keeps in its own list.
    client = Celery("metrics-test", broker=REDIS_URL)
    try:
        client.send_task("harvest.object", args=(1, []), queue="harvest", serializer="json")
        client.send_task(
            "harvest.object", args=(1, []), queue="harvest", priority=6, serializer="json"
        )
        client.send_task("score.batch", args=(1,), queue="score", serializer="json")
    finally:
        client.close()
    assert redis_client.llen("harvest") == 1  # the other one is in a priority list

    port = _free_port()
    env = {
        **os.environ,
        "HARVESTER_DATABASE_URL": inventory_db.url.render_as_string(hide_password=False),
        "HARVESTER_BROKER_URL": REDIS_URL,
    }
    code = (
        "import sys; from harvester.cli.metrics_cmds import metrics_app; "
        "metrics_app(['serve', '--port', sys.argv[1], '--addr', '127.0.0.1'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        samples = wait_until(lambda: _try_scrape(port), timeout=30, what="metrics serve")
        assert value(samples, "harvester_inventory_up") == 1
        assert value(samples, "harvester_sources", kind="cloudtrail", health="ok") == 1
        assert value(samples, "harvester_sources_degraded", kind="eks", reason="access_denied") == 1
        lag = value(
            samples, "harvester_sources_lag_quantile_seconds", kind="cloudtrail", quantile="1"
        )
        assert lag is not None
        assert 470 < lag < 600
        assert value(samples, "harvester_broker_up") == 1
        assert value(samples, "harvester_queue_messages", queue="harvest") == 2
        assert value(samples, "harvester_queue_messages", queue="score") == 1
        infos = [dict(k[1]) for k in samples if k[0] == "harvester_source_info"]
        assert {i["cluster"] for i in infos} == {"", "payments"}
        # The probes on the same port; any other path is not the metrics.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
            assert json.loads(response.read()) == {
                "status": "ready",
                "checks": {"database": "ok", "broker": "ok"},
            }
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthzz", timeout=10)
        assert missing.value.code == 404
        missing.value.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        _, err = proc.communicate(timeout=5)
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
