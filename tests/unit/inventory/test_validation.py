"""Each rule: the bad value is refused with a message naming the field, the value and the rule."""

from functools import partial

import pytest

from harvester.inventory import validation as v


@pytest.mark.parametrize(
    ("call", "value", "fragment"),
    [
        (v.account_id, "12345", "exactly 12 digits"),
        (v.account_id, "1234567890123", "exactly 12 digits"),
        (v.account_id, "12345678901a", "exactly 12 digits"),
        (partial(v.role_arn, expected_partition="aws"), "arn:aws:iam::111:role/x", "role ARN"),
        (
            partial(v.role_arn, expected_partition="aws"),
            "arn:aws:iam::111111111111:user/x",
            "role ARN",
        ),
        (
            partial(v.role_arn, expected_partition="aws-us-gov"),
            "arn:aws:iam::111111111111:role/reader",
            "differs from the configured partition",
        ),
        (
            partial(v.role_arn, expected_partition="aws"),
            "arn:aws-xx:iam::111111111111:role/r",
            "unknown partition",
        ),
        (v.bucket_name, "ab", "3-63 characters"),
        (v.bucket_name, "Upper-Case", "3-63 characters"),
        (v.bucket_name, "under_score", "3-63 characters"),
        (v.bucket_name, "two..dots", "adjacent dots"),
        (v.bucket_name, "192.168.5.4", "IP address"),
        (v.bucket_name, "xn--bucket", "reserves"),
        (v.bucket_name, "bucket-s3alias", "reserves"),
        (
            partial(v.region, in_partition="aws"),
            "us-gov-west-1",
            "not a region of partition 'aws'",
        ),
        (
            partial(v.region, in_partition="aws-cn"),
            "us-east-1",
            "not a region of partition 'aws-cn'",
        ),
        (partial(v.region, in_partition="aws"), "mars-north-1", "not a region"),
        (v.organization_id, "o-short", "organization id"),
        (v.organization_id, "abcdef1234", "organization id"),
        (v.organization_id, "o-ABCDEF12345", "organization id"),
        (v.cluster_name, "-leading-hyphen", "EKS cluster name"),
        (v.cluster_name, "a" * 101, "EKS cluster name"),
        (v.cluster_name, "has space", "EKS cluster name"),
        (v.external_id, "x", "external ID"),
        (v.external_id, "has space", "external ID"),
        (v.external_id, "e" * 1225, "external ID"),
        (v.prefix, "/AWSLogs/111111111111", "no leading slash"),
        (v.prefix, "AWSLogs//111111111111", "empty path segments"),
        (v.partition, "aws-mars", "partition must be one of"),
        (v.authentication, "password", "authentication must be one of"),
        (v.session_name, "x", "session name"),
        (v.access_key_id, "akia-lower", "access key id"),
    ],
)
def test_rule_rejects(call, value: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(v.InvalidValue) as info:
        call(value)
    message = str(info.value)
    assert fragment in message
    if info.value.field != "external_id":
        assert repr(value) in message


@pytest.mark.parametrize(
    ("call", "value"),
    [
        (v.account_id, "012345678901"),
        (
            partial(v.role_arn, expected_partition="aws"),
            "arn:aws:iam::111111111111:role/path/to/reader",
        ),
        (
            partial(v.role_arn, expected_partition="aws-us-gov"),
            "arn:aws-us-gov:iam::111111111111:role/r",
        ),
        (v.bucket_name, "org-trail.bucket-1"),
        (partial(v.region, in_partition="aws-us-gov"), "us-gov-west-1"),
        (partial(v.region, in_partition="aws-cn"), "cn-north-1"),
        (v.organization_id, "o-abcdef1234"),
        (v.cluster_name, "payments_prod-1"),
        (v.external_id, "ext:id/with=chars@ok"),
        (v.prefix, "security/AWSLogs/o-abcdef1234/111111111111"),
    ],
)
def test_rule_accepts(call, value: str) -> None:  # type: ignore[no-untyped-def]
    assert call(value) == value


def test_secret_values_are_not_echoed() -> None:
    with pytest.raises(v.InvalidValue) as info:
        v.secret_access_key("short secret")
    assert "short secret" not in str(info.value)
    with pytest.raises(v.InvalidValue) as info:
        v.external_id("bad external id")
    assert "bad external id" not in str(info.value)


def test_validation_patterns_are_ascii_only() -> None:
    arabic = "".join(chr(0x0660 + int(c)) for c in "123456789012")
    with pytest.raises(v.InvalidValue, match="exactly 12 digits"):
        v.account_id(arabic)
    with pytest.raises(v.InvalidValue):
        v.role_arn(f"arn:aws:iam::{arabic}:role/r", expected_partition="aws")
    with pytest.raises(v.InvalidValue):
        v.external_id("caf\u00e9-tenant")
