"""SQLAlchemy 2.0 typed models: the inventory, the sources and the processed-object ledger.

Every timestamp is timezone-aware UTC (``UtcDateTime``), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    partition: Mapped[str] = mapped_column(String(16), default="aws")
    organization_id: Mapped[str | None] = mapped_column(String(34))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cadence_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    sources: Mapped[list[Source]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )


class AccessKeyConfig(Base):
    __tablename__ = "access_key_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_key_id: Mapped[str] = mapped_column(String(128))
    # Fernet token (``fernet:...``) of the secret access key; see harvester.crypto.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RoleConfig(Base):
    __tablename__ = "role_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role_arn: Mapped[str | None] = mapped_column(String(2048))
    session_name: Mapped[str] = mapped_column(String(64), default="audit-harvester")
    partition: Mapped[str] = mapped_column(String(16), default="aws")
    authentication: Mapped[str] = mapped_column(String(32), default="instance-profile")
    via_role_arn: Mapped[str | None] = mapped_column(String(2048))
    external_id: Mapped[str | None] = mapped_column(String(1224))
    access_key_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_key_configs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    access_key: Mapped[AccessKeyConfig | None] = relationship()


class Source(Base):
    """One harvest unit: an account's CloudTrail storage configuration, or one EKS cluster.

    The storage configuration (bucket, region, prefix, role) lives on the row itself: each
    source has exactly one, and the web console edits it in place.
    """

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("account_pk", "kind", "cluster_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "cloudtrail" | "eks"
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # "" for CloudTrail sources, so the unique constraint holds on every backend.
    cluster_name: Mapped[str] = mapped_column(String(100), default="")
    bucket: Mapped[str] = mapped_column(String(63))
    region: Mapped[str] = mapped_column(String(32))
    prefix: Mapped[str] = mapped_column(String(1024))
    role_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("role_configs.id", ondelete="RESTRICT")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    # Scheduling and health, written by the pipeline.
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    health: Mapped[str] = mapped_column(String(16), default="new")
    health_reason: Mapped[str | None] = mapped_column(Text)
    last_run_objects: Mapped[int] = mapped_column(Integer, default=0)
    last_run_events: Mapped[int] = mapped_column(BigInteger, default=0)
    newest_object_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    account: Mapped[Account] = relationship(back_populates="sources")
    role: Mapped[RoleConfig | None] = relationship()


class Cursor(Base):
    """The listing watermark of one (source, scope); a scope is a region or an EKS cluster."""

    __tablename__ = "cursors"
    __table_args__ = (UniqueConstraint("source_id", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    # The time every object up to which has been processed; listing restarts at
    # (watermark - lateness window), never at a key, so late arrivals are found.
    watermark: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProcessedObject(Base):
    """The ledger: what happened to each object we have seen."""

    __tablename__ = "processed_objects"
    __table_args__ = (
        UniqueConstraint("source_id", "key", "etag"),
        Index("ix_processed_objects_source_status", "source_id", "status"),
        Index("ix_processed_objects_source_object_time", "source_id", "object_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(64), default="")
    # The delivery time encoded in the key (CloudTrail file name, EKS hour folder).
    object_time: Mapped[datetime] = mapped_column(UtcDateTime)
    last_modified: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # queued | done | corrupt | failed
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeadLetter(Base):
    """A task message that kept failing or killing its worker: kept for an operator."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    # The ids the task was given (a source id, object keys): never events or credentials.
    args: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
