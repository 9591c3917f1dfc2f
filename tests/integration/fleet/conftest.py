"""Real processes: celery workers and beat on Redis and PostgreSQL, AWS played by moto.

Each test gets a private Redis server (so a test may restart it), the run's PostgreSQL
database emptied before the test, and the moto server reset.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from harvester.clock import utcnow
from harvester.crypto import SecretBox
from harvester.db.models import ProcessedObject
from harvester.inventory.plan import apply
from harvester.settings import load_settings
from tests.conftest import REPO, _free_port, truncate_all, wait_until
from tests.integration.seeding import inventory

SECRET = "fleet-test-secret-key"


@dataclass
class RedisServer:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        # appendonly: a restarted Redis keeps its queues, as a production broker must.
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), timeout=20, what="private redis")
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@dataclass
class Fleet:
    env: dict[str, str]
    engine: Engine
    redis: RedisServer
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(
        self,
        *,
        queues: str = "harvest,score",
        concurrency: int = 2,
        name: str = "w1",
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"worker-{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.app",
                    "worker",
                    "-Q",
                    queues,
                    "-c",
                    str(concurrency),
                    "-P",
                    "prefork",
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"{name}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env=self.env | (extra_env or {}),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        wait_until(
            lambda: (
                b"ready." in (self.logs / f"worker-{name}.log").read_bytes()
                or proc.poll() is not None
            ),
            timeout=60,
            what=f"worker {name} ready",
        )
        assert proc.poll() is None, (self.logs / f"worker-{name}.log").read_text()[-3000:]
        return proc

    def start_beat(self, name: str = "b1") -> subprocess.Popen[bytes]:
        with (self.logs / f"beat-{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.app",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "-s",
                    str(self.logs / f"beat-{name}.schedule"),
                ],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def children(self, proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
        return psutil.Process(proc.pid).children(recursive=True)

    def ledger(self) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(ProcessedObject.status, func.count()).group_by(ProcessedObject.status)
            )
            return {row[0]: row[1] for row in rows}

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def fleet(pg_engine: Engine, aws: str, tmp_path: Path) -> Iterator[Fleet]:
    truncate_all(pg_engine)
    server = RedisServer(_free_port(), tmp_path)
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")}
    env.update(
        {
            "HARVESTER_DATA_DIR": str(tmp_path / "data"),
            "HARVESTER_DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            "HARVESTER_BROKER_URL": f"{server.url}/0",
            "HARVESTER_REDIS_URL": f"{server.url}/1",
            "HARVESTER_SECRET_KEY": SECRET,
            "HARVESTER_DISPATCH_INTERVAL": "1s",
            "HARVESTER_TASK_TIME_LIMIT": "30s",
            # Lost in-flight messages (a restarted broker) are redone within the tests' time:
            # after max(this, 3x the task time limit) = 90 s.
            "HARVESTER_REQUEUE_AFTER": "1m",
            "HARVESTER_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
    )
    settings = load_settings(env)
    with Session(pg_engine) as session, session.begin():
        apply(session, inventory(), box=SecretBox.from_keys(SECRET), clock=utcnow)
    logs = tmp_path / "logs"
    logs.mkdir()
    fleet = Fleet(env=env, engine=pg_engine, redis=server, logs=logs)
    assert settings.broker_url.endswith("/0")
    try:
        yield fleet
    finally:
        fleet.stop_all()
        server.stop()
        # The run's database is shared with other tests: leave it as found.
        truncate_all(pg_engine)
