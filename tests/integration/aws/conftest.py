"""Helpers for the AWS tests: a session factory, an admin session, and log objects in moto."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from harvester.aws.identity import RoleChain, SourceInfo
from harvester.aws.session import ClientSettings, EventHook, SessionFactory
from tests.conftest import FixedClock

# moto's default account: the one whose IAM the admin session writes to.
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
ORG = "o-a1b2c3d4e5"


@dataclass
class StsCapture:
    """Records every AssumeRole call and the credentials it returned (for the secret greps)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def before(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        creds = parsed.get("Credentials") or {}
        self.secrets.extend(v for k in ("SecretAccessKey", "SessionToken") if (v := creds.get(k)))

    def hooks(self) -> list[EventHook]:
        return [
            ("provide-client-params.sts.AssumeRole", self.before),
            ("after-call.sts.AssumeRole", self.after),
        ]


@pytest.fixture
def sts_capture() -> StsCapture:
    return StsCapture()


@pytest.fixture
def factory(aws: str, sts_capture: StsCapture) -> SessionFactory:
    return SessionFactory(settings=ClientSettings(max_attempts=2), event_hooks=sts_capture.hooks())


@pytest.fixture
def admin(aws: str) -> boto3.Session:
    """The test's own view of moto (environment credentials), to set the scene."""
    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def now_clock() -> FixedClock:
    # moto stamps objects with the real time, so the doctor's clock starts there.
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


def cloudtrail_key(
    account: str, region: str, t: datetime, *, org: str | None = None, prefix: str = ""
) -> str:
    org_part = f"{org}/" if org else ""
    return (
        f"{prefix}AWSLogs/{org_part}{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%M}Z_{t:%H%M%S}abcdef.json.gz"
    )


def eks_key(account: str, cluster: str, t: datetime, *, prefix: str = "") -> str:
    return (
        f"{prefix}EKSLogs/{account}/{cluster}/{t:%Y/%m/%d/%H}/"
        f"audit-stream-1-{t:%Y-%m-%d-%H-%M-%S}-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    )


def trail_body(n: int = 2) -> bytes:
    records = [
        {"eventVersion": "1.09", "eventName": "ListBuckets", "eventID": str(i)} for i in range(n)
    ]
    return gzip.compress(json.dumps({"Records": records}).encode())


def put(admin: boto3.Session, bucket: str, key: str, body: bytes, **kwargs: Any) -> None:
    admin.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **kwargs)


def make_bucket(admin: boto3.Session, bucket: str, region: str = "us-east-1") -> None:
    client = admin.client("s3", region_name=region)
    if region == "us-east-1":
        client.create_bucket(Bucket=bucket)
    else:
        client.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},
        )


def make_role(admin: boto3.Session, name: str, *statements: dict[str, Any]) -> str:
    iam = admin.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_doc()))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name, PolicyName="harvest", PolicyDocument=json.dumps(_doc(*statements))
        )
    return arn


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow_read(bucket: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


def bucket_policy(admin: boto3.Session, bucket: str, *statements: dict[str, Any]) -> None:
    admin.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(_doc(*statements)))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def error_response(status: int, code: str, message: str, *, xml_root: str = "Error") -> AWSResponse:
    body = (
        f"<{xml_root}><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>FAKE{status}</RequestId></{xml_root}>"
    ).encode()
    return AWSResponse("https://fake", status, {"x-amz-request-id": f"FAKE{status}"}, _Raw(body))


def sts_error(status: int, code: str, message: str) -> AWSResponse:
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>FAKE-STS</RequestId></ErrorResponse>"
    ).encode()
    return AWSResponse("https://fake", status, {}, _Raw(body))


@dataclass
class Injector:
    """A before-send hook answering chosen requests itself: AWS's answer, without AWS."""

    answer: Callable[[Any], AWSResponse | None]
    sent: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        return self.answer(request)


def source(
    chain: RoleChain,
    *,
    bucket: str = "trail-logs",
    region: str = "us-east-1",
    prefix: str = "AWSLogs/",
    kind: str = "cloudtrail",
    account: str = ACCOUNT,
    org: str | None = None,
    cluster: str | None = None,
) -> SourceInfo:
    return SourceInfo(
        kind="eks" if kind == "eks" else "cloudtrail",
        account_id=account,
        bucket=bucket,
        region=region,
        prefix=prefix,
        chain=chain,
        organization_id=org,
        cluster_name=cluster,
    )


def hours_ago(clock: FixedClock, hours: float) -> datetime:
    return clock() - timedelta(hours=hours)
