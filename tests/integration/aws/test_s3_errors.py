"""S3 wrappers and error conversion against the moto server: each failure made for real."""

from __future__ import annotations

import gzip
import io
import json
import socket
from typing import Any

import boto3
import pytest

from harvester.aws.errors import (
    AccessDenied,
    AssumeRoleRefused,
    EndpointUnreachable,
    ErrorCode,
    NoSuchBucket,
    NoSuchKey,
    ObjectChanged,
    Throttled,
    WrongRegion,
)
from harvester.aws.identity import RoleChain
from harvester.aws.s3 import (
    bucket_region,
    check_bucket,
    get_bucket_encryption,
    get_bucket_policy,
    head_object,
    iter_objects,
    list_prefixes,
    open_object,
)
from harvester.aws.session import ClientSettings, SessionFactory
from tests.integration.aws.conftest import (
    ACCOUNT,
    Injector,
    bucket_policy,
    error_response,
    make_bucket,
    put,
    sts_error,
)

pytestmark = pytest.mark.integration

BUCKET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/log-reader"


def test_bucket_region_and_wrong_region(factory: SessionFactory, admin: boto3.Session) -> None:
    make_bucket(admin, "eu-logs", region="eu-west-1")
    s3 = factory.s3(RoleChain(), "us-east-1")
    assert bucket_region(s3, "eu-logs") == "eu-west-1"
    with pytest.raises(WrongRegion) as caught:
        check_bucket(s3, "eu-logs", region="us-east-1")
    error = caught.value
    assert error.region == "eu-west-1"
    assert error.configured_region == "us-east-1"
    assert error.code is ErrorCode.WRONG_REGION
    assert "eu-west-1" in str(error)
    assert error.remedy == "Set the source's region to eu-west-1."
    assert check_bucket(factory.s3(RoleChain(), "eu-west-1"), "eu-logs", region="eu-west-1") == (
        "eu-west-1"
    )


def test_missing_bucket(factory: SessionFactory) -> None:
    s3 = factory.s3(RoleChain())
    with pytest.raises(NoSuchBucket) as caught:
        check_bucket(s3, "no-such-bucket-here", region="us-east-1")
    assert "no-such-bucket-here does not exist" in str(caught.value)
    with pytest.raises(NoSuchBucket):
        list(iter_objects(s3, "no-such-bucket-here", "AWSLogs/"))


def test_listing_pages_and_folders(factory: SessionFactory, admin: boto3.Session) -> None:
    make_bucket(admin, "many")
    for i in range(7):
        put(admin, "many", f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/{i + 1:02d}/f", b"x")
    s3 = factory.s3(RoleChain())
    keys = [o.key for o in iter_objects(s3, "many", "AWSLogs/", page_size=2)]
    assert len(keys) == 7
    assert keys == sorted(keys)
    after = [o.key for o in iter_objects(s3, "many", "AWSLogs/", start_after=keys[4])]
    assert after == keys[5:]
    folders = list_prefixes(s3, "many", f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/")
    assert folders[0].endswith("/01/")
    assert len(folders) == 7


def test_streaming_read_missing_key_and_changed_object(
    factory: SessionFactory, admin: boto3.Session
) -> None:
    make_bucket(admin, "objects")
    body = gzip.compress(json.dumps({"Records": [{"i": i} for i in range(2000)]}).encode())
    put(admin, "objects", "k.json.gz", body)
    s3 = factory.s3(RoleChain())
    meta = head_object(s3, "objects", "k.json.gz")
    assert meta.size == len(body)
    with open_object(s3, "objects", "k.json.gz", etag=meta.etag) as stream:
        document = json.load(gzip.GzipFile(fileobj=io.BufferedReader(stream, 4096)))
        assert stream.bytes_read == len(body)
    assert len(document["Records"]) == 2000
    with open_object(s3, "objects", "k.json.gz", byte_range=(0, 1)) as stream:
        assert stream.read() == b"\x1f\x8b"
    with pytest.raises(NoSuchKey) as missing:
        open_object(s3, "objects", "gone.json.gz")
    assert "s3://objects/gone.json.gz does not exist" in str(missing.value)
    with pytest.raises(ObjectChanged):
        open_object(s3, "objects", "k.json.gz", etag="0123456789abcdef0123456789abcdef")


def test_bucket_policy_deny_is_an_access_denial(
    factory: SessionFactory, admin: boto3.Session
) -> None:
    make_bucket(admin, "guarded")
    put(admin, "guarded", "AWSLogs/secret.json.gz", b"x")
    bucket_policy(
        admin,
        "guarded",
        {
            "Sid": "DenyEveryone",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::guarded/*",
        },
    )
    chain = RoleChain(role_arn=BUCKET_ROLE)
    who = factory.sts(chain).get_caller_identity()["Arn"]
    with pytest.raises(AccessDenied) as caught:
        open_object(factory.s3(chain), "guarded", "AWSLogs/secret.json.gz", principal=who)
    error = caught.value
    assert error.code is ErrorCode.ACCESS_DENIED
    assert error.action == "s3:GetObject"
    assert error.resource == "arn:aws:s3:::guarded/AWSLogs/secret.json.gz"
    assert who in str(error)
    assert not error.retryable
    policy = get_bucket_policy(factory.s3(chain), "guarded")
    assert policy is not None
    assert "DenyEveryone" in policy


def test_policy_and_encryption_absent_are_none(
    factory: SessionFactory, admin: boto3.Session
) -> None:
    make_bucket(admin, "plain")
    s3 = factory.s3(RoleChain())
    assert get_bucket_policy(s3, "plain") is None
    assert get_bucket_encryption(s3, "plain") is None
    kms = admin.client("kms").create_key()["KeyMetadata"]["Arn"]
    admin.client("s3").put_bucket_encryption(
        Bucket="plain",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms,
                    }
                }
            ]
        },
    )
    encryption = get_bucket_encryption(s3, "plain")
    assert encryption is not None
    assert encryption.sse_kms
    assert encryption.kms_key_id == kms


def slow_down(request: Any) -> Any:
    if request.method == "GET":
        return error_response(503, "SlowDown", "Please reduce your request rate.")
    return None


def test_throttling_is_retried_then_given_up_with_a_clear_message(aws: str) -> None:
    injector = Injector(slow_down)
    factory = SessionFactory(
        settings=ClientSettings(max_attempts=2), event_hooks=[("before-send.s3.*", injector)]
    )
    s3 = factory.s3(RoleChain())
    with pytest.raises(Throttled) as caught:
        list(iter_objects(s3, "any-bucket", "AWSLogs/"))
    error = caught.value
    assert injector.sent == 3  # the first try and two retries
    assert error.retryable
    assert error.code is ErrorCode.THROTTLED
    assert "throttled ListObjectsV2" in str(error)
    assert "SlowDown" in str(error)
    assert "after 2 retries" in str(error)
    assert 0.0 <= error.retry_after <= 4.0


def test_throttling_that_passes_is_invisible(aws: str, admin: boto3.Session) -> None:
    make_bucket(admin, "busy")
    put(admin, "busy", "AWSLogs/a", b"x")
    answers = iter([error_response(503, "SlowDown", "slow"), None, None, None])
    injector = Injector(lambda request: next(answers))
    factory = SessionFactory(
        settings=ClientSettings(max_attempts=3), event_hooks=[("before-send.s3.*", injector)]
    )
    keys = [o.key for o in iter_objects(factory.s3(RoleChain()), "busy", "AWSLogs/")]
    assert keys == ["AWSLogs/a"]
    assert injector.sent == 2


def test_refused_assume_role_names_the_role_and_the_trust_policy(aws: str) -> None:
    refuse = Injector(
        lambda request: sts_error(
            403,
            "AccessDenied",
            f"User: arn:aws:sts::{ACCOUNT}:user/moto is not authorized to perform: "
            f"sts:AssumeRole on resource: {BUCKET_ROLE}",
        )
    )
    factory = SessionFactory(event_hooks=[("before-send.sts.AssumeRole", refuse)])
    with pytest.raises(AssumeRoleRefused) as caught:
        factory.s3(RoleChain(role_arn=BUCKET_ROLE, external_id="ext-1"))
    error = caught.value
    assert error.hop == "bucket role"
    assert error.principal == f"arn:aws:sts::{ACCOUNT}:user/moto"
    assert BUCKET_ROLE in str(error)
    assert "trust policy" in error.remedy
    assert "external ID" in error.remedy


def test_unreachable_endpoint(aws: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    factory = SessionFactory(
        settings=ClientSettings(max_attempts=0, connect_timeout=1),
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    with pytest.raises(EndpointUnreachable) as caught:
        list(iter_objects(factory.s3(RoleChain()), "b1", "AWSLogs/"))
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)
