"""Helpers for ``benchmarks.pipeline``: private servers, real processes, seeded objects.

Everything started here is registered with a :class:`Cleanup` (a context manager) and is
stopped by its process id when the benchmark ends, fails or is interrupted; the PostgreSQL
databases it creates are dropped the same way. Pure helpers (key layout, object plans,
request tallies, the results table) are at the top and tested in
``tests/unit/test_benchmark_pipeline.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
SECRET = "benchmark-pipeline-secret-key"  # noqa: S105  a throwaway key for a throwaway database
T = TypeVar("T")


# --- pure helpers -----------------------------------------------------------------------------


def ct_key(account: str, region: str, when: datetime, unique: str) -> str:
    """An account trail's object key, exactly as CloudTrail names it."""
    return (
        f"AWSLogs/{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{unique}.json.gz"
    )


def unique_suffix(index: int, salt: str = "") -> str:
    """CloudTrail's 16-character alphanumeric suffix, deterministic per index."""
    import hashlib

    return hashlib.blake2b(f"{salt}{index}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class ObjectSpec:
    """One CloudTrail object to seed: where it goes and what the generator is given."""

    account: str
    region: str
    when: datetime  # the key time (minute precision); the records start a few minutes earlier
    seed: int
    key: str


def plan_objects(
    *,
    now: datetime,
    count: int,
    accounts: Sequence[str],
    regions: Sequence[str],
    span: timedelta = timedelta(hours=3),
    newest: timedelta = timedelta(minutes=10),
    seed: int = 0,
    salt: str = "",
) -> list[ObjectSpec]:
    """``count`` objects spread round-robin over accounts x regions and evenly over time.

    Key times run from ``now - span`` to ``now - newest`` (minute precision): inside the
    first-harvest lookback and the lateness window's reach, and never in the future.
    """
    if count <= 0:
        return []
    scopes = [(a, r) for a in accounts for r in regions]
    start = now - span
    step = (span - newest) / max(1, count - 1)
    specs = []
    for index in range(count):
        account, region = scopes[index % len(scopes)]
        when = (start + step * index).replace(second=0, microsecond=0)
        key = ct_key(account, region, when, unique_suffix(index, salt))
        specs.append(ObjectSpec(account, region, when, seed + index, key))
    return specs


def operation_of(event_name: str) -> str:
    """``before-parameter-build.s3.ListObjectsV2`` -> ``ListObjectsV2``."""
    return event_name.rsplit(".", 1)[-1]


def account_of(params: dict[str, Any]) -> str | None:
    """The 12-digit account in a request's Prefix or Key under ``AWSLogs/``."""
    path = str(params.get("Prefix") or params.get("Key") or "")
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == "AWSLogs" and parts[1].isdigit() and len(parts[1]) == 12:
        return parts[1]
    return None


@dataclass
class RequestTally:
    """S3 calls by (account, kind): kind is ``LIST`` (scope listing), ``LIST-discovery``
    (a delimiter listing of folders), ``LIST-digest`` (a listing under ``CloudTrail-Digest/``:
    the integrity check's, once an hour per source), ``GET`` or the operation's own name."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, operation: str, params: dict[str, Any]) -> None:
        account = account_of(params) or "?"
        if operation == "ListObjectsV2" and "/CloudTrail-Digest/" in str(params.get("Prefix")):
            kind = "LIST-digest"
        elif operation == "ListObjectsV2":
            kind = "LIST-discovery" if params.get("Delimiter") else "LIST"
        elif operation == "GetObject":
            kind = "GET"
        else:
            kind = operation
        self.counts[(account, kind)] += 1

    def of(self, account: str, kind: str) -> int:
        return self.counts.get((account, kind), 0)

    def kinds(self) -> set[str]:
        return {kind for _, kind in self.counts}

    def reset(self) -> Counter[tuple[str, str]]:
        taken, self.counts = self.counts, Counter()
        return taken


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    name: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: informational, no target

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return ""
        return "pass" if self.ok else "MISS"


def render_table(figures: Sequence[Figure]) -> str:
    headers = ("figure", "measured", "target", "result")
    rows = [(f.name, f.value, f.target, f.verdict) for f in figures]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(out)


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


# --- processes and cleanup --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """SIGTERM the process, wait, then SIGKILL it and every child it left behind."""
    if proc.poll() is None:
        children = _tree(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for child in children:
            with contextlib.suppress(Exception):
                child.kill()


class Cleanup(contextlib.ExitStack):
    """An ExitStack that also turns SIGTERM into an orderly unwinding of everything started."""

    def __enter__(self) -> Cleanup:
        super().__enter__()
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(_signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt("SIGTERM")

        signal.signal(signal.SIGTERM, on_term)
        self.callback(signal.signal, signal.SIGTERM, previous)
        return self

    def popen(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = self.enter_context(log.open("ab"))
        proc = subprocess.Popen(
            list(args),
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C reaches us, and we stop it in order.
            start_new_session=True,
        )
        self.callback(stop_process, proc)
        return proc


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def start_redis(cleanup: Cleanup, directory: Path) -> Server:
    """A private redis-server on a free port; its URL has no database number."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    import redis

    port = free_port()
    proc = cleanup.popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            # A durable broker as production runs it: append-only, fsync once a second.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(directory),
        ]
    )
    client = redis.Redis(port=port)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_for(pings, timeout=20, what="the private redis-server")
    client.close()
    return Server(f"redis://127.0.0.1:{port}", proc.pid)


def aws_env(endpoint: str) -> dict[str, str]:
    """Point every boto3 client of a process at the moto server, with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_moto(cleanup: Cleanup, log: Path | None = None) -> Server:
    """``python -m moto.server`` on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = cleanup.popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log=log
    )

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310  loopback
                return True
        except (urllib.error.URLError, OSError):
            return False

    wait_for(answers, timeout=60, what="the moto server")
    return Server(url, proc.pid)


def create_database(cleanup: Cleanup, admin_url: str, label: str) -> str:
    """A fresh, migrated PostgreSQL database, dropped at cleanup; returns its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from harvester.db.engine import make_engine, normalize_url
    from harvester.db.migrate import upgrade

    admin_url = normalize_url(admin_url)
    name = f"ah_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    cleanup.callback(admin.dispose)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    cleanup.callback(drop)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@dataclass
class CeleryProcesses:
    """Celery worker and beat subprocesses for one environment."""

    cleanup: Cleanup
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, *, concurrency: int = 2, name: str = "w1") -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{name}.log"
        proc = self.cleanup.popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-Q",
                "harvest,score",
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
                "--without-heartbeat",
            ],
            env=self.env,
            log=log,
        )
        self.procs[name] = proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{log.read_text()[-3000:]}")
            return b"ready." in log.read_bytes()

        wait_for(ready, timeout=90, interval=0.1, what=f"worker {name} ready")
        return proc

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        proc = self.cleanup.popen(
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
                str(self.logs / f"{name}.schedule"),
            ],
            env=self.env,
            log=self.logs / f"{name}.log",
        )
        self.procs[name] = proc
        return proc

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) of each process and its live children so far."""
        import psutil

        out: dict[str, float] = {}
        for name, proc in self.procs.items():
            try:
                parent = psutil.Process(proc.pid)
                times = parent.cpu_times()
                out[name] = times.user + times.system
                for index, child in enumerate(parent.children(recursive=True)):
                    ctimes = child.cpu_times()
                    out[f"{name} child {index + 1}"] = ctimes.user + ctimes.system
            except psutil.Error:
                continue
        return out


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far; 0 when it is gone."""
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def postgres_cpu() -> float:
    """CPU seconds of the machine's PostgreSQL processes (read only, for the diagnosis)."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        info = proc.info
        if info.get("name") in ("postgres", "postmaster") and info.get("cpu_times"):
            total += info["cpu_times"].user + info["cpu_times"].system
    return total


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables in this process for the duration."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
