"""``harvester doctor`` end to end: inventory in the database, buckets in the moto server."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tests.integration.conftest import Cli

ACCOUNT = "123456789012"  # moto's default account


def put_trail_object(s3, bucket: str, prefix: str, when: datetime) -> str:  # type: ignore[no-untyped-def]
    key = (
        f"{prefix}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_us-east-1_{when:%Y%m%dT%H%M}Z_abcdefgh12345678.json.gz"
    )
    body = gzip.compress(
        json.dumps(
            {"Records": [{"eventID": "e1", "eventTime": f"{when:%Y-%m-%dT%H:%M:%SZ}"}]}
        ).encode()
    )
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


@pytest.fixture
def trail_bucket(aws: str) -> str:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="doctor-trail")
    put_trail_object(
        s3,
        "doctor-trail",
        f"AWSLogs/o-abcdef1234/{ACCOUNT}",
        datetime.now(UTC) - timedelta(minutes=10),
    )
    return "doctor-trail"


def test_doctor_ok_and_json(cli: Cli, trail_bucket: str) -> None:
    assert (
        cli(
            "accounts",
            "add",
            "--account-id",
            ACCOUNT,
            "--name",
            "moto",
            "--organization-id",
            "o-abcdef1234",
            "--bucket",
            trail_bucket,
            "--region",
            "us-east-1",
        ).code
        == 0
    )
    result = cli("doctor", ACCOUNT, "--output", "json")
    assert result.code == 0, result.out + result.err
    (report,) = json.loads(result.out)
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["bucket"]["status"] == "ok"
    assert steps["list"]["status"] == "ok"
    assert steps["read"]["status"] == "ok"
    assert report["status"] in ("ok", "warn")


def test_doctor_names_the_organization_folder(cli: Cli, trail_bucket: str) -> None:
    # Configured as an account trail, but the logs come from an organization trail.
    assert (
        cli(
            "accounts",
            "add",
            "--account-id",
            ACCOUNT,
            "--name",
            "moto",
            "--bucket",
            trail_bucket,
            "--region",
            "us-east-1",
        ).code
        == 0
    )
    result = cli("doctor", ACCOUNT)
    assert result.code == 1
    text = " ".join(result.out.split())
    assert "o-abcdef1234" in text


def test_doctor_missing_bucket_fails_with_fix(cli: Cli, aws: str) -> None:
    assert (
        cli(
            "accounts",
            "add",
            "--account-id",
            ACCOUNT,
            "--name",
            "moto",
            "--bucket",
            "no-such-bucket-here",
            "--region",
            "us-east-1",
        ).code
        == 0
    )
    result = cli("doctor", "--all", "-o", "json")
    assert result.code == 1
    (report,) = json.loads(result.out)
    bucket = next(s for s in report["steps"] if s["name"] == "bucket")
    assert bucket["status"] == "fail"
    assert "no-such-bucket-here" in bucket["message"]
    assert bucket["fix"]


def test_doctor_needs_a_source(cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 2
    assert "--all" in result.err


def test_doctor_all_summary_is_one_line_per_source(cli: Cli, aws: str) -> None:
    for account, bucket in ((ACCOUNT, "no-such-bucket-here"), ("210987654321", "nor-this-one")):
        added = cli(
            "accounts", "add", "--account-id", account, "--name", f"n{account}",
            "--bucket", bucket, "--region", "us-east-1",
        )  # fmt: skip
        assert added.code == 0, added.err
    result = cli("doctor", "--all", "--summary")
    assert result.code == 1
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("fail CloudTrail of ") for line in lines)
    assert "no-such-bucket-here" in lines[0] + lines[1]
    assert "nor-this-one" in lines[0] + lines[1]


def test_sources_show(cli: Cli, aws: str) -> None:
    added = cli(
        "accounts", "add", "--account-id", ACCOUNT, "--name", "moto",
        "--bucket", "some-bucket", "--region", "us-east-1",
    )  # fmt: skip
    assert added.code == 0, added.err
    result = cli("sources", "show", ACCOUNT, "--output", "json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert (record["account_id"], record["bucket"]) == (ACCOUNT, "some-bucket")
    result = cli("sources", "show", ACCOUNT)
    assert "bucket: some-bucket" in result.out
    assert "events_last_run: 0" in result.out
    result = cli("sources", "show", "999999999999")
    assert result.code == 2
