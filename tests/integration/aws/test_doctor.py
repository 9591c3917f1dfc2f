"""``run_doctor`` against the moto server: a healthy source, then each failure it must explain."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import orjson
import pytest
from rich.console import Console

from harvester.aws.doctor import DoctorReport, Status, render_table, report_to_json, run_doctor
from harvester.aws.identity import RoleChain, SourceInfo
from harvester.aws.session import ClientSettings, SessionFactory
from tests.conftest import FixedClock
from tests.integration.aws.conftest import (
    ACCOUNT,
    ORG,
    OTHER_ACCOUNT,
    Injector,
    allow_read,
    bucket_policy,
    cloudtrail_key,
    eks_key,
    error_response,
    make_bucket,
    make_role,
    put,
    source,
    sts_error,
    trail_body,
)

pytestmark = pytest.mark.integration

BUCKET = "trail-logs"
VIA = f"arn:aws:iam::{OTHER_ACCOUNT}:role/harvester"
BUCKET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/log-reader"
CHAIN = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="ext-7f3a")


def doctor(
    info: SourceInfo, factory: SessionFactory, clock: FixedClock
) -> tuple[DoctorReport, dict[str, Any]]:
    report = run_doctor(info, session_factory=factory, clock=clock)
    return report, {s.name: s for s in report.steps}


def statuses(report: DoctorReport) -> dict[str, str]:
    return {s.name: s.status.value for s in report.steps}


@pytest.fixture
def healthy(admin: boto3.Session, now_clock: FixedClock) -> str:
    """An account trail with two regions, the bucket role allowed to read it."""
    make_bucket(admin, BUCKET)
    make_role(admin, "log-reader", allow_read(BUCKET))
    for region in ("us-east-1", "eu-west-1"):
        for minutes in (30, 5):
            t = now_clock() - timedelta(minutes=minutes)
            put(admin, BUCKET, cloudtrail_key(ACCOUNT, region, t), trail_body())
    return cloudtrail_key(ACCOUNT, "us-east-1", now_clock() - timedelta(minutes=5))


def test_healthy_account_trail(
    healthy: str, factory: SessionFactory, now_clock: FixedClock
) -> None:
    report, steps = doctor(source(CHAIN), factory, now_clock)
    assert statuses(report) == {
        "credentials": "ok",
        "assume_role": "ok",
        "bucket": "ok",
        "list": "ok",
        "layout": "ok",
        "read": "ok",
        "bucket_policy": "ok",
        "identity_policy": "ok",
        "encryption": "ok",
        "eks": "skip",
    }
    assert report.status is Status.OK
    assert steps["assume_role"].details["final_arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/log-reader/audit-harvester"
    )
    assert steps["layout"].details["regions"] == ["eu-west-1", "us-east-1"]
    assert steps["read"].details["key"] == healthy
    assert "identify as" in steps["credentials"].message
    assert "inline:harvest" in steps["identity_policy"].message


def test_json_and_table_output(
    healthy: str, factory: SessionFactory, now_clock: FixedClock
) -> None:
    report, _ = doctor(source(CHAIN), factory, now_clock)
    data = report_to_json(report)
    assert data["status"] == "ok"
    assert [s["name"] for s in data["steps"]][:3] == ["credentials", "assume_role", "bucket"]
    assert data["source"]["credentials"].startswith("instance-profile → " + VIA)
    assert json.loads(orjson.dumps(data)) == data
    console = Console(record=True, width=200)
    console.print(render_table(report))
    text = console.export_text()
    assert "read newest object" in text
    assert "overall: ok" in text


def test_missing_bucket(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    report, steps = doctor(source(CHAIN, bucket="not-a-bucket"), factory, now_clock)
    assert steps["bucket"].status is Status.FAIL
    assert "not-a-bucket does not exist" in steps["bucket"].message
    assert "bucket name" in steps["bucket"].fix
    for later in ("list", "layout", "read", "bucket_policy", "encryption"):
        assert steps[later].status is Status.SKIP, later
    assert report.status is Status.FAIL


def test_wrong_region_names_the_real_one_and_carries_on(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET, region="eu-central-1")
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "eu-central-1", now_clock()), trail_body())
    _, steps = doctor(source(RoleChain(), region="us-east-1"), factory, now_clock)
    bucket = steps["bucket"]
    assert bucket.status is Status.FAIL
    assert "is in region eu-central-1, not in the configured region us-east-1" in bucket.message
    assert bucket.fix == "Set the source's region to eu-central-1."
    assert steps["layout"].status is Status.OK
    assert steps["read"].status is Status.OK


def test_empty_prefix(admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock) -> None:
    make_bucket(admin, BUCKET)
    _, steps = doctor(source(RoleChain()), factory, now_clock)
    assert steps["list"].status is Status.OK
    layout = steps["layout"]
    assert layout.status is Status.FAIL
    assert f"no CloudTrail logs under s3://{BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail/" in layout.message
    assert "no AWSLogs/ or EKSLogs/ folder" in layout.message
    assert layout.fix
    assert steps["read"].status is Status.SKIP


def test_org_trail_when_an_account_prefix_was_configured(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    for account in (ACCOUNT, OTHER_ACCOUNT):
        put(admin, BUCKET, cloudtrail_key(account, "us-east-1", now_clock(), org=ORG), trail_body())
    _, steps = doctor(source(RoleChain(), prefix=f"AWSLogs/{ACCOUNT}/"), factory, now_clock)
    layout = steps["layout"]
    assert layout.status is Status.FAIL
    assert f"an organization trail folder AWSLogs/{ORG}/" in layout.message
    assert ACCOUNT in layout.message
    assert OTHER_ACCOUNT in layout.message
    assert layout.fix == (
        f"This is an organization trail: set the organization id to {ORG} (or the prefix to "
        f"'AWSLogs/{ORG}/{ACCOUNT}/')."
    )
    assert layout.details["found"]["organization_folders"] == {
        f"AWSLogs/{ORG}/": sorted([ACCOUNT, OTHER_ACCOUNT])
    }
    # With the organization id set, the same bucket is healthy.
    _, fixed = doctor(source(RoleChain(), org=ORG), factory, now_clock)
    assert fixed["layout"].status is Status.OK
    assert fixed["read"].status is Status.OK


def test_custom_prefix_in_front_of_awslogs(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    put(
        admin,
        BUCKET,
        cloudtrail_key(ACCOUNT, "us-east-1", now_clock(), prefix="trails/prod/"),
        trail_body(),
    )
    _, steps = doctor(source(RoleChain(), prefix="AWSLogs/"), factory, now_clock)
    layout = steps["layout"]
    assert layout.status is Status.FAIL
    assert "a custom prefix in front of AWSLogs/ or EKSLogs/: 'trails/prod/'" in layout.message
    assert layout.fix == "Set the prefix to the custom prefix 'trails/prod/'."
    _, fixed = doctor(source(RoleChain(), prefix="trails/prod/"), factory, now_clock)
    assert fixed["read"].status is Status.OK


def test_other_accounts_only(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    put(admin, BUCKET, cloudtrail_key(OTHER_ACCOUNT, "us-east-1", now_clock()), trail_body())
    _, steps = doctor(source(RoleChain()), factory, now_clock)
    layout = steps["layout"]
    assert f"account folders under AWSLogs/: {OTHER_ACCOUNT}" in layout.message
    assert "check the account id" in (layout.fix or "")


def test_stale_trail_and_not_gzip_warn(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "us-east-1", now_clock()), b'{"Records": []}')
    _, steps = doctor(source(RoleChain()), factory, now_clock)
    assert steps["read"].status is Status.WARN
    assert "not gzip" in steps["read"].message
    now_clock.advance(timedelta(days=3))
    admin.client("s3").put_object(
        Bucket=BUCKET, Key=cloudtrail_key(ACCOUNT, "us-east-1", now_clock()), Body=trail_body()
    )
    later = FixedClock(now_clock() + timedelta(days=3))
    _, stale = doctor(source(RoleChain()), factory, later)
    assert stale["read"].status is Status.WARN
    assert "may have stopped logging" in stale["read"].message


def test_explicit_and_conditional_bucket_policy_denies(
    healthy: str, admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    bucket_policy(
        admin,
        BUCKET,
        {
            "Sid": "NoReadingTrails",
            "Effect": "Deny",
            "Principal": {"AWS": BUCKET_ROLE},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/*",
        },
        {
            "Sid": "OnlyThroughVpce",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0abc"}},
        },
    )
    _, steps = doctor(source(CHAIN), factory, now_clock)
    policy = steps["bucket_policy"]
    assert policy.status is Status.FAIL
    assert "'NoReadingTrails'" in policy.message
    assert "explicitly denies s3:GetObject" in policy.message
    assert "'OnlyThroughVpce'" in policy.message
    assert "may deny s3:ListBucket" in policy.message
    assert "depending on aws:SourceVpce" in policy.message
    assert policy.fix
    verdicts = {e["action"]: e["verdict"] for e in policy.details["evaluations"]}
    assert verdicts == {"s3:GetObject": "denied", "s3:ListBucket": "may_be_denied"}
    # moto enforces the explicit Deny for real: the read fails and names the principal.
    read = steps["read"]
    assert read.status is Status.FAIL
    assert "access denied" in read.message
    assert "assumed-role/log-reader/audit-harvester" in read.message


def test_cross_account_principal_needs_a_bucket_policy_allow(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "us-east-1", now_clock()), trail_body())
    via_only = RoleChain(via_role_arn=VIA)
    info = SourceInfo(
        kind="cloudtrail",
        account_id=ACCOUNT,
        bucket=BUCKET,
        region="us-east-1",
        prefix="AWSLogs/",
        chain=via_only,
        bucket_account=ACCOUNT,
    )
    _, steps = doctor(info, factory, now_clock)
    policy = steps["bucket_policy"]
    assert policy.status is Status.FAIL
    assert f"in account {OTHER_ACCOUNT} while the bucket belongs to {ACCOUNT}" in policy.message
    assert VIA in (policy.fix or "")
    bucket_policy(
        admin,
        BUCKET,
        {
            "Sid": "HarvesterReads",
            "Effect": "Allow",
            "Principal": {"AWS": VIA},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        },
    )
    _, allowed = doctor(info, factory, now_clock)
    assert allowed["bucket_policy"].status is Status.OK
    assert "'HarvesterReads'" in allowed["bucket_policy"].message
    assert allowed["bucket_policy"].details["cross_account"] is True


def test_unreadable_identity_policies_warn_never_ok(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "us-east-1", now_clock()), trail_body())
    # The role exists in no IAM moto knows of: reading its policies fails.
    chain = RoleChain(role_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/elsewhere")
    _, steps = doctor(source(chain), factory, now_clock)
    identity = steps["identity_policy"]
    assert identity.status is Status.WARN
    assert identity.message.startswith("could not read the identity policies of role elsewhere")
    assert "iam:GetRolePolicy" in (identity.fix or "")


def test_identity_policy_without_a_grant_fails_when_the_call_fails(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    make_role(
        admin,
        "log-reader",
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Sid": "NoObjects", "Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"},
    )
    put(admin, BUCKET, cloudtrail_key(ACCOUNT, "us-east-1", now_clock()), trail_body())
    _, steps = doctor(source(RoleChain(role_arn=BUCKET_ROLE)), factory, now_clock)
    identity = steps["identity_policy"]
    assert identity.status is Status.FAIL
    assert "'NoObjects'" in identity.message
    assert "explicitly denies s3:GetObject" in identity.message


def test_refused_assume_role_names_the_hop(healthy: str, aws: str, now_clock: FixedClock) -> None:
    def refuse(request: Any) -> Any:
        body = request.body or b""
        if "log-reader" in (body.decode() if isinstance(body, bytes) else str(body)):
            return sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRole")
        return None

    factory = SessionFactory(event_hooks=[("before-send.sts.AssumeRole", Injector(refuse))])
    report, steps = doctor(source(CHAIN), factory, now_clock)
    assume = steps["assume_role"]
    assert assume.status is Status.FAIL
    assert assume.details["failed_hop"] == "bucket role"
    assert f"the bucket role {BUCKET_ROLE} could not be assumed by " in assume.message
    assert "assumed-role/harvester/audit-harvester" in assume.message
    assert "with the configured external ID" in assume.message
    assert "trust policy" in (assume.fix or "")
    assert "sts:ExternalId" in (assume.fix or "")
    assert steps["credentials"].status is Status.OK
    assert steps["bucket"].status is Status.SKIP
    assert report.status is Status.FAIL


def test_throttling_is_reported_with_its_fix(healthy: str, aws: str, now_clock: FixedClock) -> None:
    def slow(request: Any) -> Any:
        if "list-type=2" in request.url:
            return error_response(503, "SlowDown", "Please reduce your request rate.")
        return None

    factory = SessionFactory(
        settings=ClientSettings(max_attempts=1), event_hooks=[("before-send.s3.*", Injector(slow))]
    )
    _, steps = doctor(source(CHAIN), factory, now_clock)
    listing = steps["list"]
    assert listing.status is Status.FAIL
    assert "AWS throttled ListObjectsV2" in listing.message
    assert "SlowDown" in listing.message
    assert "concurrency" in (listing.fix or "")
    assert listing.details["error_code"] == "throttled"


def test_no_credentials(
    admin: boto3.Session, monkeypatch: pytest.MonkeyPatch, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    report, steps = doctor(source(CHAIN), SessionFactory(), now_clock)
    assert steps["credentials"].status is Status.FAIL
    assert "no credentials found" in steps["credentials"].message
    assert "instance profile" in (steps["credentials"].fix or "")
    assert {s.status for s in report.steps[1:]} == {Status.SKIP}


def test_sse_kms_in_another_account_warns(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, BUCKET)
    key_arn = admin.client("kms").create_key()["KeyMetadata"]["Arn"]
    put(
        admin,
        BUCKET,
        cloudtrail_key(ACCOUNT, "us-east-1", now_clock()),
        trail_body(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
    )
    same = RoleChain(role_arn=BUCKET_ROLE)
    _, steps = doctor(source(same), factory, now_clock)
    encryption = steps["encryption"]
    assert encryption.status is Status.OK
    assert f"newest object aws:kms with key {key_arn}" in encryption.message
    assert "kms:Decrypt proven by reading the newest object" in encryption.message
    other = RoleChain(role_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader")
    _, cross = doctor(source(other), factory, now_clock)
    assert cross["encryption"].status is Status.WARN
    assert f"the KMS key is in account {ACCOUNT}" in cross["encryption"].message
    assert "same account as the bucket" in (cross["encryption"].fix or "")


# --- EKS ---------------------------------------------------------------------------------------


def make_cluster(admin: boto3.Session, name: str, *, audit: bool) -> None:
    admin.client("eks").create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-0abc"]},
        logging={"clusterLogging": [{"types": ["audit"] if audit else ["api"], "enabled": True}]},
    )


def test_eks_source_healthy(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, "eks-logs")
    make_role(admin, "log-reader", allow_read("eks-logs"))
    make_cluster(admin, "prod-1", audit=True)
    put(admin, "eks-logs", eks_key(ACCOUNT, "prod-1", now_clock() - timedelta(minutes=10)), b"{}")
    chain = RoleChain(role_arn=BUCKET_ROLE)
    info = source(chain, bucket="eks-logs", prefix="", kind="eks", cluster="prod-1")
    report, steps = doctor(info, factory, now_clock)
    assert steps["layout"].status is Status.OK
    assert steps["read"].status is Status.OK
    eks = steps["eks"]
    assert eks.status is Status.OK
    assert "audit log object(s) in the last hour" in eks.message
    assert "cluster prod-1 has its audit log type enabled" in eks.message
    assert report.status is Status.OK


def test_eks_audit_disabled_and_no_recent_logs(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, "eks-logs")
    make_cluster(admin, "prod-2", audit=False)
    put(admin, "eks-logs", eks_key(ACCOUNT, "prod-2", now_clock() - timedelta(hours=5)), b"{}")
    info = source(RoleChain(), bucket="eks-logs", prefix="EKSLogs/", kind="eks", cluster="prod-2")
    _, steps = doctor(info, factory, now_clock)
    eks = steps["eks"]
    assert eks.status is Status.FAIL
    assert "no audit log objects for the last hour" in eks.message
    assert "does not send its audit log" in eks.message
    assert "update-cluster-config --name prod-2" in (eks.fix or "")
    assert "subscription filter on /aws/eks/prod-2/cluster" in (eks.fix or "")


def test_eks_wrong_cluster_name_lists_the_clusters_found(
    admin: boto3.Session, factory: SessionFactory, now_clock: FixedClock
) -> None:
    make_bucket(admin, "eks-logs")
    for name in ("alpha", "beta"):
        put(admin, "eks-logs", eks_key(ACCOUNT, name, now_clock()), b"{}")
    info = source(RoleChain(), bucket="eks-logs", prefix="", kind="eks", cluster="gamma")
    _, steps = doctor(info, factory, now_clock)
    layout = steps["layout"]
    assert layout.status is Status.FAIL
    assert f"EKS clusters under EKSLogs/{ACCOUNT}/: alpha, beta" in layout.message
    assert (layout.fix or "").startswith("Set the cluster name to one of alpha, beta")
