"""One rule for every command that scores: the fleet's Redis state when HARVESTER_REDIS_URL is
set, a state file beside the database otherwise (``run --once`` from cron learns across runs).
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.cli.context import AppContext
from harvester.db.anomaly_models import AnomalyRecord
from harvester.settings import load_settings
from tests.conftest import REDIS_URL, FixedClock
from tests.integration.conftest import Cli

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
BUCKET = "state-rule-trail"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"


def record(when: datetime, *, region: str, name: str, source: str) -> dict[str, Any]:
    """A CloudTrail record as AWS writes one for an IAM user's API call."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEALICE0001",
            "arn": USER,
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLEALICE0001",
            "userName": "alice",
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64",
        "requestParameters": {"name": "main"} if name == "StopLogging" else None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": name.startswith("Describe"),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def put_object(when: datetime, records: list[dict[str, Any]], region: str = "us-east-1") -> None:
    key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{when:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:16]}.json.gz"
    )
    body = gzip.compress(json.dumps({"Records": records}).encode())
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=key, Body=body)


def describes(when: datetime, region: str, count: int = 3) -> list[dict[str, Any]]:
    return [
        record(
            when + timedelta(seconds=i),
            region=region,
            name="DescribeInstances",
            source="ec2.amazonaws.com",
        )
        for i in range(count)
    ]


def anomalies(cli: Cli) -> dict[str, int]:
    """Stored anomalies: detector and dedup key -> event count."""
    with Session(cli.engine) as session:
        rows = session.execute(
            select(AnomalyRecord.detector, AnomalyRecord.dedup_key, AnomalyRecord.count)
        )
        return {f"{detector}/{key}": count for detector, key, count in rows}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The CLI's clock, a minute ahead of the real one (moto stamps objects with real time)."""
    clock = FixedClock(datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1))

    def with_clock(cls: type[AppContext]) -> AppContext:
        return cls(settings=load_settings(), clock=clock)

    monkeypatch.setattr(AppContext, "from_environment", classmethod(with_clock))
    return clock


@pytest.fixture
def account(cli: Cli, aws: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """An account whose trail bucket is empty; the first harvest looks 10 days back."""
    monkeypatch.setenv("HARVESTER_FIRST_HARVEST_LOOKBACK", "10d")
    monkeypatch.delenv("HARVESTER_REDIS_URL", raising=False)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    added = cli(
        "accounts", "add", "--account-id", ACCOUNT, "--name", "state", "--bucket", BUCKET,
        "--region", "us-east-1",
    )  # fmt: skip
    assert added.code == 0, added.err
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
def test_run_once_learns_across_runs(cli: Cli, account: datetime, clock: FixedClock) -> None:
    # Day one: alice works in us-east-1 only. Eight days later, in eu-west-1: a new region
    # for a principal with a week of history, which only a remembered baseline can tell.
    put_object(account - timedelta(days=8), describes(account - timedelta(days=8), "us-east-1"))
    first = cli("run", "--once")
    assert first.code == 0, first.err
    assert not [k for k in anomalies(cli) if k.startswith("behav.new-region-principal/")]

    clock.advance(timedelta(minutes=10))  # the source is due again
    put_object(
        account - timedelta(minutes=5), describes(account - timedelta(minutes=5), "eu-west-1")
    )
    second = cli("run", "--once")
    assert second.code == 0, second.err
    assert "1 object(s)" in second.out
    assert [k for k in anomalies(cli) if k.startswith("behav.new-region-principal/")]


@pytest.mark.parametrize("cli", ["postgresql"], indirect=True)
def test_backfill_against_the_fleet_adds_nothing_already_scored(
    cli: Cli, account: datetime, monkeypatch: pytest.MonkeyPatch, redis_client: Any
) -> None:
    # The fleet's view: PostgreSQL and Redis. StopLogging 30 times within one dedup window:
    # one anomaly of 30 events, more than its evidence keeps, so a re-score would count
    # the events past the evidence again.
    monkeypatch.setenv("HARVESTER_REDIS_URL", REDIS_URL)
    when = account - timedelta(minutes=20)
    stops = [
        record(when + timedelta(seconds=i), region="us-east-1", name="StopLogging",
               source="cloudtrail.amazonaws.com")
        for i in range(30)
    ]  # fmt: skip
    put_object(when, [*stops, *describes(when, "us-east-1")])
    assert cli("run", "--once").code == 0
    before = anomalies(cli)
    assert 30 in before.values()

    since = (when - timedelta(minutes=5)).isoformat()
    done = cli("backfill", ACCOUNT, "--since", since)
    assert done.code == 0, done.err
    assert anomalies(cli) == before
    assert redis_client.keys("ah:seen:*")


@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
def test_run_with_a_redis_url_keeps_state_in_redis(
    cli: Cli, account: datetime, monkeypatch: pytest.MonkeyPatch, redis_client: Any
) -> None:
    monkeypatch.setenv("HARVESTER_REDIS_URL", REDIS_URL)
    put_object(
        account - timedelta(minutes=5), describes(account - timedelta(minutes=5), "us-east-1")
    )
    assert cli("run", "--once").code == 0
    assert len(redis_client.keys("ah:seen:*")) == 3
    assert redis_client.keys("ah:nv:rgp:*")  # alice's regions
    state = Path(str(cli.engine.url.database) + ".state")
    assert not state.exists()
