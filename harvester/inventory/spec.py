"""The desired inventory as plain data, and its validation.

The inventory file, the CLI and the web console all build these specs; :mod:`.plan` compares
them with the database and :mod:`.service` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from harvester.inventory import validation as v
from harvester.notify.model import DestinationSpec

DEFAULT_SESSION_NAME = "audit-harvester"


@dataclass(frozen=True)
class RoleSpec:
    name: str
    role_arn: str | None = None
    session_name: str = DEFAULT_SESSION_NAME
    partition: str = "aws"
    authentication: str = "instance-profile"
    via_role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    access_key_id: str | None = None
    # None with access-keys means "keep the stored secret" (an exported file omits it).
    secret_access_key: str | None = field(default=None, repr=False)

    def validate(self, where: str = "role") -> RoleSpec:
        v.entity_name(self.name, f"{where}.name")
        v.partition(self.partition, f"{where}.partition")
        v.authentication(self.authentication, f"{where}.authentication")
        v.session_name(self.session_name, f"{where}.session_name")
        if self.role_arn is not None:
            v.role_arn(self.role_arn, expected_partition=self.partition, field=f"{where}.role_arn")
        if self.via_role_arn is not None:
            v.role_arn(
                self.via_role_arn, expected_partition=self.partition, field=f"{where}.via_role_arn"
            )
            if self.role_arn is None:
                raise v.InvalidValue(
                    f"{where}.via_role_arn",
                    self.via_role_arn,
                    "a primary harvesting role is only assumed on the way to a bucket role: "
                    "set role_arn too",
                )
        if self.external_id is not None:
            v.external_id(self.external_id, f"{where}.external_id")
        if self.authentication == "access-keys":
            if self.access_key_id is None:
                raise v.InvalidValue(
                    f"{where}.access_key_id",
                    None,
                    "authentication access-keys needs an access key id",
                )
            v.access_key_id(self.access_key_id, f"{where}.access_key_id")
            if self.secret_access_key is not None:
                v.secret_access_key(self.secret_access_key, f"{where}.secret_access_key")
        elif self.access_key_id is not None or self.secret_access_key is not None:
            raise v.InvalidValue(
                f"{where}.authentication",
                self.authentication,
                "access keys are given but authentication is not access-keys",
            )
        return self


@dataclass(frozen=True)
class StorageSpec:
    """Where a source's logs are: the bucket (resource name), its region, the prefix, the role."""

    bucket: str
    region: str
    prefix: str
    role: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    region: str
    bucket: str
    role: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class AccountSpec:
    account_id: str
    name: str
    partition: str = "aws"
    organization_id: str | None = None
    enabled: bool = True
    cadence: timedelta | None = None
    cloudtrail: StorageSpec | None = None
    clusters: tuple[ClusterSpec, ...] = ()

    def validate(self, where: str = "account") -> AccountSpec:
        v.account_id(self.account_id, f"{where}.account_id")
        v.entity_name(self.name, f"{where}.name")
        v.partition(self.partition, f"{where}.partition")
        if self.organization_id is not None:
            v.organization_id(self.organization_id, f"{where}.organization_id")
        if self.cadence is not None and self.cadence < timedelta(minutes=1):
            raise v.InvalidValue(
                f"{where}.cadence", str(self.cadence), "the cadence is at least 1m"
            )
        if self.cloudtrail is not None:
            ct = self.cloudtrail
            v.bucket_name(ct.bucket, f"{where}.cloudtrail.bucket")
            v.region(ct.region, in_partition=self.partition, field=f"{where}.cloudtrail.region")
            v.cloudtrail_prefix(
                ct.prefix,
                account_id=self.account_id,
                organization_id=self.organization_id,
                field=f"{where}.cloudtrail.prefix",
            )
        seen: set[str] = set()
        for i, cluster in enumerate(self.clusters):
            cw = f"{where}.clusters[{i}]"
            v.cluster_name(cluster.name, f"{cw}.name")
            if cluster.name in seen:
                raise v.InvalidValue(
                    f"{cw}.name", cluster.name, "cluster names are unique per account"
                )
            seen.add(cluster.name)
            v.region(cluster.region, in_partition=self.partition, field=f"{cw}.region")
            v.bucket_name(cluster.bucket, f"{cw}.bucket")
        return self


def default_cloudtrail_prefix(account_id: str, organization_id: str | None) -> str:
    if organization_id:
        return f"AWSLogs/{organization_id}/{account_id}"
    return f"AWSLogs/{account_id}"


def eks_prefix(account_id: str, cluster: str) -> str:
    """EKS prefixes are derived, never edited: the Firehose pipeline writes exactly here."""
    return f"EKSLogs/{account_id}/{cluster}"


@dataclass(frozen=True)
class InventorySpec:
    roles: tuple[RoleSpec, ...] = ()
    accounts: tuple[AccountSpec, ...] = ()
    destinations: tuple[DestinationSpec, ...] = ()

    def validate(self) -> InventorySpec:
        seen: set[str] = set()
        for i, destination in enumerate(self.destinations):
            if destination.name in seen:
                raise v.InvalidValue(
                    f"destinations[{i}].name", destination.name, "destination names are unique"
                )
            seen.add(destination.name)
        names: set[str] = set()
        by_name: dict[str, RoleSpec] = {}
        for i, role in enumerate(self.roles):
            role.validate(f"roles[{i}]")
            if role.name in names:
                raise v.InvalidValue(f"roles[{i}].name", role.name, "role names are unique")
            names.add(role.name)
            by_name[role.name] = role
        ids: set[str] = set()
        for i, account in enumerate(self.accounts):
            where = f"accounts[{i}]"
            account.validate(where)
            if account.account_id in ids:
                raise v.InvalidValue(
                    f"{where}.account_id", account.account_id, "each account appears once"
                )
            ids.add(account.account_id)
            refs = []
            if account.cloudtrail is not None:
                refs.append((f"{where}.cloudtrail.role", account.cloudtrail.role))
            refs += [
                (f"{where}.clusters[{j}].role", c.role) for j, c in enumerate(account.clusters)
            ]
            for field_name, ref in refs:
                if ref is None:
                    continue
                if ref not in by_name:
                    raise v.InvalidValue(field_name, ref, "no role with this name is defined")
                if by_name[ref].partition != account.partition:
                    raise v.InvalidValue(
                        field_name,
                        ref,
                        f"the role is in partition {by_name[ref].partition!r} but the account is "
                        f"in {account.partition!r}",
                    )
        return self

    def with_secrets_removed(self) -> InventorySpec:
        return replace(
            self,
            roles=tuple(replace(r, secret_access_key=None) for r in self.roles),
            destinations=tuple(d.without_secret() for d in self.destinations),
        )
