"""Digest verifications in the database, and the database views the verifier reads.

Functions take the caller's session and never commit. The verification of a digest is
upserted by (source, digest key) with the dialect's ``INSERT … ON CONFLICT``, so a redo
after a crash, or a second worker, overwrites the same row instead of failing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from harvester.db.integrity_models import DigestVerification
from harvester.db.models import Cursor, ProcessedObject
from harvester.integrity.verify import (
    ChainId,
    DigestCheck,
    DigestStatus,
    KnownDigest,
    LedgerFact,
    LogStatus,
)
from harvester.sources.layouts import ParsedKey, classify
from harvester.sources.ledger import DEFAULT_PRUNE_MARGIN, get_watermark, retention_start

__all__ = [
    "DbDigestMemory",
    "DbLedgerView",
    "LastDigest",
    "final_keys",
    "first_log_after",
    "last_digests",
    "record_check",
    "region_watermarks",
    "unfinished_keys",
]

_CHUNK = 400


def _known(row: DigestVerification) -> KnownDigest | None:
    if row.digest_sha256 is None:
        return None
    return KnownDigest(
        key=row.digest_key,
        chain=ChainId(row.account_id, row.region, row.trail),
        start=row.digest_start,
        end=row.digest_end,
        sha256=row.digest_sha256,
        signature=row.digest_signature,
        backfill=row.backfill,
    )


class DbDigestMemory:
    """The digests of one source verified on earlier runs, for the chain's links."""

    def __init__(self, session: Session, *, source_id: int) -> None:
        self._session = session
        self._source_id = source_id

    def find(self, key: str) -> KnownDigest | None:
        row = self._session.scalars(
            select(DigestVerification).where(
                DigestVerification.source_id == self._source_id,
                DigestVerification.digest_key == key,
            )
        ).one_or_none()
        return None if row is None else _known(row)

    def latest_before(self, chain: ChainId, before: datetime) -> KnownDigest | None:
        row = self._session.scalars(
            select(DigestVerification)
            .where(
                DigestVerification.source_id == self._source_id,
                DigestVerification.account_id == chain.account,
                DigestVerification.region == chain.region,
                DigestVerification.trail == chain.trail,
                DigestVerification.backfill.is_(False),
                DigestVerification.digest_sha256.is_not(None),
                DigestVerification.digest_end <= before,
            )
            .order_by(DigestVerification.digest_end.desc())
            .limit(1)
        ).first()
        return None if row is None else _known(row)


class DbLedgerView:
    """The harvest ledger of one source, as the verifier needs it."""

    def __init__(
        self,
        session: Session,
        *,
        source_id: int,
        lateness_window: timedelta = timedelta(hours=1),
        prune_margin: timedelta = DEFAULT_PRUNE_MARGIN,
    ) -> None:
        self._session = session
        self._source_id = source_id
        self._lateness = lateness_window
        self._margin = prune_margin
        self._horizons: dict[str, datetime | None] = {}

    def facts(self, keys: Sequence[str]) -> Mapping[str, Sequence[LedgerFact]]:
        found: dict[str, list[LedgerFact]] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), _CHUNK):
            rows = self._session.execute(
                select(
                    ProcessedObject.key,
                    ProcessedObject.etag,
                    ProcessedObject.status,
                    ProcessedObject.sha256,
                ).where(
                    ProcessedObject.source_id == self._source_id,
                    ProcessedObject.key.in_(unique[start : start + _CHUNK]),
                )
            ).all()
            for key, etag, status, sha256 in rows:
                found.setdefault(key, []).append(LedgerFact(key, etag, status, sha256))
        return found

    def _horizon(self, scope: str) -> datetime | None:
        if scope not in self._horizons:
            mark = get_watermark(self._session, source_id=self._source_id, scope=scope)
            self._horizons[scope] = (
                None
                if mark is None
                else retention_start(mark, lateness_window=self._lateness, margin=self._margin)
            )
        return self._horizons[scope]

    def remembers(self, key: str) -> bool:
        parsed = classify(key)
        if not isinstance(parsed, ParsedKey):
            return False
        horizon = self._horizon(parsed.scope)
        # A scope never harvested has pruned nothing: a missing row means never harvested.
        return horizon is None or parsed.time >= horizon


# --- digest_verifications ---------------------------------------------------------------------


def _row(source_id: int, check: DigestCheck, now: datetime) -> dict[str, Any]:
    digest = check.digest
    return {
        "source_id": source_id,
        "digest_key": check.key,
        "account_id": check.parsed.account,
        "region": check.parsed.region or "",
        "trail": (check.parsed.trail_name or "")[:128],
        "backfill": check.backfill,
        "delivered_at": check.delivered_at,
        "digest_start": digest.start_time if digest else None,
        "digest_end": digest.end_time if digest else None,
        "status": check.status.value,
        "signature": check.signature.value,
        "chain": check.chain.value,
        "log_files": len(check.logs),
        "log_files_verified": check.count(LogStatus.VERIFIED),
        "log_files_missing": check.count(LogStatus.MISSING),
        "log_files_altered": check.count(LogStatus.ALTERED),
        "log_files_pending": check.count(LogStatus.PENDING),
        "digest_sha256": digest.sha256 if digest else None,
        "digest_signature": check.signature_hex,
        "previous_digest_key": check.previous_key,
        "error": check.error or ("; ".join(check.failures) or None),
        "attempts": 1,
        "first_verified_at": now,
        "verified_at": now,
    }


def record_check(session: Session, *, source_id: int, check: DigestCheck, now: datetime) -> None:
    """Upsert the verification of one digest; ``attempts`` counts verifications of it."""
    row = _row(source_id, check, now)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert: Any = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise NotImplementedError(
            f"digest verifications support SQLite and PostgreSQL, not {dialect}"
        )
    statement = insert(DigestVerification).values(row)
    kept = {"source_id", "digest_key", "first_verified_at", "attempts"}
    updates = {name: statement.excluded[name] for name in row if name not in kept}
    updates["attempts"] = DigestVerification.attempts + 1
    session.execute(
        statement.on_conflict_do_update(index_elements=["source_id", "digest_key"], set_=updates)
    )


def region_watermarks(session: Session, *, source_id: int) -> dict[str, datetime]:
    """The newest delivery time verified in each region: where its next listing starts."""
    rows = session.execute(
        select(DigestVerification.region, func.max(DigestVerification.delivered_at))
        .where(DigestVerification.source_id == source_id)
        .group_by(DigestVerification.region)
    ).all()
    return {region: mark for region, mark in rows if mark is not None}


# A cursor row whose ``updated_at`` is when the source's digest folder was last listed.
DIGEST_DISCOVERY_SCOPE = "meta:digest-regions"


def digest_discovery_time(session: Session, *, source_id: int) -> datetime | None:
    return session.scalar(
        select(Cursor.updated_at).where(
            Cursor.source_id == source_id, Cursor.scope == DIGEST_DISCOVERY_SCOPE
        )
    )


def record_digest_discovery(session: Session, *, source_id: int, now: datetime) -> None:
    marker = session.scalar(
        select(Cursor).where(Cursor.source_id == source_id, Cursor.scope == DIGEST_DISCOVERY_SCOPE)
    )
    if marker is None:
        session.add(Cursor(source_id=source_id, scope=DIGEST_DISCOVERY_SCOPE, updated_at=now))
    else:
        marker.updated_at = now


def final_keys(session: Session, *, source_id: int, keys: Collection[str]) -> set[str]:
    """Those of ``keys`` already verified for good (ok or failed): not fetched again."""
    found: set[str] = set()
    unique = sorted(set(keys))
    finals = [s.value for s in DigestStatus if s.final]
    for start in range(0, len(unique), _CHUNK):
        found.update(
            session.scalars(
                select(DigestVerification.digest_key).where(
                    DigestVerification.source_id == source_id,
                    DigestVerification.digest_key.in_(unique[start : start + _CHUNK]),
                    DigestVerification.status.in_(finals),
                )
            )
        )
    return found


def unfinished_keys(session: Session, *, source_id: int, max_attempts: int) -> list[str]:
    """Digests to verify again: pending ones, and errors with attempts left."""
    return list(
        session.scalars(
            select(DigestVerification.digest_key)
            .where(
                DigestVerification.source_id == source_id,
                or_(
                    DigestVerification.status == DigestStatus.PENDING.value,
                    (DigestVerification.status == DigestStatus.ERROR.value)
                    & (DigestVerification.attempts < max_attempts),
                ),
            )
            .order_by(DigestVerification.delivered_at)
        )
    )


@dataclass(frozen=True, slots=True)
class LastDigest:
    chain: ChainId
    key: str
    end: datetime


def last_digests(session: Session, *, source_id: int, region: str) -> list[LastDigest]:
    """The last regular digest of each chain of a region, newest first."""
    newest = (
        select(
            DigestVerification.account_id,
            DigestVerification.trail,
            func.max(DigestVerification.digest_end).label("last_end"),
        )
        .where(
            DigestVerification.source_id == source_id,
            DigestVerification.region == region,
            DigestVerification.backfill.is_(False),
            DigestVerification.digest_end.is_not(None),
        )
        .group_by(DigestVerification.account_id, DigestVerification.trail)
        .subquery()
    )
    rows = session.execute(
        select(DigestVerification)
        .join(
            newest,
            (DigestVerification.account_id == newest.c.account_id)
            & (DigestVerification.trail == newest.c.trail)
            & (DigestVerification.digest_end == newest.c.last_end),
        )
        .where(
            DigestVerification.source_id == source_id,
            DigestVerification.region == region,
            DigestVerification.backfill.is_(False),
        )
        .order_by(DigestVerification.digest_end.desc())
    ).scalars()
    found: list[LastDigest] = []
    for row in rows:
        assert row.digest_end is not None
        found.append(
            LastDigest(
                ChainId(row.account_id, row.region, row.trail), row.digest_key, row.digest_end
            )
        )
    return found


def first_log_after(
    session: Session, *, source_id: int, scope: str, after: datetime
) -> tuple[str, datetime] | None:
    """The earliest harvested log object of a scope with a key time after ``after``."""
    row = session.execute(
        select(ProcessedObject.key, ProcessedObject.object_time)
        .where(
            ProcessedObject.source_id == source_id,
            ProcessedObject.scope == scope,
            ProcessedObject.object_time > after,
        )
        .order_by(ProcessedObject.object_time, ProcessedObject.key)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])
