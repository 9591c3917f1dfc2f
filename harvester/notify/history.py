"""What was sent: a finding's deliveries, a destination's recent ones (for the console)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.db.notify_models import NotificationRecord

__all__ = ["deliveries_of", "recent_deliveries"]


def deliveries_of(session: Session, *, subject_id: str) -> list[NotificationRecord]:
    """Every delivery of one anomaly or incident, oldest first."""
    query = (
        select(NotificationRecord)
        .where(NotificationRecord.subject_id == subject_id)
        .order_by(NotificationRecord.created_at, NotificationRecord.destination)
    )
    return list(session.scalars(query))


def recent_deliveries(
    session: Session, *, destination: str, limit: int = 20
) -> list[NotificationRecord]:
    """A destination's newest deliveries first."""
    query = (
        select(NotificationRecord)
        .where(NotificationRecord.destination == destination)
        .order_by(NotificationRecord.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
