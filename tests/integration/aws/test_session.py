"""The session factory against the moto server: every authentication mode, chains, refresh."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from harvester.aws.identity import AccessKey, RoleChain, role_chain_from_config
from harvester.aws.s3 import iter_objects
from harvester.aws.session import ClientSettings, SessionFactory
from harvester.crypto import SecretBox
from harvester.db.models import AccessKeyConfig, RoleConfig
from tests.conftest import FixedClock
from tests.integration.aws.conftest import (
    ACCOUNT,
    OTHER_ACCOUNT,
    StsCapture,
    make_bucket,
    put,
)

pytestmark = pytest.mark.integration

VIA = f"arn:aws:iam::{OTHER_ACCOUNT}:role/harvester"
BUCKET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/log-reader"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def caller(factory: SessionFactory, chain: RoleChain, region: str | None = None) -> str:
    return factory.sts(chain, region).get_caller_identity()["Arn"]


def test_instance_profile_uses_the_default_credential_chain(factory: SessionFactory) -> None:
    chain = RoleChain()
    credentials = factory.session(chain).get_credentials()
    assert credentials is not None
    assert credentials.method == "env"
    # moto answers an unknown key with its default user.
    assert caller(factory, chain) == f"arn:aws:sts::{ACCOUNT}:user/moto"


def test_access_keys_from_a_stored_key(factory: SessionFactory, admin: boto3.Session) -> None:
    iam = admin.client("iam")
    iam.create_user(UserName="harvester")
    key = iam.create_access_key(UserName="harvester")["AccessKey"]
    box = SecretBox.from_keys("at-rest-key-for-tests")
    role = RoleConfig(
        name="with-keys",
        role_arn=None,
        session_name="audit-harvester",
        partition="aws",
        authentication="access-keys",
        created_at=NOW,
        updated_at=NOW,
    )
    role.access_key = AccessKeyConfig(
        access_key_id=key["AccessKeyId"],
        secret_encrypted=box.encrypt(key["SecretAccessKey"]),
        created_at=NOW,
    )
    chain = role_chain_from_config(role, secret_box=box)
    # The stored key wins over the environment's credentials.
    assert caller(factory, chain) == f"arn:aws:iam::{ACCOUNT}:user/harvester"
    assert caller(factory, RoleChain()) == f"arn:aws:sts::{ACCOUNT}:user/moto"


def test_access_keys_then_a_bucket_role(factory: SessionFactory, admin: boto3.Session) -> None:
    iam = admin.client("iam")
    iam.create_user(UserName="harvester")
    key = iam.create_access_key(UserName="harvester")["AccessKey"]
    chain = RoleChain(
        authentication="access-keys",
        access_key=AccessKey(key["AccessKeyId"], key["SecretAccessKey"]),
        role_arn=BUCKET_ROLE,
    )
    assert (
        caller(factory, chain) == f"arn:aws:sts::{ACCOUNT}:assumed-role/log-reader/audit-harvester"
    )


def test_chained_assume_role_with_an_external_id(
    factory: SessionFactory, sts_capture: StsCapture
) -> None:
    chain = RoleChain(
        via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="ext-7f3a", session_name="harvest-1"
    )
    assert caller(factory, chain) == f"arn:aws:sts::{ACCOUNT}:assumed-role/log-reader/harvest-1"
    assert caller(factory, chain.truncated(1)) == (
        f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/harvester/harvest-1"
    )
    sent = [(c["RoleArn"], c.get("ExternalId"), c["RoleSessionName"]) for c in sts_capture.calls]
    assert sent == [(VIA, None, "harvest-1"), (BUCKET_ROLE, "ext-7f3a", "harvest-1")]
    # Chained sessions are capped at an hour; the first hop asks for the configured duration.
    assert [c["DurationSeconds"] for c in sts_capture.calls] == [3600, 3600]


def test_installation_default_external_id(factory: SessionFactory, sts_capture: StsCapture) -> None:
    role = RoleConfig(
        name="default-ext",
        role_arn=BUCKET_ROLE,
        session_name="audit-harvester",
        partition="aws",
        authentication="instance-profile",
        external_id=None,
        created_at=NOW,
        updated_at=NOW,
    )
    chain = role_chain_from_config(role, secret_box=None, default_external_id="install-ext")
    caller(factory, chain)
    assert [c.get("ExternalId") for c in sts_capture.calls] == ["install-ext"]


def test_bucket_role_only_is_assumed_from_the_base_credentials(
    factory: SessionFactory, sts_capture: StsCapture
) -> None:
    assert caller(factory, RoleChain(role_arn=BUCKET_ROLE)).endswith(
        ":assumed-role/log-reader/audit-harvester"
    )
    assert [c["RoleArn"] for c in sts_capture.calls] == [BUCKET_ROLE]


def test_govcloud_role_selects_the_govcloud_partition(factory: SessionFactory) -> None:
    chain = RoleChain(
        partition="aws-us-gov", role_arn="arn:aws-us-gov:iam::111122223333:role/gov-reader"
    )
    session = factory.session(chain)
    assert session.region_name == "us-gov-west-1"
    sts = factory.sts(chain)
    assert sts.meta.region_name == "us-gov-west-1"
    assert sts.meta.partition == "aws-us-gov"
    # AWS_ENDPOINT_URL (the moto server) is honoured, not overridden.
    assert sts.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]
    arn = sts.get_caller_identity()["Arn"]
    assert arn == "arn:aws-us-gov:sts::111122223333:assumed-role/gov-reader/audit-harvester"
    s3 = factory.s3(chain)
    assert s3.meta.region_name == "us-gov-west-1"


def test_clients_are_cached_per_identity_and_region(factory: SessionFactory) -> None:
    chain = RoleChain(role_arn=BUCKET_ROLE, external_id="ext-a")
    assert factory.s3(chain, "us-east-1") is factory.s3(chain, "us-east-1")
    assert factory.s3(chain, "us-east-1") is not factory.s3(chain, "eu-west-1")
    other = RoleChain(role_arn=BUCKET_ROLE, external_id="ext-b")
    assert factory.s3(other, "us-east-1") is not factory.s3(chain, "us-east-1")
    assert caller(factory, RoleChain(role_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/x")).startswith(
        f"arn:aws:sts::{OTHER_ACCOUNT}:"
    )
    assert caller(factory, chain).startswith(f"arn:aws:sts::{ACCOUNT}:")


def test_a_forked_child_builds_its_own_sessions(factory: SessionFactory) -> None:
    chain = RoleChain(role_arn=BUCKET_ROLE)
    parent_client = factory.s3(chain)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it reused the parent's client, then leave
        try:
            reused = factory.s3(chain) is parent_client
            works = factory.sts(chain).get_caller_identity()["Arn"].endswith("/audit-harvester")
            os.write(write_end, b"%d%d" % (reused, works))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer == b"01"
    assert factory.s3(chain) is parent_client


class _ExpiryFromClock:
    """Rewrites STS's Expiration to the fake clock, so moto's real-time stamps agree with it."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.duration = 3600

    def remember(self, params: dict[str, Any], **_: Any) -> None:
        self.duration = int(params.get("DurationSeconds", 3600))

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" in parsed:
            parsed["Credentials"]["Expiration"] = self.clock() + timedelta(seconds=self.duration)


def test_short_sessions_refresh_during_a_long_harvest(aws: str, admin: boto3.Session) -> None:
    make_bucket(admin, "long-harvest")
    put(admin, "long-harvest", "AWSLogs/one", b"x")
    clock = FixedClock(datetime.now(UTC))
    expiry = _ExpiryFromClock(clock)
    factory = SessionFactory(
        settings=ClientSettings(max_attempts=1),
        time_fetcher=clock,
        event_hooks=[
            ("provide-client-params.sts.AssumeRole", expiry.remember),
            ("after-call.sts.AssumeRole", expiry),
        ],
    )
    chain = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, duration_seconds=900)
    s3 = factory.s3(chain)
    credentials = factory.session(chain).get_credentials()
    assert credentials is not None
    first_key = credentials.get_frozen_credentials().access_key
    assert factory.refreshes == 0
    # Three hours of harvesting, a listing every five minutes, on 15-minute sessions.
    keys_seen = {first_key}
    for _ in range(36):
        clock.advance(timedelta(minutes=5))
        assert [o.key for o in iter_objects(s3, "long-harvest", "AWSLogs/")] == ["AWSLogs/one"]
        keys_seen.add(credentials.get_frozen_credentials().access_key)
    # With a call every 5 minutes, each hop renews once its 15 minutes are (nearly) up:
    # about 12 times in 3 hours each, and never on every call.
    assert 20 <= factory.refreshes <= 40
    assert len(keys_seen) >= 12
    assert (
        caller(factory, chain) == f"arn:aws:sts::{ACCOUNT}:assumed-role/log-reader/audit-harvester"
    )


def test_expired_credentials_are_refreshed_before_the_next_call(
    factory: SessionFactory, admin: boto3.Session
) -> None:
    make_bucket(admin, "expiring")
    chain = RoleChain(role_arn=BUCKET_ROLE, duration_seconds=900)
    s3 = factory.s3(chain)
    s3.list_objects_v2(Bucket="expiring")
    credentials = factory.session(chain).get_credentials()
    assert credentials is not None
    old_key = credentials.get_frozen_credentials().access_key
    credentials._expiry_time = datetime.now(UTC) - timedelta(seconds=1)  # type: ignore[attr-defined]
    assert credentials.refresh_needed()
    s3.list_objects_v2(Bucket="expiring")
    assert factory.refreshes == 1
    assert not credentials.refresh_needed()
    assert credentials.get_frozen_credentials().access_key != old_key
