"""What was proven about each CloudTrail digest file (log file integrity validation).

One row per (source, digest key), upserted each time the digest is verified. A digest that
verified ``ok`` or ``failed`` is final and never fetched again; ``pending`` (log files not yet
harvested, so their hashes are not known yet) and ``error`` (AWS could not be reached) rows
are verified again on the next run. The digest's own SHA-256 and signature are kept so the
next digest's link to it can be checked without downloading it a second time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from harvester.db.models import Base, UtcDateTime

__all__ = ["DigestVerification"]


class DigestVerification(Base):
    __tablename__ = "digest_verifications"
    __table_args__ = (
        UniqueConstraint("source_id", "digest_key"),
        # The listing watermark of a region is the newest delivery time verified in it.
        Index("ix_digest_verifications_source_region_time", "source_id", "region", "delivered_at"),
        Index("ix_digest_verifications_source_status", "source_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    digest_key: Mapped[str] = mapped_column(String(1024))
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    trail: Mapped[str] = mapped_column(String(128))
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    # The time in the key (when CloudTrail delivered it); the content's range is below.
    delivered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    digest_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    digest_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # ok | failed | pending | error
    # valid | invalid | unknown_key | unsigned | not_checked
    signature: Mapped[str] = mapped_column(String(16))
    # intact | start | restarted | broken | gap | not_checked
    chain: Mapped[str] = mapped_column(String(16))
    log_files: Mapped[int] = mapped_column(Integer, default=0)
    log_files_verified: Mapped[int] = mapped_column(Integer, default=0)
    log_files_missing: Mapped[int] = mapped_column(Integer, default=0)
    log_files_altered: Mapped[int] = mapped_column(Integer, default=0)
    log_files_pending: Mapped[int] = mapped_column(Integer, default=0)
    digest_sha256: Mapped[str | None] = mapped_column(String(64))
    digest_signature: Mapped[str | None] = mapped_column(Text)
    previous_digest_key: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_verified_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime)
