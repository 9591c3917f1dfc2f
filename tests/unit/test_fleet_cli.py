"""`harvester worker` and `beat` hand their metrics port and address to Celery's process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harvester.cli import fleet_cmds
from harvester.cli.main import main


@pytest.mark.parametrize(
    ("args", "addr"),
    [
        (["worker", "--metrics-port", "9109", "--metrics-addr", "127.0.0.1"], "127.0.0.1"),
        (["beat", "--metrics-port", "9110", "--metrics-addr", "::1"], "::1"),
        (["beat", "--metrics-port", "9110"], "0.0.0.0"),  # noqa: S104  the default
    ],
)
def test_metrics_addr_reaches_the_celery_process(
    args: list[str], addr: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    seen: dict[str, Any] = {}

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(argv=argv, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(fleet_cmds.os, "execve", execve)
    with pytest.raises(SystemExit):
        main(args)
    assert seen["argv"][3:6] == ["-A", "workers.app", args[0]]
    assert seen["env"]["HARVESTER_METRICS_PORT"] == args[2]
    assert seen["env"]["HARVESTER_METRICS_ADDR"] == addr
