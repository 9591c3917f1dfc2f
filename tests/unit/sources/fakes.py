"""Fakes for the sources tests: an in-memory bucket behind the Lister protocol, key
builders, and an in-memory SQLite ledger with one source row."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from harvester.db.models import Account, Base, Source
from harvester.sources.listing import PAGE_SIZE, ListedObject, ListPage

ACCOUNT = "123456789012"


class FakeBucket:
    """ListObjectsV2 semantics over a dict: key order, Prefix, StartAfter, Delimiter, pages."""

    def __init__(self) -> None:
        self.objects: dict[str, ListedObject] = {}
        self.calls: list[dict[str, object]] = []

    def put(self, key: str, *, at: datetime, size: int = 100, body: str = "") -> ListedObject:
        etag = hashlib.md5(f"{key}|{body}".encode(), usedforsecurity=False).hexdigest()
        obj = ListedObject(key=key, etag=etag, size=size, last_modified=at)
        self.objects[key] = obj
        return obj

    def list_page(
        self,
        *,
        prefix: str,
        start_after: str | None = None,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        max_keys: int = PAGE_SIZE,
    ) -> ListPage:
        self.calls.append(
            {
                "prefix": prefix,
                "start_after": start_after,
                "delimiter": delimiter,
                "token": continuation_token,
            }
        )
        after = continuation_token or start_after or ""
        objects: list[ListedObject] = []
        prefixes: list[str] = []
        last = ""
        for key in sorted(self.objects):
            if not key.startswith(prefix) or key <= after:
                continue
            if delimiter and delimiter in key[len(prefix) :]:
                common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
                if common <= after or (prefixes and prefixes[-1] == common):
                    continue
                if len(objects) + len(prefixes) == max_keys:
                    return ListPage(objects, prefixes, next_token=last)
                prefixes.append(common)
                # The token after a common prefix skips everything inside it.
                last = common + "\U0010ffff"
                continue
            if len(objects) + len(prefixes) == max_keys:
                return ListPage(objects, prefixes, next_token=last)
            objects.append(self.objects[key])
            last = key
        return ListPage(objects, prefixes, next_token=None)


def ct_key(t: datetime, *, region: str = "us-east-1", prefix: str = "", unique: str = "a1") -> str:
    return (
        f"{prefix}AWSLogs/{ACCOUNT}/CloudTrail/{region}/{t:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{unique}.json.gz"
    )


def eks_key(t: datetime, *, cluster: str = "prod", stream: str = "eks-audit", n: int = 0) -> str:
    return (
        f"EKSLogs/{ACCOUNT}/{cluster}/{t:%Y/%m/%d/%H}/"
        f"{stream}-1-{t:%Y-%m-%d-%H-%M-%S}-{n:08x}-9a2b-4c3d-8e5f-0123456789ab"
    )


def memory_engine() -> Engine:
    engine = create_engine("sqlite://")

    @event.listens_for(engine, "connect")
    def _fk(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    return engine


def add_source(session: Session, *, kind: str = "cloudtrail", cluster: str = "") -> int:
    """An account and one source row for the ledger's foreign keys; returns the source id."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    account = session.query(Account).filter_by(account_id=ACCOUNT).one_or_none()
    if account is None:
        account = Account(account_id=ACCOUNT, name="test", created_at=now, updated_at=now)
        session.add(account)
        session.flush()
    source = Source(
        kind=kind,
        account_pk=account.id,
        cluster_name=cluster,
        bucket="audit-logs",
        region="us-east-1",
        prefix="AWSLogs",
        created_at=now,
        updated_at=now,
    )
    session.add(source)
    session.flush()
    return source.id
