"""Tables of detection: anomalies, incidents (with their anomalies), suppression rules.

An anomaly's primary key is its stable id (derived from its dedup key), so a redo of a batch
finds the row it made the first time. Times are timezone-aware UTC (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from harvester.db.models import Base, UtcDateTime

__all__ = ["AnomalyRecord", "IncidentAnomaly", "IncidentRecord", "SuppressionRecord"]


class AnomalyRecord(Base):
    __tablename__ = "anomalies"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_anomalies_first_seen", "first_seen"),
        Index("ix_anomalies_identity_last_seen", "identity", "last_seen"),
        Index("ix_anomalies_detector", "detector"),
        Index("ix_anomalies_account_id", "account_id"),
        Index("ix_anomalies_status_severity", "status", "severity_rank"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(100))
    detector_version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    # The severity as a number, so "--severity high" is one indexed comparison.
    severity_rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str | None] = mapped_column(String(12))
    region: Mapped[str | None] = mapped_column(String(32))
    cluster: Mapped[str | None] = mapped_column(String(100))
    principal: Mapped[str | None] = mapped_column(String(2048))
    identity: Mapped[str | None] = mapped_column(String(1024))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    count: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    mitre_tactics: Mapped[list[str]] = mapped_column(JSON)
    mitre_techniques: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IncidentRecord(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_first_seen", "first_seen"),
        Index("ix_incidents_identity", "identity"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    severity_rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    account_ids: Mapped[list[str]] = mapped_column(JSON)
    clusters: Mapped[list[str]] = mapped_column(JSON)
    tactics: Mapped[list[str]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    explanation: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    links: Mapped[list[IncidentAnomaly]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", passive_deletes=True
    )


class IncidentAnomaly(Base):
    __tablename__ = "incident_anomalies"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    anomaly_id: Mapped[str] = mapped_column(
        ForeignKey("anomalies.id", ondelete="CASCADE"), primary_key=True
    )

    incident: Mapped[IncidentRecord] = relationship(back_populates="links")


class SuppressionRecord(Base):
    """A rule the scorer honours: drop anomalies of a detector (for a principal, an account)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    detector: Mapped[str] = mapped_column(String(100))
    principal: Mapped[str | None] = mapped_column(String(2048))
    account_id: Mapped[str | None] = mapped_column(String(12))
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
