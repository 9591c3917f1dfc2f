"""Tables of notifications: destinations, the outbox (one row per delivery) and its attempts.

An outbox row is written in the transaction that stores its finding, so a finding is never
stored without its notifications nor notified without being stored. ``delivery_id`` is the
idempotency key a receiver sees on every retry of the same delivery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from harvester.db.models import Base, UtcDateTime

__all__ = ["DestinationRecord", "NotificationAttempt", "NotificationRecord"]


class DestinationRecord(Base):
    __tablename__ = "destinations"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    # Everything but the secret, as the inventory file spells it (harvester.notify.store).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The destination's backoff: failures in a row, and no send before ``paused_until``
    # (exponential with jitter, or the receiver's Retry-After when longer).
    failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationRecord(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        # The dispatcher's claim: due rows of a status, oldest first.
        Index("ix_notifications_status_next_at", "status", "next_at"),
        # Routing's "when was this finding last sent there" (renotify_after).
        Index("ix_notifications_subject_destination", "subject_id", "destination"),
    )

    delivery_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    destination: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # anomaly | incident | digest | test
    subject_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(16))  # new | escalated | acknowledged | renotify
    severity_rank: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8))  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # A claim's lease: a worker killed mid-send leaves it, and it is claimed again after this.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NotificationAttempt(Base):
    __tablename__ = "notification_attempts"
    __table_args__ = (Index("ix_notification_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.delivery_id", ondelete="CASCADE")
    )
    destination: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # sent | failed | throttled | timeout
    http_status: Mapped[int | None] = mapped_column(Integer)
    latency_seconds: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
