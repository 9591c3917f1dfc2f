"""Liveness and readiness as files, for probes that must not talk to the broker.

``celery inspect ping`` makes every probe a broker round trip through every worker: with a
busy broker or many pods it times out and restarts healthy workers, and with a broker outage
it restarts all of them at once, which helps nothing. Instead the worker's own event loop
touches a heartbeat file (a timer on the loop: if the loop hangs the file goes stale), and
the ``worker_ready`` signal creates a ready file that warm shutdown removes. The probes only
read file times: ``python -m harvester.health_files check PATH [--max-age SECONDS]``.

The metrics port serves the same facts over HTTP (``/healthz``, ``/readyz``, see
:mod:`harvester.probes`); ``python -m harvester.health_files get URL`` is the probe for
runtimes without an HTTP check of their own (docker compose): exit 0 on a 2xx answer.

Paths come from ``HARVESTER_HEALTH_DIR`` (unset: no files are written): ``<dir>/ready`` and
``<dir>/heartbeat``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "HEALTH_DIR_ENV",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_MAX_AGE",
    "HealthFiles",
    "age_seconds",
    "health_files_from_env",
    "main",
    "touch",
]

HEALTH_DIR_ENV: Final = "HARVESTER_HEALTH_DIR"
# The probe allows several missed beats, so one slow loop iteration does not kill a worker.
HEARTBEAT_INTERVAL: Final = 10.0
HEARTBEAT_MAX_AGE: Final = 60.0


def touch(path: Path, *, now: float | None = None) -> None:
    """Create ``path`` or move its modification time to ``now``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a"):
        pass
    stamp = time.time() if now is None else now
    os.utime(path, (stamp, stamp))


def age_seconds(path: Path, *, now: float | None = None) -> float | None:
    """Seconds since ``path`` was last touched, or None when it does not exist."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return max(0.0, (time.time() if now is None else now) - modified)


@dataclass(frozen=True)
class HealthFiles:
    """The ready and heartbeat files of one process (a Celery worker's main process, beat)."""

    directory: Path

    @property
    def ready(self) -> Path:
        return self.directory / "ready"

    @property
    def heartbeat(self) -> Path:
        return self.directory / "heartbeat"

    def mark_ready(self) -> None:
        """Connect to ``worker_ready`` (beat: when the scheduler starts)."""
        touch(self.ready)
        touch(self.heartbeat)

    def mark_not_ready(self) -> None:
        """Connect to ``worker_shutting_down``: a draining worker takes no part in a rollout."""
        self.ready.unlink(missing_ok=True)

    def beat(self) -> None:
        """Call every HEARTBEAT_INTERVAL seconds from the process's own loop, not a thread."""
        touch(self.heartbeat)

    def clear(self) -> None:
        """Remove both files (``worker_shutdown``), so a restarted process starts unready."""
        self.ready.unlink(missing_ok=True)
        self.heartbeat.unlink(missing_ok=True)


def health_files_from_env(environ: Mapping[str, str] | None = None) -> HealthFiles | None:
    value = (os.environ if environ is None else environ).get(HEALTH_DIR_ENV)
    return HealthFiles(Path(value)) if value else None


def check(
    path: Path, *, max_age: float | None, clock: Callable[[], float] = time.time
) -> str | None:
    """None when the file exists (and is fresh enough), else why the probe fails."""
    age = age_seconds(path, now=clock())
    if age is None:
        return f"{path} does not exist"
    if max_age is not None and age > max_age:
        return f"{path} is {age:.0f}s old (limit {max_age:.0f}s)"
    return None


def get(url: str, *, timeout: float = 5.0) -> str | None:
    """None when ``url`` (loopback HTTP) answers 2xx, else why not."""
    import urllib.error  # noqa: PLC0415  only the HTTP probe needs them
    import urllib.request  # noqa: PLC0415

    if not url.startswith("http://"):
        return f"{url} is not an http:// URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  checked above
            response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return f"{url} answered {exc.code}: {exc.read().decode(errors='replace').strip()}"
    except OSError as exc:
        return f"{url} did not answer: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harvester.health_files",
        description="Exit 0 when a health file exists and is fresh, or a health URL answers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="check one file")
    check_cmd.add_argument("path", type=Path)
    check_cmd.add_argument(
        "--max-age", type=float, default=None, help="seconds since the last touch (default: any)"
    )
    get_cmd = commands.add_parser("get", help="GET an http:// URL, healthy on a 2xx answer")
    get_cmd.add_argument("url")
    args = parser.parse_args(argv)
    problem = get(args.url) if args.command == "get" else check(args.path, max_age=args.max_age)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
