"""The session factory and role chains without the network: config, caching, partitions."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from harvester import __version__
from harvester.aws.identity import (
    AccessKey,
    IdentityConfigError,
    RoleChain,
    SourceInfo,
    role_chain_from_config,
    source_info_from_row,
)
from harvester.aws.session import ClientSettings, SessionFactory, refresh_windows, resolve_region
from harvester.crypto import SecretBox
from harvester.db.models import AccessKeyConfig, Account, RoleConfig, Source

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
VIA = "arn:aws:iam::111111111111:role/harvester"
BUCKET_ROLE = "arn:aws:iam::222222222222:role/log-reader"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile, no endpoint override, no metadata service: nothing here may touch a network."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def keys(key_id: str = "AKIAEXAMPLEKEY000001", secret: str = SECRET) -> RoleChain:
    return RoleChain(authentication="access-keys", access_key=AccessKey(key_id, secret))


# --- config ------------------------------------------------------------------------------------


def test_client_config_carries_retries_pool_agent_and_timeouts() -> None:
    config = ClientSettings(
        fetch_concurrency=32, max_attempts=7, connect_timeout=3, read_timeout=40
    ).to_config()
    assert config.retries == {"mode": "standard", "max_attempts": 7}
    assert config.max_pool_connections is not None
    assert config.max_pool_connections >= 32
    assert config.user_agent_extra == f"audit-harvester/{__version__}"
    assert config.connect_timeout == 3
    assert config.read_timeout == 40


def test_every_client_gets_the_factory_config() -> None:
    factory = SessionFactory(settings=ClientSettings(fetch_concurrency=50, max_attempts=3))
    s3 = factory.s3(keys(), "eu-west-1")
    assert s3.meta.config.max_pool_connections == 54
    assert s3.meta.config.user_agent_extra == f"audit-harvester/{__version__}"
    assert s3.meta.config.retries is not None
    assert s3.meta.config.retries["mode"] == "standard"


def test_refresh_windows_fit_short_sessions() -> None:
    assert refresh_windows(3600) == (900, 600)
    advisory, mandatory = refresh_windows(900)
    assert 0 < mandatory < advisory < 900


# --- role chains -------------------------------------------------------------------------------


def test_chain_hops_in_order_with_external_id_on_the_bucket_role_only() -> None:
    chain = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="ext-123")
    assert [(h.role_arn, h.label, h.external_id) for h in chain.hops] == [
        (VIA, "primary harvesting role", None),
        (BUCKET_ROLE, "bucket role", "ext-123"),
    ]
    assert chain.final_role_arn == BUCKET_ROLE
    assert chain.truncated(1).hops == chain.hops[:1]
    assert chain.truncated(0).hops == ()
    assert RoleChain(role_arn=BUCKET_ROLE).hops[0].label == "bucket role"


def test_chained_hops_are_capped_at_one_hour() -> None:
    chain = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, duration_seconds=43200)
    assert chain.hop_duration(0) == 43200
    assert chain.hop_duration(1) == 3600


def test_chain_repr_hides_secrets() -> None:
    chain = RoleChain(
        authentication="access-keys",
        access_key=AccessKey("AKIAEXAMPLEKEY000001", SECRET),
        role_arn=BUCKET_ROLE,
        external_id="shared-external-secret",
    )
    for text in (repr(chain), str(chain), chain.describe(), str(chain.identity_key())):
        assert SECRET not in text
        assert "shared-external-secret" not in text
    assert "AKIAEXAMPLEKEY000001" not in chain.describe()
    assert chain.describe().startswith("access-keys (****0001)")


def test_identity_key_distinguishes_every_part_of_the_identity() -> None:
    base = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="e1")
    variants = [
        RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="e2"),
        RoleChain(via_role_arn=None, role_arn=BUCKET_ROLE, external_id="e1"),
        RoleChain(via_role_arn=VIA, role_arn="arn:aws:iam::333333333333:role/r", external_id="e1"),
        RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="e1", session_name="other"),
        RoleChain(
            via_role_arn=VIA,
            role_arn=BUCKET_ROLE,
            external_id="e1",
            authentication="access-keys",
            access_key=AccessKey("AKIAEXAMPLEKEY000001", SECRET),
        ),
    ]
    keys_seen = {base.identity_key(), *(v.identity_key() for v in variants)}
    assert len(keys_seen) == len(variants) + 1
    same = RoleChain(via_role_arn=VIA, role_arn=BUCKET_ROLE, external_id="e1")
    assert same.identity_key() == base.identity_key()
    assert keys().identity_key() != keys(secret=SECRET[::-1]).identity_key()
    assert keys().identity_key() != keys(key_id="AKIAEXAMPLEKEY000002").identity_key()


def test_invalid_chains_are_refused() -> None:
    with pytest.raises(IdentityConfigError, match="no access key"):
        RoleChain(authentication="access-keys")
    with pytest.raises(IdentityConfigError, match="900 and 43200"):
        RoleChain(duration_seconds=60)


def test_chain_from_a_role_config_row_decrypts_the_key_and_defaults_the_external_id() -> None:
    box = SecretBox.from_keys("test-at-rest-key")
    stored = AccessKeyConfig(
        access_key_id="AKIAEXAMPLEKEY000001", secret_encrypted=box.encrypt(SECRET), created_at=NOW
    )
    role = RoleConfig(
        name="org-reader",
        role_arn=BUCKET_ROLE,
        via_role_arn=VIA,
        session_name="harvest",
        partition="aws",
        authentication="access-keys",
        external_id=None,
        created_at=NOW,
        updated_at=NOW,
    )
    role.access_key = stored
    chain = role_chain_from_config(role, secret_box=box, default_external_id="install-wide")
    assert chain.access_key == AccessKey("AKIAEXAMPLEKEY000001", SECRET)
    assert chain.external_id == "install-wide"
    assert chain.session_name == "harvest"
    assert (chain.via_role_arn, chain.role_arn) == (VIA, BUCKET_ROLE)
    role.external_id = "own-id"
    assert role_chain_from_config(role, secret_box=box, default_external_id="x").external_id == (
        "own-id"
    )
    role.access_key = None
    with pytest.raises(IdentityConfigError, match="none is stored"):
        role_chain_from_config(role, secret_box=box)


def test_source_info_from_rows() -> None:
    account = Account(
        account_id="444455556666",
        name="prod",
        partition="aws-us-gov",
        organization_id="o-abcdefghij",
        created_at=NOW,
        updated_at=NOW,
    )
    source = Source(
        kind="eks",
        cluster_name="prod-1",
        bucket="eks-logs",
        region="us-gov-west-1",
        prefix="EKSLogs/",
        created_at=NOW,
        updated_at=NOW,
    )
    source.account = account
    info = source_info_from_row(source, secret_box=None, default_external_id="ext")
    assert info == SourceInfo(
        kind="eks",
        account_id="444455556666",
        partition="aws-us-gov",
        organization_id="o-abcdefghij",
        cluster_name="prod-1",
        bucket="eks-logs",
        region="us-gov-west-1",
        prefix="EKSLogs/",
        chain=RoleChain(partition="aws-us-gov"),
    )


# --- partitions and endpoints ------------------------------------------------------------------


def test_partition_default_regions() -> None:
    assert resolve_region(RoleChain(role_arn="arn:aws-us-gov:iam::111111111111:role/r"), None) == (
        "us-gov-west-1"
    )
    assert resolve_region(RoleChain(role_arn="arn:aws-cn:iam::111111111111:role/r"), None) == (
        "cn-north-1"
    )
    assert resolve_region(RoleChain(partition="aws-us-gov"), None) == "us-gov-west-1"
    assert resolve_region(RoleChain(), None) == "us-east-1"
    assert resolve_region(RoleChain(), "eu-central-1") == "eu-central-1"


def test_govcloud_and_china_clients_use_their_partition_endpoints() -> None:
    factory = SessionFactory()
    gov = RoleChain(
        partition="aws-us-gov",
        authentication="access-keys",
        access_key=AccessKey("AKIAEXAMPLEKEY000001", SECRET),
    )
    sts = factory.sts(gov)
    assert sts.meta.region_name == "us-gov-west-1"
    assert sts.meta.partition == "aws-us-gov"
    assert sts.meta.endpoint_url == "https://sts.us-gov-west-1.amazonaws.com"
    s3 = factory.s3(gov, "us-gov-east-1")
    assert s3.meta.endpoint_url == "https://s3.us-gov-east-1.amazonaws.com"
    china = RoleChain(
        partition="aws-cn",
        authentication="access-keys",
        access_key=AccessKey("AKIAEXAMPLEKEY000001", SECRET),
    )
    assert factory.sts(china).meta.endpoint_url == "https://sts.cn-north-1.amazonaws.com.cn"


def test_sts_is_regional() -> None:
    sts = SessionFactory().sts(keys(), "eu-west-1")
    assert sts.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


def test_endpoint_environment_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9001")
    factory = SessionFactory()
    assert factory.s3(keys()).meta.endpoint_url == "http://127.0.0.1:9000"
    assert factory.sts(keys()).meta.endpoint_url == "http://127.0.0.1:9001"
    assert factory.iam(keys()).meta.endpoint_url == "https://iam.amazonaws.com"
    explicit = SessionFactory(endpoint_url="http://127.0.0.1:9999")
    assert explicit.s3(keys()).meta.endpoint_url == "http://127.0.0.1:9999"


# --- caching -----------------------------------------------------------------------------------


def test_sessions_and_clients_are_cached_by_the_whole_identity() -> None:
    factory = SessionFactory()
    first = keys()
    assert factory.session(first, "us-east-1") is factory.session(keys(), "us-east-1")
    assert factory.s3(first, "us-east-1") is factory.s3(keys(), "us-east-1")
    other_key = keys(key_id="AKIAEXAMPLEKEY000002")
    assert factory.s3(other_key, "us-east-1") is not factory.s3(first, "us-east-1")
    assert factory.s3(first, "eu-west-1") is not factory.s3(first, "us-east-1")
    assert factory.sts(first, "us-east-1") is not factory.s3(first, "us-east-1")
    # The same region and service for another identity never shares credentials.
    other_creds = factory.s3(other_key, "us-east-1")._request_signer._credentials
    first_creds = factory.s3(first, "us-east-1")._request_signer._credentials
    assert other_creds.access_key == "AKIAEXAMPLEKEY000002"
    assert first_creds.access_key == "AKIAEXAMPLEKEY000001"


def test_cache_is_dropped_when_the_process_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = SessionFactory()
    before = factory.s3(keys(), "us-east-1")
    assert factory.s3(keys(), "us-east-1") is before
    real_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)
    after = factory.s3(keys(), "us-east-1")
    assert after is not before
    assert factory.s3(keys(), "us-east-1") is after


def test_clear_drops_the_cache() -> None:
    factory = SessionFactory()
    before = factory.s3(keys())
    factory.clear()
    assert factory.s3(keys()) is not before


def test_access_keys_are_used_instead_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-env-secret-env-secret-000000")
    factory = SessionFactory()
    stored = factory.session(keys()).get_credentials()
    assert stored is not None
    assert stored.get_frozen_credentials().access_key == "AKIAEXAMPLEKEY000001"
    default = factory.session(RoleChain()).get_credentials()
    assert default is not None
    assert default.method == "env"
    assert default.get_frozen_credentials().access_key == "AKIAENVIRONMENT00001"
