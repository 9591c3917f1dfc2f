"""Anomalies, incidents and suppressions in SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harvester.db.anomaly_models import AnomalyRecord, IncidentAnomaly, IncidentRecord
from harvester.detect import repository as repo
from harvester.detect.model import Severity
from harvester.detect.state import MemoryStore
from harvester.inventory.service import NotFound
from tests.conftest import FixedClock
from tests.unit.detect.builders import T0, ct, detect, k8s, scorer, sso

pytestmark = pytest.mark.integration


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _stop(minutes: int = 0) -> object:
    return ct(
        "StopLogging",
        "cloudtrail",
        identity=sso(),
        params={"name": "t"},
        when=T0 + timedelta(minutes=minutes),
    )


def test_upsert_by_dedup_key_is_idempotent(db_session: Session, clock: FixedClock) -> None:
    anomalies = detect(_stop(0), ct("DeleteDetector", "guardduty", when=T0))
    repo.save_anomalies(db_session, anomalies, clock=clock)
    repo.save_anomalies(db_session, anomalies, clock=clock)
    db_session.commit()
    assert _count(db_session, AnomalyRecord) == 2
    stored = repo.get_anomaly(db_session, anomaly_id=anomalies[0].id)
    assert stored == anomalies[0]


def test_later_sightings_raise_count_and_last_seen(db_session: Session, clock: FixedClock) -> None:
    s = scorer()
    (first,) = s.score_and_commit([_stop(0)]).anomalies
    (second,) = s.score_and_commit([_stop(30), _stop(45)]).anomalies
    repo.save_anomalies(db_session, [first], clock=clock)
    (merged,) = repo.save_anomalies(db_session, [second], clock=clock)
    assert merged.count == 3
    assert merged.first_seen == T0
    assert merged.last_seen == T0 + timedelta(minutes=45)
    assert len(merged.evidence) == 3
    assert repo.get_anomaly(db_session, anomaly_id=first.id).count == 3


def test_list_filters_and_ack(db_session: Session, clock: FixedClock) -> None:
    anomalies = detect(
        _stop(0),
        ct("RebootDBInstance", "rds", when=T0 + timedelta(days=1), account="222233334444"),
    )
    repo.save_anomalies(db_session, anomalies, clock=clock)
    assert len(repo.list_anomalies(db_session)) == 2
    assert [a.detector for a in repo.list_anomalies(db_session, min_severity=Severity.high)] == [
        "aws.cloudtrail-logging-impaired"
    ]
    assert [a.account_id for a in repo.list_anomalies(db_session, account="222233334444")] == [
        "222233334444"
    ]
    assert len(repo.list_anomalies(db_session, since=T0 + timedelta(hours=12))) == 1
    assert len(repo.list_anomalies(db_session, detector="aws.database-*")) == 1
    stop = next(a for a in anomalies if a.detector == "aws.cloudtrail-logging-impaired")
    acked = repo.ack_anomaly(db_session, anomaly_id=stop.id[:8], clock=clock, by="oncall")
    assert acked.status == "acked"
    assert [a.id for a in repo.list_anomalies(db_session, status="open")] != [stop.id]
    with pytest.raises(NotFound):
        repo.get_anomaly(db_session, anomaly_id="an-nothere")


def test_underscore_and_percent_are_not_wildcards(db_session: Session, clock: FixedClock) -> None:
    anomalies = detect(
        _stop(0),
        ct("RebootDBInstance", "rds", when=T0 + timedelta(days=1), account="222233334444"),
    )
    repo.save_anomalies(db_session, anomalies, clock=clock)
    one = anomalies[0].id
    for prefix in (one[:3] + "_" + one[4:8], "%", one[:4] + "%"):
        with pytest.raises(NotFound, match="no anomaly with id"):
            repo.get_anomaly(db_session, anomaly_id=prefix)
    assert repo.list_anomalies(db_session, detector="aws_database-*") == []
    assert repo.list_anomalies(db_session, detector="aws.%*") == []
    assert len(repo.list_anomalies(db_session, detector="aws.database-*")) == 1


def test_incidents_are_found_and_kept_stable(db_session: Session, clock: FixedClock) -> None:
    s = scorer()
    recon = [
        ct("ListUsers", "iam", identity=sso(), error="AccessDenied", when=T0 + timedelta(seconds=i))
        for i in range(35)
    ]
    first = repo.save_anomalies(db_session, s.score_and_commit(recon).anomalies, clock=clock)
    assert repo.correlate_incidents(db_session, first, clock=clock) == []
    # Later batches bring persistence and evasion by the same identity.
    later = s.score_and_commit(
        [
            ct(
                "CreateAccessKey",
                identity=sso(),
                params={"userName": "bob"},
                when=T0 + timedelta(minutes=5),
            ),
            _stop(10),
        ]
    ).anomalies
    stored = repo.save_anomalies(db_session, later, clock=clock)
    (incident,) = repo.correlate_incidents(db_session, stored, clock=clock)
    again = repo.correlate_incidents(db_session, stored, clock=clock)
    db_session.commit()
    assert [i.id for i in again] == [incident.id]
    assert _count(db_session, IncidentRecord) == 1
    assert _count(db_session, IncidentAnomaly) == 3
    shown, members = repo.get_incident(db_session, incident_id=incident.id)
    assert shown.severity is Severity.critical
    assert [a.detector for a in members] == [
        "behav.access-denied-burst",
        "aws.iam-access-key-for-other-user",
        "aws.cloudtrail-logging-impaired",
    ]
    assert repo.list_incidents(db_session, min_severity=Severity.high)[0].id == incident.id


def test_suppressions(db_session: Session, clock: FixedClock) -> None:
    kept = repo.add_suppression(db_session, detector="aws.guardduty-disabled", clock=clock)
    until = clock() + timedelta(days=1)
    repo.add_suppression(
        db_session, detector="*", principal="*pat*", until=until, reason="pentest", clock=clock
    )
    repo.add_suppression(
        db_session,
        detector="*",
        until=clock() - timedelta(days=1) + timedelta(seconds=1),
        clock=FixedClock(clock() - timedelta(days=2)),
    )
    assert len(repo.list_suppressions(db_session)) == 3
    active = repo.active_suppressions(db_session, now=clock())
    assert [r.detector for r in active] == ["aws.guardduty-disabled", "*"]
    assert active[1].until == until
    repo.remove_suppression(db_session, suppression_id=kept.id)
    assert len(repo.active_suppressions(db_session, now=clock())) == 1
    with pytest.raises(NotFound):
        repo.remove_suppression(db_session, suppression_id=kept.id)


def test_score_and_store_honours_suppressions_and_redelivery(
    db_session: Session, clock: FixedClock
) -> None:
    repo.add_suppression(db_session, detector="aws.guardduty-disabled", clock=clock)
    s = scorer(MemoryStore())
    batch = [_stop(0), ct("DeleteDetector", "guardduty", when=T0)]
    summary = repo.score_and_store(db_session, s, batch)
    assert (summary.anomalies, summary.suppressed) == (1, 1)
    again = repo.score_and_store(db_session, s, batch)
    assert (again.anomalies, again.duplicates) == (0, 2)
    assert _count(db_session, AnomalyRecord) == 1
    assert repo.list_anomalies(db_session)[0].count == 1


def test_failed_storage_gives_the_events_back(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scorer(MemoryStore())
    batch = [_stop(0)]

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(repo, "save_anomalies", broken)
        with pytest.raises(RuntimeError):
            repo.score_and_store(db_session, s, batch)
    summary = repo.score_and_store(db_session, s, batch)
    assert (summary.anomalies, summary.duplicates) == (1, 0)


def test_kubernetes_anomalies_round_trip(db_session: Session, clock: FixedClock) -> None:
    anomalies = detect(k8s("patch", "configmaps", namespace="kube-system", name="aws-auth"))
    (stored,) = repo.save_anomalies(db_session, anomalies, clock=clock)
    assert repo.get_anomaly(db_session, anomaly_id=stored.id).cluster == "prod"


def test_rule_config_from_the_inventory(db_session: Session, clock: FixedClock) -> None:
    from harvester.db.models import Account, Source
    from harvester.detect.rules import RuleConfig

    now = clock()
    account = Account(account_id="222233334444", name="prod", created_at=now, updated_at=now)
    db_session.add(account)
    db_session.flush()
    db_session.add(
        Source(
            kind="cloudtrail",
            account_pk=account.id,
            bucket="org-trail-logs",
            region="us-east-1",
            prefix="AWSLogs/",
            created_at=now,
            updated_at=now,
        )
    )
    db_session.flush()
    config = repo.inventory_rule_config(db_session, RuleConfig(known_accounts=frozenset(("1",))))
    assert config.known_accounts == {"1", "222233334444"}
    assert config.trail_buckets == {"org-trail-logs"}
