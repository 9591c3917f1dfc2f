"""The triage commands, run in-process against a SQLite database as an operator would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from harvester.cli.anomaly_cmds import anomalies_app, incidents_app, suppress_app
from harvester.cli.context import AppContext
from harvester.db.engine import make_engine
from harvester.db.migrate import upgrade
from harvester.detect import repository as repo
from harvester.inventory.validation import InvalidValue
from harvester.settings import load_settings
from tests.conftest import FixedClock
from tests.unit.detect.builders import ct, k8s, scorer, sso

pytestmark = pytest.mark.integration


@dataclass
class Cli:
    app: typer.Typer
    engine: Engine
    clock: FixedClock

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(self.app, list(args))

    def json(self, *args: str) -> object:
        result = self(*args, "--output", "json")
        assert result.exit_code == 0, result.output
        return orjson.loads(result.output)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> Iterator[Cli]:
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    for name in ("HARVESTER_DATABASE_URL", "HARVESTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = AppContext(settings=load_settings(), clock=clock)
        ctx.call_on_close(ctx.obj.close)

    app.add_typer(anomalies_app, name="anomalies")
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(suppress_app, name="suppress")
    engine = make_engine(f"sqlite:///{tmp_path / 'harvester.db'}")
    upgrade(engine)
    _seed(engine, clock)
    yield Cli(app, engine, clock)
    engine.dispose()


def _seed(engine: Engine, clock: FixedClock) -> None:
    now = clock()
    s = scorer()
    events = [
        ct(
            "ListUsers",
            "iam",
            identity=sso(),
            error="AccessDenied",
            when=now - timedelta(hours=2, seconds=-i),
        )
        for i in range(35)
    ]
    events += [
        ct(
            "CreateAccessKey",
            identity=sso(),
            params={"userName": "bob"},
            when=now - timedelta(hours=1, minutes=50),
        ),
        ct(
            "StopLogging",
            "cloudtrail",
            identity=sso(),
            params={"name": "t"},
            when=now - timedelta(hours=1, minutes=40),
        ),
        ct("RebootDBInstance", "rds", when=now - timedelta(days=3), account="222233334444"),
        k8s(
            "patch",
            "configmaps",
            namespace="kube-system",
            name="aws-auth",
            when=now - timedelta(days=2),
        ),
    ]
    with Session(engine) as session:
        stored = repo.save_anomalies(session, s.score_and_commit(events).anomalies, clock=clock)
        repo.correlate_incidents(session, stored, clock=clock)
        session.commit()


def test_anomalies_list_as_table_and_json(cli: Cli) -> None:
    table = cli("anomalies", "list")
    assert table.exit_code == 0, table.output
    assert "aws.cloudtrail-logging-impaired" in table.output
    records = cli.json("anomalies", "list")
    assert isinstance(records, list)
    assert len(records) == 5
    for record in records:
        assert record["type"] == "anomaly"
        assert {
            "detector",
            "severity",
            "score",
            "title",
            "account_id",
            "cluster",
            "principal",
            "source_ip",
            "first_seen",
            "last_seen",
            "count",
            "event_ids",
            "mitre",
            "explanation",
        } <= record.keys()


@pytest.mark.parametrize(
    ("options", "detectors"),
    [
        (
            ["--severity", "high"],
            {
                "aws.cloudtrail-logging-impaired",
                "aws.iam-access-key-for-other-user",
                "k8s.aws-auth-changed",
            },
        ),
        (
            ["--since", "1d"],
            {
                "aws.cloudtrail-logging-impaired",
                "aws.iam-access-key-for-other-user",
                "behav.access-denied-burst",
            },
        ),
        (["--account", "222233334444"], {"aws.database-disruption"}),
        (["--detector", "k8s.*"], {"k8s.aws-auth-changed"}),
        (
            ["--since", "2026-01-13T00:00:00Z", "--severity", "critical"],
            {"aws.cloudtrail-logging-impaired"},
        ),
    ],
)
def test_anomalies_list_filters(cli: Cli, options: list[str], detectors: set[str]) -> None:
    records = cli.json("anomalies", "list", *options)
    assert {r["detector"] for r in records} == detectors  # type: ignore[union-attr, index]


def test_bad_filters_are_explained(cli: Cli) -> None:
    result = cli("anomalies", "list", "--severity", "urgent")
    assert isinstance(result.exception, InvalidValue)
    assert "use info, low, medium, high or critical" in str(result.exception)
    result = cli("anomalies", "list", "--since", "last tuesday")
    assert isinstance(result.exception, InvalidValue)
    # A short account id is a typo, not an account without anomalies.
    result = cli("anomalies", "list", "--account", "12")
    assert isinstance(result.exception, InvalidValue)
    assert "exactly 12 digits" in str(result.exception)


def test_show_and_ack(cli: Cli) -> None:
    records = cli.json("anomalies", "list", "--detector", "aws.cloudtrail-logging-impaired")
    anomaly_id = records[0]["id"]  # type: ignore[index]
    shown = cli("anomalies", "show", anomaly_id[:10])
    assert shown.exit_code == 0, shown.output
    assert "cloudtrail:StopLogging" in shown.output
    assert "AWSLogs/test.json.gz" in shown.output  # the raw pointer of the evidence
    detail = cli.json("anomalies", "show", anomaly_id)
    assert detail["evidence"][0]["bucket"] == "bucket"  # type: ignore[index]
    acked = cli("anomalies", "ack", anomaly_id, "--by", "oncall")
    assert acked.exit_code == 0
    assert "acknowledged" in acked.output
    assert cli.json("anomalies", "show", anomaly_id)["status"] == "acked"  # type: ignore[index]
    missing = cli("anomalies", "show", "an-0000")
    assert missing.exception is not None
    assert "no anomaly" in str(missing.exception)


def test_incidents(cli: Cli) -> None:
    (incident,) = cli.json("incidents", "list")  # type: ignore[misc]
    assert incident["type"] == "incident"
    assert incident["count"] == 3
    shown = cli("incidents", "show", incident["id"])
    assert shown.exit_code == 0, shown.output
    assert "behav.access-denied-burst" in shown.output
    detail = cli.json("incidents", "show", incident["id"])
    assert len(detail["anomalies"]) == 3  # type: ignore[index]
    assert cli("incidents", "ack", incident["id"]).exit_code == 0


def test_suppressions(cli: Cli) -> None:
    added = cli(
        "suppress",
        "add",
        "--detector",
        "aws.database-disruption",
        "--principal",
        "arn:aws:sts::*",
        "--until",
        "7d",
        "--reason",
        "maintenance",
    )
    assert added.exit_code == 0, added.output
    assert "added suppression 1" in added.output
    (rule,) = cli.json("suppress", "list")  # type: ignore[misc]
    assert rule["detector"] == "aws.database-disruption"
    assert rule["until"] == "2026-01-22 12:00:00Z"
    assert rule["active"] is True
    with Session(cli.engine) as session:
        (active,) = repo.active_suppressions(session, now=cli.clock())
    assert active.principal == "arn:aws:sts::*"
    unknown = cli("suppress", "add", "--detector", "aws.no-such-thing")
    assert isinstance(unknown.exception, InvalidValue)
    assert cli("suppress", "remove", "1").exit_code == 0
    assert cli.json("suppress", "list") == []


def test_detectors_catalog(cli: Cli) -> None:
    detectors = cli.json("anomalies", "detectors")
    ids = {d["id"] for d in detectors}  # type: ignore[union-attr, index]
    assert {"aws.root-activity", "k8s.pod-exec", "behav.new-network"} <= ids
