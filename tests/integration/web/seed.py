"""A small, realistic console state: accounts, sources with health and ledger, findings.

Shared by the API tests and the browser tests, so both look at the same data. Anomalies are
made by the real detectors from normalized events (tests/unit/detect/builders.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from harvester.crypto import SecretBox
from harvester.db.models import ProcessedObject, Source
from harvester.detect import repository as repo
from harvester.detect.model import Anomaly
from harvester.inventory import service
from harvester.inventory.spec import AccountSpec, ClusterSpec, RoleSpec, StorageSpec
from tests.conftest import FixedClock
from tests.unit.detect.builders import ACCOUNT, ct, k8s, scorer, sso

ORG_ACCOUNT = "222233334444"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@dataclass(frozen=True)
class Seeded:
    trail_id: int
    org_trail_id: int
    cluster_id: int
    anomalies: list[Anomaly]
    incident_id: str

    def anomaly(self, detector: str) -> Anomaly:
        return next(a for a in self.anomalies if a.detector == detector)


def seed(session: Session, *, box: SecretBox, clock: FixedClock) -> Seeded:
    now = clock()
    service.upsert_role(
        session,
        RoleSpec(
            name="org-reader",
            role_arn=f"arn:aws:iam::{ORG_ACCOUNT}:role/audit-harvester-reader",
        ),
        box=box,
        clock=clock,
    )
    service.upsert_role(
        session,
        RoleSpec(
            name="legacy-keys",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/audit-reader",
            authentication="access-keys",
            access_key_id=KEY_ID,
            secret_access_key=SECRET,
        ),
        box=box,
        clock=clock,
    )
    prod = service.upsert_account(session, AccountSpec(ACCOUNT, "prod"), clock=clock)
    org = service.upsert_account(
        session,
        AccountSpec(ORG_ACCOUNT, "payments", organization_id="o-abcdef1234"),
        clock=clock,
    )
    trail = service.set_cloudtrail_storage(
        session,
        account=prod,
        storage=StorageSpec("prod-trail-logs", "us-east-1", f"AWSLogs/{ACCOUNT}", "legacy-keys"),
        clock=clock,
    )
    org_trail = service.set_cloudtrail_storage(
        session,
        account=org,
        storage=StorageSpec(
            "org-trail-bucket",
            "eu-west-1",
            f"AWSLogs/o-abcdef1234/{ORG_ACCOUNT}",
            "org-reader",
        ),
        clock=clock,
    )
    cluster = service.set_cluster(
        session,
        account=prod,
        cluster=ClusterSpec("checkout", "us-east-1", "eks-audit-logs", None),
        clock=clock,
    )
    trail.health, trail.last_run_at, trail.last_success_at = "ok", now - timedelta(minutes=3), now
    trail.newest_object_at = now - timedelta(minutes=7)
    org_trail.health = "degraded"
    org_trail.health_reason = (
        "AccessDenied on s3:ListBucket for org-trail-bucket: the bucket policy denies "
        "principals outside the organization"
    )
    org_trail.last_run_at = now - timedelta(minutes=4)
    org_trail.last_success_at = now - timedelta(hours=6)
    org_trail.newest_object_at = now - timedelta(hours=6, minutes=5)
    cluster.health, cluster.last_run_at = "ok", now - timedelta(minutes=2)
    cluster.newest_object_at = now - timedelta(minutes=12)
    _ledger(session, trail, now, per_hour=1200)
    _ledger(session, cluster, now, per_hour=300)
    _ledger(session, org_trail, now - timedelta(hours=6), per_hour=800, hours=18)
    anomalies = _findings(session, clock)
    session.flush()
    incident = repo.correlate_incidents(session, anomalies, clock=clock)
    return Seeded(
        trail_id=trail.id,
        org_trail_id=org_trail.id,
        cluster_id=cluster.id,
        anomalies=repo.list_anomalies(session),
        incident_id=incident[0].id,
    )


def _ledger(
    session: Session, source: Source, end: datetime, *, per_hour: int, hours: int = 24
) -> None:
    for hour in range(hours):
        when = end - timedelta(hours=hour, minutes=5)
        session.add(
            ProcessedObject(
                source_id=source.id,
                key=f"{source.prefix}/object-{hour}.json.gz",
                etag=f"etag-{hour}",
                scope="us-east-1",
                object_time=when,
                last_modified=when,
                status="done",
                # A daily rhythm, so the chart is not a flat line.
                events=per_hour + (per_hour // 2 if 8 <= when.hour <= 18 else 0) + hour * 7,
                bytes=per_hour * 1700,
                attempts=1,
                first_seen_at=when,
                updated_at=when,
            )
        )


def _findings(session: Session, clock: FixedClock) -> list[Anomaly]:
    now = clock()
    start = now - timedelta(hours=3)
    s = scorer()
    events = [
        ct(
            "ListUsers",
            "iam",
            identity=sso(),
            error="AccessDenied",
            when=start + timedelta(seconds=i),
        )
        for i in range(35)
    ]
    events += [
        ct(
            "CreateAccessKey",
            identity=sso(),
            params={"userName": "bob"},
            when=start + timedelta(minutes=5),
        ),
        ct(
            "StopLogging",
            "cloudtrail",
            identity=sso(),
            params={"name": "main"},
            when=start + timedelta(minutes=10),
        ),
        ct("DeleteDetector", "guardduty", when=now - timedelta(days=2), account=ORG_ACCOUNT),
        ct("RebootDBInstance", "rds", when=now - timedelta(days=5)),
        k8s(
            "create",
            "pods",
            name="web-7d9f",
            subresource="exec",
            when=now - timedelta(days=1, hours=2),
        ),
    ]
    anomalies = s.score_and_commit(events).anomalies
    return repo.save_anomalies(session, anomalies, clock=clock)
