"""No credential in any output: doctor reports, error messages, reprs and log records."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from rich.console import Console

from harvester.aws.doctor import render_table, report_to_json, run_doctor
from harvester.aws.errors import AwsError, RedactingFilter
from harvester.aws.identity import AccessKey, RoleChain
from harvester.aws.s3 import iter_objects, open_object
from harvester.aws.session import ClientSettings, SessionFactory
from tests.conftest import FixedClock
from tests.integration.aws.conftest import (
    ACCOUNT,
    OTHER_ACCOUNT,
    Injector,
    StsCapture,
    allow_read,
    bucket_policy,
    cloudtrail_key,
    error_response,
    make_bucket,
    make_role,
    put,
    source,
    sts_error,
    trail_body,
)

pytestmark = pytest.mark.integration

BUCKET = "secret-test-logs"
EXTERNAL_ID = "ext-Q7w9Zr2Lk4Pm"


def _texts_of(error: AwsError) -> list[str]:
    restored = pickle.loads(pickle.dumps(error))  # noqa: S301  our own object
    return [str(error), repr(error), error.describe(), str(error.to_dict()), repr(restored)]


def _render(report: Any) -> list[str]:
    console = Console(record=True, width=250)
    console.print(render_table(report))
    return [console.export_text(), orjson.dumps(report_to_json(report)).decode()]


@pytest.fixture
def user_key(admin: boto3.Session) -> AccessKey:
    iam = admin.client("iam")
    iam.create_user(UserName="harvester")
    key = iam.create_access_key(UserName="harvester")["AccessKey"]
    return AccessKey(key["AccessKeyId"], key["SecretAccessKey"])


def test_no_secret_in_any_output(
    admin: boto3.Session,
    user_key: AccessKey,
    sts_capture: StsCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="harvester")
    clock = FixedClock(datetime.now(UTC))
    make_bucket(admin, BUCKET)
    make_role(admin, "log-reader", allow_read(BUCKET))
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "us-east-1", clock()), trail_body())
    put(admin, BUCKET, "AWSLogs/denied.json.gz", b"x")
    bucket_policy(
        admin,
        BUCKET,
        {
            "Sid": "DenyOne",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/denied.json.gz",
        },
    )
    chain = RoleChain(
        authentication="access-keys",
        access_key=user_key,
        via_role_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/harvester",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/log-reader",
        external_id=EXTERNAL_ID,
        duration_seconds=900,
    )
    outputs: list[str] = [repr(chain), str(chain), chain.describe()]

    factory = SessionFactory(event_hooks=sts_capture.hooks())
    outputs += _render(run_doctor(source(chain), session_factory=factory, clock=clock))

    # A refresh, which logs the new session.
    credentials = factory.session(chain).get_credentials()
    assert credentials is not None
    credentials._expiry_time = datetime.now(UTC) - timedelta(seconds=1)  # type: ignore[attr-defined]
    list(iter_objects(factory.s3(chain), BUCKET, "AWSLogs/"))
    assert factory.refreshes >= 1

    # Errors made for real (moto's Deny), and AWS's refusals and throttling injected.
    with pytest.raises(AwsError) as denied:
        open_object(factory.s3(chain), BUCKET, "AWSLogs/denied.json.gz")
    outputs += _texts_of(denied.value)

    refusing = SessionFactory(
        event_hooks=[
            *sts_capture.hooks(),
            (
                "before-send.sts.AssumeRole",
                Injector(lambda r: sts_error(403, "AccessDenied", "not authorized")),
            ),
        ]
    )
    with pytest.raises(AwsError) as refused:
        refusing.s3(chain)
    outputs += _texts_of(refused.value)
    outputs += _render(run_doctor(source(chain), session_factory=refusing, clock=clock))

    throttling = SessionFactory(
        settings=ClientSettings(max_attempts=1),
        event_hooks=[
            *sts_capture.hooks(),
            ("before-send.s3.*", Injector(lambda r: error_response(503, "SlowDown", "slow"))),
        ],
    )
    with pytest.raises(AwsError) as throttled:
        list(iter_objects(throttling.s3(chain), BUCKET, "AWSLogs/"))
    outputs += _texts_of(throttled.value)
    outputs += _render(run_doctor(source(chain), session_factory=throttling, clock=clock))

    outputs.append(caplog.text)
    outputs += [str(record.__dict__) for record in caplog.records]

    secrets = [user_key.secret_access_key, *sts_capture.secrets, EXTERNAL_ID]
    # The user's secret, and for every AssumeRole (two hops, several sessions) its secret
    # access key and session token.
    assert len(sts_capture.secrets) >= 2 * 4
    assert any("assumed bucket role" in r.getMessage() for r in caplog.records)
    everything = "\n".join(outputs)
    for secret in secrets:
        assert secret not in everything
        assert secret[:24] not in everything


def test_redacting_filter_keeps_botocore_debug_logs_clean(
    factory: SessionFactory, sts_capture: StsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs headers and STS bodies at DEBUG; the filter must catch them."""
    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level(logging.DEBUG)
    chain = RoleChain(role_arn=f"arn:aws:iam::{ACCOUNT}:role/log-reader")
    factory.sts(chain).get_caller_identity()
    assert sts_capture.secrets
    assert any(r.name.startswith("botocore") for r in caplog.records)
    for secret in sts_capture.secrets:
        assert secret not in caplog.text
        assert secret[:24] not in caplog.text
