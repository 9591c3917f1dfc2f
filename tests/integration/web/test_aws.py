"""What the console asks of AWS, against the moto server: the doctor and raw evidence records."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from harvester.detect import repository as repo
from harvester.detect.model import Anomaly
from harvester.events import normalize_cloudtrail
from tests.integration.web.conftest import Web
from tests.unit.detect.builders import ACCOUNT, scorer, user

pytestmark = pytest.mark.integration

BUCKET = "prod-trail-logs"


def _key(web: Web) -> str:
    now = web.clock()
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_us-east-1_{now:%Y%m%dT%H%M}Z_abcdefgh12345678.json.gz"
    )


def _records(web: Web) -> list[dict[str, Any]]:
    when = (web.clock() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    common = {
        "eventVersion": "1.09",
        "eventTime": when,
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": user("mallory"),
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0",
    }
    return [
        {**common, "eventID": "e-0", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets"},
        {
            **common,
            "eventID": "e-1",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "requestParameters": {"name": "main-trail-of-mallory"},
        },
    ]


@pytest.fixture
def trail_object(web: Web, aws: str) -> str:
    """The seeded trail's bucket in moto, one log object in it, the source on base credentials."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    key = _key(web)
    body = gzip.compress(json.dumps({"Records": _records(web)}).encode())
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    # moto's own credentials, no role to assume: what an instance profile would be.
    response = web.client.put(
        f"/api/v1/sources/{web.data.trail_id}/storage", json={"role": None}, headers=web.admin
    )
    assert response.status_code == 200
    return key


@pytest.fixture
def anomaly_in_s3(web: Web, trail_object: str) -> Anomaly:
    events = [
        normalize_cloudtrail(r, bucket=BUCKET, key=trail_object, index=i)
        for i, r in enumerate(_records(web))
    ]
    found = [
        a
        for a in scorer().score_and_commit(events).anomalies
        if a.detector == "aws.cloudtrail-logging-impaired"
    ]
    with web.state.session() as session:
        (stored,) = repo.save_anomalies(session, found, clock=web.clock)
    assert stored.evidence[0].index == 1
    return stored


def test_doctor_through_the_api(web: Web, trail_object: str) -> None:
    response = web.client.post(f"/api/v1/sources/{web.data.trail_id}/doctor", headers=web.admin)
    assert response.status_code == 200, response.text
    report = response.json()
    steps = {s["name"]: s["status"] for s in report["steps"]}
    assert steps["bucket"] == "ok"
    assert steps["list"] == "ok"
    assert steps["read"] == "ok"
    assert report["source"]["bucket"] == BUCKET


def test_doctor_button_on_the_edit_page(web: Web, trail_object: str) -> None:
    web.login()
    page = f"/sources/{web.data.trail_id}/edit"
    response = web.post_form(f"/sources/{web.data.trail_id}/doctor", {}, page=page)
    assert response.status_code == 200
    assert 'id="doctor-steps"' in response.text
    assert "read newest object" in response.text
    assert 'class="status status-ok">ok' in response.text


def test_doctor_explains_a_missing_bucket(web: Web, aws: str) -> None:
    web.client.put(
        f"/api/v1/sources/{web.data.trail_id}/storage",
        json={"role": None, "bucket": "no-such-bucket-here"},
        headers=web.admin,
    )
    report = web.client.post(
        f"/api/v1/sources/{web.data.trail_id}/doctor", headers=web.admin
    ).json()
    assert report["status"] == "fail"
    bucket = next(s for s in report["steps"] if s["name"] == "bucket")
    assert bucket["status"] == "fail"
    assert "no-such-bucket-here" in bucket["message"]


def test_raw_record_on_demand(web: Web, anomaly_in_s3: Anomaly) -> None:
    web.login()
    html = web.client.get(f"/anomalies/{anomaly_in_s3.id}/evidence/0")
    assert html.status_code == 200, html.text
    assert "main-trail-of-mallory" in html.text
    assert 'id="record-json"' in html.text
    api = web.client.get(
        f"/api/v1/anomalies/{anomaly_in_s3.id}/evidence/0", headers=web.viewer
    ).json()
    assert api["record_index"] == 1
    assert api["event"]["action"]["name"] == "StopLogging"
    assert api["event"]["raw"] == {
        "bucket": BUCKET,
        "key": anomaly_in_s3.evidence[0].key,
        "index": 1,
    }
    missing = web.client.get(f"/api/v1/anomalies/{anomaly_in_s3.id}/evidence/5", headers=web.viewer)
    assert missing.status_code == 404


def test_raw_record_errors_are_explained(web: Web, anomaly_in_s3: Anomaly) -> None:
    boto3.client("s3", region_name="us-east-1").delete_object(
        Bucket=BUCKET, Key=anomaly_in_s3.evidence[0].key
    )
    gone = web.client.get(f"/api/v1/anomalies/{anomaly_in_s3.id}/evidence/0", headers=web.viewer)
    assert gone.status_code == 502
    assert anomaly_in_s3.evidence[0].key in gone.json()["detail"]
    # The seeded anomalies point at a bucket no source reads.
    seeded = web.data.anomalies[0].id
    nowhere = web.client.get(f"/api/v1/anomalies/{seeded}/evidence/0", headers=web.viewer)
    assert nowhere.status_code == 502
    assert "no source reads" in nowhere.json()["detail"]
    web.login()
    page = web.client.get(f"/anomalies/{seeded}/evidence/0")
    assert page.status_code == 502
    assert "no source reads" in page.text
