"""Validation rules for everything an operator types into the inventory.

Each rule raises :class:`InvalidValue` naming the field, the value and the rule, before
anything is written. Secret values are never echoed back.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import botocore.loaders

from harvester.sources.layouts import cloudtrail_root

PARTITIONS = ("aws", "aws-us-gov", "aws-cn")
AUTHENTICATION_MODES = ("instance-profile", "access-keys")

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")
_ROLE_ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[\x21-\x7e]+/)*)(?P<name>[A-Za-z0-9_+=,.@-]{1,64})"
)
_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:/-]{2,1224}")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
_ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@+=,-]{0,127}")
_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class InvalidValue(ValueError):
    """A field's value breaks a rule; ``str()`` is a complete, user-facing sentence."""

    def __init__(self, field: str, value: object, rule: str, *, secret: bool = False) -> None:
        self.field = field
        self.value = "****" if secret else value
        self.rule = rule
        super().__init__(f"{field}: {self.value!r} is not valid: {rule}")


def account_id(value: str, field: str = "account_id") -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise InvalidValue(
            field, value, "an AWS account id is exactly 12 digits (quote it in YAML)"
        )
    return value


def partition(value: str, field: str = "partition") -> str:
    if value not in PARTITIONS:
        raise InvalidValue(field, value, f"the partition must be one of {', '.join(PARTITIONS)}")
    return value


def organization_id(value: str, field: str = "organization_id") -> str:
    if not isinstance(value, str) or not _ORG_ID.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            "an organization id is 'o-' followed by 10 to 32 lowercase letters or digits",
        )
    return value


def role_arn(value: str, *, expected_partition: str, field: str = "role_arn") -> str:
    match = _ROLE_ARN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidValue(
            field, value, "a role ARN looks like arn:<partition>:iam::<12 digits>:role/<path/>name"
        )
    if match["partition"] not in PARTITIONS:
        raise InvalidValue(field, value, f"unknown partition {match['partition']!r} in the ARN")
    if match["partition"] != expected_partition:
        raise InvalidValue(
            field,
            value,
            f"the ARN's partition {match['partition']!r} differs from the configured partition "
            f"{expected_partition!r}",
        )
    return value


def arn_partition(arn: str) -> str:
    """The partition of an ARN (``aws`` for ``arn:aws:...``); assumes a validated ARN."""
    return arn.split(":", 2)[1]


def arn_account(arn: str) -> str:
    return arn.split(":", 5)[4]


def bucket_name(value: str, field: str = "bucket") -> str:
    rule = (
        "S3 bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, "
        "begin and end with a letter or digit"
    )
    if not isinstance(value, str) or not _BUCKET_CHARS.fullmatch(value):
        raise InvalidValue(field, value, rule)
    if ".." in value:
        raise InvalidValue(field, value, "S3 bucket names may not contain two adjacent dots")
    if ".-" in value or "-." in value:
        raise InvalidValue(field, value, "S3 bucket names may not have a dot next to a hyphen")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise InvalidValue(field, value, "S3 bucket names may not be formatted as an IP address")
    if value.startswith(_BUCKET_BAD_PREFIXES) or value.endswith(_BUCKET_BAD_SUFFIXES):
        raise InvalidValue(field, value, "S3 reserves this bucket name prefix or suffix")
    return value


@lru_cache(maxsize=1)
def _regions_by_partition() -> dict[str, frozenset[str]]:
    # botocore's own endpoint data: the regions each partition has, without a network call.
    data = botocore.loaders.create_loader().load_data("endpoints")
    return {p["partition"]: frozenset(p["regions"]) for p in data["partitions"]}


def known_regions(partition_name: str) -> frozenset[str]:
    return _regions_by_partition().get(partition_name, frozenset())


def region(value: str, *, in_partition: str, field: str = "region") -> str:
    regions = known_regions(in_partition)
    if not isinstance(value, str) or value not in regions:
        sample = ", ".join(sorted(regions)[:6])
        raise InvalidValue(
            field, value, f"not a region of partition {in_partition!r} (known: {sample}, ...)"
        )
    return value


def cluster_name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not _CLUSTER_NAME.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            "an EKS cluster name is 1-100 characters of letters, digits, hyphens and "
            "underscores, starting with a letter or digit",
        )
    return value


def external_id(value: str, field: str = "external_id") -> str:
    if not isinstance(value, str) or not _EXTERNAL_ID.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            "an external ID is 2-1224 characters of letters, digits and +=,.@:/-_",
            secret=True,
        )
    return value


def session_name(value: str, field: str = "session_name") -> str:
    if not isinstance(value, str) or not _SESSION_NAME.fullmatch(value):
        raise InvalidValue(
            field, value, "a role session name is 2-64 characters of letters, digits and +=,.@-_"
        )
    return value


def prefix(value: str, field: str = "prefix") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValue(field, value, "the prefix must not be empty")
    if value.startswith("/"):
        raise InvalidValue(field, value, "an S3 prefix has no leading slash")
    if "//" in value:
        raise InvalidValue(field, value, "an S3 prefix has no empty path segments ('//')")
    if any(part in (".", "..") for part in value.split("/")):
        # S3 does not resolve them, but every tool that maps keys to paths does.
        raise InvalidValue(field, value, "an S3 prefix has no '.' or '..' segments")
    return value


def cloudtrail_prefix(
    value: str, *, account_id: str, organization_id: str | None, field: str = "prefix"
) -> str:
    """A trail prefix that leads to this account's own logs (checked as the harvest reads it)."""
    prefix(value, field)
    try:
        cloudtrail_root(value, account_id=account_id, org_id=organization_id)
    except ValueError as exc:
        raise InvalidValue(field, value, str(exc)) from None
    return value


def authentication(value: str, field: str = "authentication") -> str:
    if value not in AUTHENTICATION_MODES:
        raise InvalidValue(
            field, value, f"authentication must be one of {', '.join(AUTHENTICATION_MODES)}"
        )
    return value


def access_key_id(value: str, field: str = "access_key_id") -> str:
    if not isinstance(value, str) or not _ACCESS_KEY_ID.fullmatch(value):
        raise InvalidValue(
            field, value, "an access key id is 16-128 uppercase letters and digits (AKIA...)"
        )
    return value


def secret_access_key(value: str, field: str = "secret_access_key") -> str:
    if not isinstance(value, str) or not 16 <= len(value) <= 128 or any(c.isspace() for c in value):
        raise InvalidValue(
            field, value, "a secret access key is 16-128 characters without spaces", secret=True
        )
    return value


def entity_name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not _ENTITY_NAME.fullmatch(value):
        raise InvalidValue(
            field,
            value,
            "a name is 1-128 characters of letters, digits, spaces and _.@+=,-, "
            "starting with a letter or digit",
        )
    return value
