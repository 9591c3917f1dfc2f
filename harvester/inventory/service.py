"""Inventory services: read and write accounts, roles and sources.

Keyword-only functions over a session passed in; the CLI, ``inventory apply`` and the web
console all write through here, so the rules are enforced in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.db.models import AccessKeyConfig, Account, RoleConfig, Source
from harvester.inventory import validation as v
from harvester.inventory.spec import (
    AccountSpec,
    ClusterSpec,
    InventorySpec,
    RoleSpec,
    StorageSpec,
    eks_prefix,
)

CLOUDTRAIL = "cloudtrail"
EKS = "eks"


class NotFound(LookupError):
    """An inventory item named by the operator does not exist."""


class InUse(ValueError):
    """An item cannot be removed because something still refers to it."""


# --- reading ---------------------------------------------------------------------------------


def get_account(session: Session, *, account_id: str) -> Account:
    account = session.scalar(select(Account).where(Account.account_id == account_id))
    if account is None:
        raise NotFound(f"no account {account_id} in the inventory (see: harvester accounts list)")
    return account


def get_role(session: Session, *, name: str) -> RoleConfig:
    role = session.scalar(select(RoleConfig).where(RoleConfig.name == name))
    if role is None:
        raise NotFound(f"no role config named {name!r} (see: harvester roles list)")
    return role


def account_exists(session: Session, *, account_id: str) -> bool:
    return session.scalar(select(Account.id).where(Account.account_id == account_id)) is not None


def role_exists(session: Session, *, name: str) -> bool:
    return session.scalar(select(RoleConfig.id).where(RoleConfig.name == name)) is not None


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.account_id)))


def list_roles(session: Session) -> list[RoleConfig]:
    query = (
        select(RoleConfig).options(selectinload(RoleConfig.access_key)).order_by(RoleConfig.name)
    )
    return list(session.scalars(query))


def list_sources(session: Session, *, kind: str | None = None) -> list[Source]:
    query = (
        select(Source)
        .join(Source.account)
        .options(selectinload(Source.account), selectinload(Source.role))
        .order_by(Account.account_id, Source.kind, Source.cluster_name)
    )
    if kind is not None:
        query = query.where(Source.kind == kind)
    return list(session.scalars(query))


def source_label(source: Source) -> str:
    """How operators name a source: ``111111111111`` or ``111111111111/cluster``."""
    if source.kind == EKS:
        return f"{source.account.account_id}/{source.cluster_name}"
    return source.account.account_id


def find_source(session: Session, ref: str) -> Source:
    """Find a source by id (``7``), account (``111111111111``) or ``account/cluster``."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit() and len(ref) != 12:
        source = session.get(Source, int(ref))
        if source is None:
            raise NotFound(f"no source with id {ref} (see: harvester sources list)")
        return source
    account_id, _, cluster = ref.partition("/")
    kind = EKS if cluster else CLOUDTRAIL
    source = session.scalar(
        select(Source)
        .join(Source.account)
        .where(
            Account.account_id == account_id, Source.kind == kind, Source.cluster_name == cluster
        )
    )
    if source is None:
        what = f"cluster {cluster} of account {account_id}" if cluster else f"account {account_id}"
        raise NotFound(f"no source for {what} (see: harvester sources list)")
    return source


def role_spec(role: RoleConfig) -> RoleSpec:
    return RoleSpec(
        name=role.name,
        role_arn=role.role_arn,
        session_name=role.session_name,
        partition=role.partition,
        authentication=role.authentication,
        via_role_arn=role.via_role_arn,
        external_id=role.external_id,
        access_key_id=role.access_key.access_key_id if role.access_key else None,
    )


def account_spec(account: Account, sources: list[Source]) -> AccountSpec:
    cloudtrail = None
    clusters = []
    for source in sources:
        role = source.role.name if source.role else None
        if source.kind == CLOUDTRAIL:
            cloudtrail = StorageSpec(source.bucket, source.region, source.prefix, role)
        else:
            clusters.append(
                ClusterSpec(source.cluster_name, source.region, source.bucket, role, source.enabled)
            )
    return AccountSpec(
        account_id=account.account_id,
        name=account.name,
        partition=account.partition,
        organization_id=account.organization_id,
        enabled=account.enabled,
        cadence=timedelta(seconds=account.cadence_seconds) if account.cadence_seconds else None,
        cloudtrail=cloudtrail,
        clusters=tuple(sorted(clusters, key=lambda c: c.name)),
    )


def external_ids(session: Session) -> dict[str, str]:
    """Each role's stored external ID, by role name (to resolve an export's masked ones)."""
    return {r.name: r.external_id for r in list_roles(session) if r.external_id}


def export_inventory(session: Session) -> InventorySpec:
    """The inventory as it is stored, secrets omitted."""
    # Not at the top: harvester.notify.store imports this module (NotFound).
    from harvester.notify.store import destination_spec, list_destinations  # noqa: PLC0415

    by_account: dict[int, list[Source]] = {}
    for source in list_sources(session):
        by_account.setdefault(source.account_pk, []).append(source)
    return InventorySpec(
        roles=tuple(role_spec(r) for r in list_roles(session)),
        accounts=tuple(account_spec(a, by_account.get(a.id, [])) for a in list_accounts(session)),
        destinations=tuple(destination_spec(d) for d in list_destinations(session)),
    )


# --- writing ---------------------------------------------------------------------------------


def upsert_role(session: Session, spec: RoleSpec, *, box: SecretBox, clock: Clock) -> RoleConfig:
    spec.validate()
    now = clock()
    role = session.scalar(select(RoleConfig).where(RoleConfig.name == spec.name))
    if role is None:
        role = RoleConfig(name=spec.name, created_at=now)
        session.add(role)
    role.role_arn = spec.role_arn
    role.session_name = spec.session_name
    role.partition = spec.partition
    role.authentication = spec.authentication
    role.via_role_arn = spec.via_role_arn
    role.external_id = spec.external_id
    role.updated_at = now
    if spec.authentication == "access-keys":
        assert spec.access_key_id is not None  # validated above
        key = role.access_key
        if key is None:
            if spec.secret_access_key is None:
                raise v.InvalidValue(
                    "secret_access_key",
                    None,
                    f"role {spec.name!r} has no stored secret yet: give one",
                )
            key = AccessKeyConfig(access_key_id=spec.access_key_id, created_at=now)
            role.access_key = key
        elif spec.secret_access_key is None and key.access_key_id != spec.access_key_id:
            raise v.InvalidValue(
                "secret_access_key", None, "a new access key id needs its secret access key"
            )
        key.access_key_id = spec.access_key_id
        if spec.secret_access_key is not None:
            key.secret_encrypted = box.encrypt(spec.secret_access_key)
    elif role.access_key is not None:
        session.delete(role.access_key)
        role.access_key = None
    session.flush()
    return role


def secret_matches(role: RoleConfig, secret: str, *, box: SecretBox) -> bool:
    return role.access_key is not None and box.decrypt(role.access_key.secret_encrypted) == secret


def upsert_account(session: Session, spec: AccountSpec, *, clock: Clock) -> Account:
    """Create or update an account's own fields (its sources are written separately)."""
    spec.validate()
    now = clock()
    account = session.scalar(select(Account).where(Account.account_id == spec.account_id))
    if account is None:
        account = Account(account_id=spec.account_id, created_at=now)
        session.add(account)
    account.name = spec.name
    account.partition = spec.partition
    account.organization_id = spec.organization_id
    account.enabled = spec.enabled
    account.cadence_seconds = int(spec.cadence.total_seconds()) if spec.cadence else None
    account.updated_at = now
    session.flush()
    return account


def _role_for(
    session: Session, name: str | None, *, partition: str, field: str
) -> RoleConfig | None:
    if name is None:
        return None
    role = session.scalar(select(RoleConfig).where(RoleConfig.name == name))
    if role is None:
        raise v.InvalidValue(
            field, name, "no role config with this name (see: harvester roles list)"
        )
    if role.partition != partition:
        raise v.InvalidValue(
            field,
            name,
            f"the role is in partition {role.partition!r}, the account in {partition!r}",
        )
    return role


def _source(session: Session, account: Account, kind: str, cluster: str) -> Source | None:
    return session.scalar(
        select(Source).where(
            Source.account_pk == account.id, Source.kind == kind, Source.cluster_name == cluster
        )
    )


def set_cloudtrail_storage(
    session: Session, *, account: Account, storage: StorageSpec, clock: Clock
) -> Source:
    v.bucket_name(storage.bucket, "bucket")
    v.region(storage.region, in_partition=account.partition)
    v.cloudtrail_prefix(
        storage.prefix, account_id=account.account_id, organization_id=account.organization_id
    )
    role = _role_for(session, storage.role, partition=account.partition, field="role")
    now = clock()
    source = _source(session, account, CLOUDTRAIL, "")
    if source is None:
        source = Source(kind=CLOUDTRAIL, account=account, cluster_name="", created_at=now)
        session.add(source)
    source.bucket, source.region, source.prefix = storage.bucket, storage.region, storage.prefix
    source.role = role
    source.enabled = account.enabled
    source.updated_at = now
    session.flush()
    return source


def set_cluster(
    session: Session, *, account: Account, cluster: ClusterSpec, clock: Clock
) -> Source:
    v.cluster_name(cluster.name)
    v.region(cluster.region, in_partition=account.partition)
    v.bucket_name(cluster.bucket)
    role = _role_for(session, cluster.role, partition=account.partition, field="role")
    now = clock()
    source = _source(session, account, EKS, cluster.name)
    if source is None:
        source = Source(kind=EKS, account=account, cluster_name=cluster.name, created_at=now)
        session.add(source)
    source.bucket, source.region = cluster.bucket, cluster.region
    source.prefix = eks_prefix(account.account_id, cluster.name)
    source.role = role
    source.enabled = cluster.enabled and account.enabled
    source.updated_at = now
    session.flush()
    return source


def set_account_enabled(session: Session, *, account: Account, enabled: bool, clock: Clock) -> None:
    account.enabled = enabled
    account.updated_at = clock()
    for source in session.scalars(select(Source).where(Source.account_pk == account.id)):
        source.enabled = enabled
        source.updated_at = account.updated_at
    session.flush()


def remove_source(session: Session, source: Source) -> None:
    session.delete(source)
    session.flush()


def remove_account(session: Session, account: Account) -> None:
    session.delete(account)  # sources, cursors and ledger rows go with it (ON DELETE CASCADE)
    session.flush()


def remove_role(session: Session, role: RoleConfig) -> None:
    users = session.scalar(
        select(func.count()).select_from(Source).where(Source.role_config_id == role.id)
    )
    if users:
        raise InUse(f"role config {role.name!r} is used by {users} source(s); change them first")
    if role.access_key is not None:
        session.delete(role.access_key)
    session.delete(role)
    session.flush()


@dataclass(frozen=True)
class Counts:
    accounts: int
    sources: int
    roles: int


def counts(session: Session) -> Counts:
    def count(model: type[Account] | type[Source] | type[RoleConfig]) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    return Counts(accounts=count(Account), sources=count(Source), roles=count(RoleConfig))
