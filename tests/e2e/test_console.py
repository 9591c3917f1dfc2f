"""The console in Chromium: every page, a storage edit (bad then good), triage, the doctor."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import boto3
import pytest
from sqlalchemy import select

from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.models import RoleConfig, Source
from harvester.detect import repository as repo
from harvester.events import normalize_cloudtrail
from tests.e2e.conftest import VIEWER_PASSWORD, Browser
from tests.unit.detect.builders import ACCOUNT, scorer, user


def test_every_page(ui: Browser) -> None:
    data = ui.console.data
    ui.goto("/overview")
    assert "/login" in ui.page.url  # anonymous: sent to log in first
    ui.screenshot("01-login")
    ui.login()
    pages = [
        ("02-overview", "/overview", "Events per hour, last 24 hours (UTC)"),
        ("03-audit-logs", "/accounts/audit-logs", "org-trail-bucket"),
        ("04-kubernetes-clusters", "/accounts/clusters", "checkout"),
        ("05-anomalies", "/anomalies", "CloudTrail logging stopped or reduced"),
        (
            "06-anomaly",
            f"/anomalies/{data.anomaly('aws.cloudtrail-logging-impaired').id}",
            "T1562.008",
        ),
        ("07-incidents", "/incidents", "Attack chain by"),
        ("08-incident", f"/incidents/{data.incident_id}", "Timeline"),
    ]
    for name, path, text in pages:
        ui.goto(path)
        assert text in ui.page.content(), path
        ui.screenshot(name)
    # The charts are drawn: one bar per hour, stacked severities per day.
    ui.goto("/overview")
    assert ui.page.locator("#events-chart rect").count() == 24
    assert ui.page.locator("#anomaly-chart rect.sev-critical").count() == 2
    assert ui.page.locator("#degraded tbody tr").count() == 1
    ui.goto("/accounts/audit-logs")
    degraded = ui.page.locator(f"#source-{data.org_trail_id}")
    assert "degraded" in degraded.inner_text()
    assert "the bucket policy denies" in degraded.inner_text()
    ui.assert_clean()


def test_filter_anomalies(ui: Browser) -> None:
    ui.login()
    ui.goto("/anomalies")
    ui.page.select_option("#f-severity", "high")
    ui.page.click("text=Filter")
    ui.page.wait_for_url("**/anomalies?severity=high*")
    assert ui.page.locator("#anomalies tbody tr").count() == 3
    ui.page.fill("#f-since", "soon")
    ui.page.click("text=Filter")
    assert "give a duration" in ui.page.locator("#err-since").inner_text()
    ui.screenshot("09-anomalies-filter-error")
    ui.assert_clean("status of 400")


def test_edit_storage_bad_then_good(ui: Browser) -> None:
    trail = ui.console.data.trail_id
    ui.login()
    ui.goto("/accounts/audit-logs")
    ui.page.click(f"#source-{trail} a.icon-button")
    ui.page.wait_for_url(f"**/sources/{trail}/edit")
    ui.page.fill("#bucket", "Bad_Bucket")
    ui.page.fill("#region", "mars-north-1")
    ui.page.click("button:has-text('Save')")
    error = ui.page.locator("#err-bucket")
    assert error.is_visible()
    assert "S3 bucket names" in error.inner_text()
    assert "not a region" in ui.page.locator("#err-region").inner_text()
    assert ui.page.get_attribute("#bucket", "aria-invalid") == "true"
    # The error sits right under its own field.
    field_box = ui.page.locator("#bucket").bounding_box()
    error_box = error.bounding_box()
    assert field_box
    assert error_box
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 20
    ui.screenshot("10-edit-storage-error")
    ui.page.fill("#bucket", "fixed-trail-logs")
    ui.page.fill("#region", "us-west-2")
    ui.page.click("button:has-text('Save')")
    ui.page.wait_for_url("**/accounts/audit-logs")
    assert "Saved the storage configuration" in ui.page.locator(".flash").inner_text()
    row = ui.page.locator(f"#source-{trail}").inner_text()
    assert "fixed-trail-logs" in row
    assert "us-west-2" in row
    ui.screenshot("11-edit-storage-saved")
    with ui.console.state.session() as session:
        source = session.get(Source, trail)
        assert source is not None
        assert (source.bucket, source.region) == ("fixed-trail-logs", "us-west-2")
    ui.assert_clean("status of 422")


def test_create_a_role_with_access_keys(ui: Browser) -> None:
    cluster = ui.console.data.cluster_id
    ui.login()
    ui.goto(f"/sources/{cluster}/edit")
    # No script: the stylesheet shows the path the radios choose.
    assert ui.page.locator("#role").is_visible()
    assert not ui.page.locator("#new-role-name").is_visible()
    ui.page.check("#role-mode-new")
    assert ui.page.locator("#new-role-name").is_visible()
    assert not ui.page.locator("#role").is_visible()
    assert not ui.page.locator("#new-role-secret").is_visible()
    ui.page.check("#auth-access-keys")
    assert ui.page.locator("#new-role-secret").is_visible()
    assert ui.page.get_attribute("#new-role-secret", "type") == "password"
    ui.page.fill("#new-role-name", "eks-keys")
    ui.page.fill("#new-role-arn", f"arn:aws:iam::{ACCOUNT}:role/eks-audit-reader")
    ui.page.fill("#new-role-key-id", "AKIAIOSFODNN7EXAMPLF")
    ui.page.fill("#new-role-secret", "Zq9TnewSecretKeyValueForTests0123456789xy")
    ui.screenshot("12-edit-storage-new-role")
    ui.page.click("button:has-text('Save')")
    ui.page.wait_for_url("**/accounts/clusters")
    row = ui.page.locator(f"#source-{cluster}").inner_text()
    assert "eks-audit-reader" in row
    assert "config eks-keys" in row
    assert "Zq9T" not in ui.page.content()
    ui.goto(f"/sources/{cluster}/edit")
    assert "****MPLF" in ui.page.content()
    assert "Zq9T" not in ui.page.content()
    with ui.console.state.session() as session:
        assert session.scalar(select(RoleConfig).where(RoleConfig.name == "eks-keys"))
    ui.assert_clean()


def test_acknowledge_an_anomaly(ui: Browser) -> None:
    anomaly = ui.console.data.anomaly("aws.guardduty-disabled")
    ui.login()
    ui.goto("/anomalies")
    ui.page.click("text=GuardDuty disabled or blinded")
    ui.page.wait_for_url(f"**/anomalies/{anomaly.id}")
    assert ui.page.locator("#anomaly-status").inner_text() == "open"
    ui.page.click("#ack")
    ui.page.wait_for_url(f"**/anomalies/{anomaly.id}")
    assert ui.page.locator("#anomaly-status").inner_text() == "acked"
    assert "Acknowledged: GuardDuty disabled" in ui.page.locator(".flash").inner_text()
    assert ui.page.locator("#ack").count() == 0
    ui.screenshot("13-anomaly-acknowledged")
    with ui.console.state.session() as session:
        record = session.get(AnomalyRecord, anomaly.id)
        assert record is not None
        assert (record.status, record.acked_by) == ("acked", "admin")
    ui.assert_clean()


def test_a_viewer_has_no_edit_actions(ui: Browser) -> None:
    ui.login("viewer", VIEWER_PASSWORD)
    ui.goto("/accounts/audit-logs")
    assert ui.page.locator("a.icon-button").count() == 0
    ui.goto(f"/anomalies/{ui.console.data.anomalies[0].id}")
    assert ui.page.locator("#ack").count() == 0
    assert "viewer" in ui.page.locator(".who").inner_text()
    ui.assert_clean()


@pytest.mark.integration
def test_doctor_and_a_raw_record(ui: Browser, aws: str) -> None:
    data, clock = ui.console.data, ui.console.clock
    now = clock()
    key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_us-east-1_{now:%Y%m%dT%H%M}Z_abcdefgh12345678.json.gz"
    )
    record = {
        "eventVersion": "1.09",
        "eventID": "e-stop",
        "eventTime": (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": user("mallory"),
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"name": "main-trail-of-mallory"},
    }
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="prod-trail-logs")
    s3.put_object(
        Bucket="prod-trail-logs",
        Key=key,
        Body=gzip.compress(json.dumps({"Records": [record]}).encode()),
    )
    event = normalize_cloudtrail(record, bucket="prod-trail-logs", key=key, index=0)
    with ui.console.state.session() as session:
        (anomaly,) = repo.save_anomalies(
            session, scorer().score_and_commit([event]).anomalies, clock=clock
        )
    ui.login()
    # Read with the base credentials (moto's), as an instance profile would.
    ui.goto(f"/sources/{data.trail_id}/edit")
    ui.page.select_option("#role", "")
    ui.page.click("button:has-text('Save')")
    ui.page.wait_for_url("**/accounts/audit-logs")
    assert "instance profile" in ui.page.locator(f"#source-{data.trail_id}").inner_text()
    ui.goto(f"/sources/{data.trail_id}/edit")
    ui.page.click("button:has-text('Run doctor')")
    steps = ui.page.locator("#doctor-steps tbody tr")
    steps.first.wait_for()
    text = ui.page.locator("#doctor-steps").inner_text()
    assert "read newest object" in text
    assert ui.page.locator("#doctor-steps .status-ok").count() >= 3
    ui.screenshot("14-doctor")
    ui.goto(f"/anomalies/{anomaly.id}")
    ui.page.click("text=raw JSON")
    ui.page.wait_for_url(f"**/anomalies/{anomaly.id}/evidence/0")
    assert "main-trail-of-mallory" in ui.page.locator("#record-json").inner_text()
    ui.screenshot("15-raw-record")
    ui.assert_clean()
