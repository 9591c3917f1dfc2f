"""Plain-data descriptions of who we are on AWS: the role chain and the source to read.

The session factory and the doctor take these, never ORM rows: a :class:`RoleChain` is
built once from a ``RoleConfig`` row and its decrypted secret, and holds the secret only in
memory, out of its repr and its cache key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harvester.crypto import SecretBox
    from harvester.db.models import RoleConfig, Source

Authentication = Literal["instance-profile", "access-keys"]

# A chained AssumeRole (a role session assuming another role) is capped at one hour by STS.
CHAINED_MAX_DURATION = 3600
DEFAULT_DURATION = 3600
DEFAULT_SESSION_NAME = "audit-harvester"

PARTITION_DEFAULT_REGIONS = {
    "aws": "us-east-1",
    "aws-us-gov": "us-gov-west-1",
    "aws-cn": "cn-north-1",
    "aws-iso": "us-iso-east-1",
    "aws-iso-b": "us-isob-east-1",
}


class IdentityConfigError(ValueError):
    """A role configuration cannot be turned into credentials; the message says why."""


def arn_partition(arn: str) -> str:
    parts = arn.split(":", 2)
    return parts[1] if len(parts) > 2 and parts[0] == "arn" else "aws"


def arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) > 4 and parts[4] else None


@dataclass(frozen=True)
class AccessKey:
    """A stored access key, decrypted. Its secret never appears in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    def fingerprint(self) -> str:
        # Part of the cache key: a corrected secret for the same key id must not reuse a
        # session signed with the old one. A digest of a 40-character random secret reveals
        # nothing about it.
        return hashlib.sha256(self.secret_access_key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Hop:
    """One AssumeRole in the chain."""

    role_arn: str
    label: str  # "primary harvesting role" | "bucket role", for messages
    external_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RoleChain:
    """How to get credentials that read a bucket.

    Base credentials by ``authentication`` (the default chain, or a stored access key), then
    the primary harvesting role (``via_role_arn``) when set, then the bucket role
    (``role_arn``) when set, with ``external_id`` (the role's own, else the installation
    default) on the bucket role's AssumeRole.
    """

    partition: str = "aws"
    authentication: Authentication = "instance-profile"
    access_key: AccessKey | None = None
    via_role_arn: str | None = None
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    session_name: str = DEFAULT_SESSION_NAME
    duration_seconds: int = DEFAULT_DURATION

    def __post_init__(self) -> None:
        if self.authentication not in ("instance-profile", "access-keys"):
            raise IdentityConfigError(
                f"unknown authentication mode {self.authentication!r}: "
                "use 'instance-profile' or 'access-keys'"
            )
        if self.authentication == "access-keys" and self.access_key is None:
            raise IdentityConfigError(
                "authentication is 'access-keys' but no access key is stored for this role "
                "configuration"
            )
        if not 900 <= self.duration_seconds <= 43200:
            raise IdentityConfigError(
                f"duration_seconds must be between 900 and 43200, got {self.duration_seconds}"
            )

    @property
    def hops(self) -> tuple[Hop, ...]:
        hops: list[Hop] = []
        if self.via_role_arn:
            hops.append(Hop(self.via_role_arn, "primary harvesting role"))
        if self.role_arn:
            hops.append(Hop(self.role_arn, "bucket role", self.external_id))
        return tuple(hops)

    @property
    def final_role_arn(self) -> str | None:
        return self.role_arn or self.via_role_arn

    @property
    def effective_partition(self) -> str:
        """The partition the credentials live in: the role ARNs' if any, else the configured one."""
        arn = self.final_role_arn
        return arn_partition(arn) if arn else self.partition

    @property
    def default_region(self) -> str:
        return PARTITION_DEFAULT_REGIONS.get(self.effective_partition, "us-east-1")

    def hop_duration(self, index: int) -> int:
        # Only the first AssumeRole from long-term or instance credentials may exceed an hour.
        if index == 0:
            return self.duration_seconds
        return min(self.duration_seconds, CHAINED_MAX_DURATION)

    def truncated(self, hops: int) -> RoleChain:
        """The same base credentials with only the first ``hops`` roles (for the doctor)."""
        kept = self.hops[:hops]
        arns = {h.label: h.role_arn for h in kept}
        return replace(
            self,
            via_role_arn=arns.get("primary harvesting role"),
            role_arn=arns.get("bucket role"),
        )

    def identity_key(self) -> tuple[str, ...]:
        """Everything that makes two chains different identities; safe to keep and compare."""
        key = self.access_key
        return (
            self.effective_partition,
            self.role_arn or "",
            self.via_role_arn or "",
            # Hashed: an external ID is a shared secret between us and the bucket owner.
            hashlib.sha256(self.external_id.encode()).hexdigest()[:16] if self.external_id else "",
            self.authentication,
            key.access_key_id if key else "",
            key.fingerprint() if key else "",
            self.session_name,
            str(self.duration_seconds),
        )

    def describe(self) -> str:
        """A one-line description for messages: no secret, no external ID."""
        base: str = self.authentication
        if self.access_key:
            base += f" ({mask_key_id(self.access_key.access_key_id)})"
        parts = [base, *(hop.role_arn for hop in self.hops)]
        return " → ".join(parts)


def mask_key_id(access_key_id: str) -> str:
    return "****" + access_key_id[-4:] if len(access_key_id) > 8 else "****"


@dataclass(frozen=True)
class SourceInfo:
    """What the doctor (and a harvest) needs to know about a source, as plain data."""

    kind: Literal["cloudtrail", "eks"]
    account_id: str
    bucket: str
    region: str
    prefix: str
    chain: RoleChain
    partition: str = "aws"
    organization_id: str | None = None
    cluster_name: str | None = None
    # The bucket owner's account when known; the doctor otherwise takes the bucket role's
    # account (the setup guide puts it there), else the source's account.
    bucket_account: str | None = None


def role_chain_from_config(
    role: RoleConfig | None,
    *,
    secret_box: SecretBox | None,
    default_external_id: str | None = None,
    partition: str = "aws",
    duration_seconds: int = DEFAULT_DURATION,
) -> RoleChain:
    """Build the chain for a ``RoleConfig`` row (or the defaults when the source has none).

    The stored secret is decrypted here, in memory; ``secret_box`` may be None only when no
    access key is involved.
    """
    if role is None:
        return RoleChain(partition=partition, duration_seconds=duration_seconds)
    if role.authentication not in ("access-keys", "instance-profile"):
        raise IdentityConfigError(
            f"role configuration {role.name!r} has unknown authentication {role.authentication!r}"
        )
    access_key: AccessKey | None = None
    if role.authentication == "access-keys":
        stored = role.access_key
        if stored is None:
            raise IdentityConfigError(
                f"role configuration {role.name!r} uses access keys but none is stored"
            )
        if secret_box is None:
            raise IdentityConfigError(
                f"role configuration {role.name!r} needs the at-rest secret key to decrypt its "
                "access key"
            )
        access_key = AccessKey(stored.access_key_id, secret_box.decrypt(stored.secret_encrypted))
    authentication: Authentication = (
        "access-keys" if role.authentication == "access-keys" else "instance-profile"
    )
    return RoleChain(
        partition=role.partition or partition,
        authentication=authentication,
        access_key=access_key,
        via_role_arn=role.via_role_arn or None,
        role_arn=role.role_arn or None,
        external_id=role.external_id or default_external_id,
        session_name=role.session_name or DEFAULT_SESSION_NAME,
        duration_seconds=duration_seconds,
    )


def source_info_from_row(
    source: Source,
    *,
    secret_box: SecretBox | None,
    default_external_id: str | None = None,
) -> SourceInfo:
    """Plain data for a ``Source`` row and its account and role configuration."""
    account = source.account
    kind: Literal["cloudtrail", "eks"] = "eks" if source.kind == "eks" else "cloudtrail"
    return SourceInfo(
        kind=kind,
        account_id=account.account_id,
        partition=account.partition,
        organization_id=account.organization_id,
        cluster_name=source.cluster_name or None,
        bucket=source.bucket,
        region=source.region,
        prefix=source.prefix,
        chain=role_chain_from_config(
            source.role,
            secret_box=secret_box,
            default_external_id=default_external_id,
            partition=account.partition,
        ),
    )
