"""The set-based storage paths on SQLite and PostgreSQL: few statements, same results.

``save_anomalies`` and incident correlation write with a handful of statements per call
whatever the number of rows; ``correlate_pending`` over many batches' identities gives the
incidents that correlating after every batch gives.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy.orm import Session

from harvester.db.anomaly_models import AnomalyRecord, IncidentAnomaly, IncidentRecord
from harvester.detect import repository as repo
from harvester.detect.incidents import build_incidents
from harvester.detect.model import Anomaly, Incident, Severity, SuppressionRule
from harvester.detect.state import MemoryStore
from harvester.events import Event, normalize_cloudtrail
from harvester.synth.logs import cloudtrail_record
from tests.conftest import FixedClock
from tests.unit.detect.builders import T0, ct, scorer, sso

pytestmark = pytest.mark.integration

ACCOUNTS = ("111122223333", "444455556666")


@contextmanager
def _statements(session: Session) -> Iterator[list[str]]:
    """The SQL statements ``session`` sends inside the block (an executemany counts once).

    Savepoints are left out: on PostgreSQL the test's session runs its transactions as
    savepoints of the fixture's, where production has a plain BEGIN.
    """
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            seen.append(verb)

    # The session's bind (an engine, or the test's connection): asking the session for a
    # connection would begin a transaction (a savepoint on PostgreSQL) of its own.
    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)


def _noisy(count: int, *, seed: int = 11) -> list[Event]:
    """Generated CloudTrail traffic with random principals and errors: many anomalies and
    a handful of attack chains, the same on every run."""
    rng = random.Random(seed)
    when = T0
    events = []
    for index in range(count):
        record = cloudtrail_record(rng, account_id=ACCOUNTS[index % 2], when=when)
        events.append(normalize_cloudtrail(record, bucket="b", key="k", index=index))
        when += timedelta(milliseconds=rng.randrange(0, 40))
    return events


def _anomaly(**changes: Any) -> Anomaly:
    (stop,) = (
        scorer()
        .score_and_commit(
            [ct("StopLogging", "cloudtrail", identity=sso(), params={"name": "t"}, when=T0)]
        )
        .anomalies
    )
    return msgspec.structs.replace(stop, **changes)


def _many(count: int) -> list[Anomaly]:
    base = _anomaly()
    return [
        msgspec.structs.replace(
            base,
            id=f"an-{i:016d}",
            dedup_key=f"{i:032x}",
            identity=f"arn:aws:iam::111122223333:role/r{i % 7}",
        )
        for i in range(count)
    ]


def _again(anomaly: Anomaly, *, minutes: int, event_id: str) -> Anomaly:
    """The same anomaly seen once more, ``minutes`` after it was first seen."""
    when = anomaly.first_seen + timedelta(minutes=minutes)
    evidence = msgspec.structs.replace(anomaly.evidence[0], event_id=event_id, time=when)
    return msgspec.structs.replace(
        anomaly, first_seen=when, last_seen=when, count=1, evidence=(evidence,)
    )


# --- anomalies ---------------------------------------------------------------------------------


def test_new_anomalies_are_a_lookup_and_one_insert(db_session: Session, clock: FixedClock) -> None:
    anomalies = _many(60)
    with _statements(db_session) as sent:
        stored = repo.save_anomalies(db_session, anomalies, clock=clock)
    # The last SELECT reads the notification destinations (the outbox, harvester.notify).
    assert sent == ["SELECT", "INSERT", "SELECT"]
    assert stored == anomalies
    assert db_session.scalar(select(func.count()).select_from(AnomalyRecord)) == 60


def test_merging_many_is_one_locking_read_and_one_update(
    db_session: Session, clock: FixedClock
) -> None:
    first = _many(60)
    repo.save_anomalies(db_session, first, clock=clock)
    later = [_again(a, minutes=30, event_id=f"later-{a.id}") for a in first[:40]]
    new = _many(70)[60:]
    with _statements(db_session) as sent:
        stored = repo.save_anomalies(db_session, [*later, *new], clock=clock)
    # The executemany INSERT and UPDATE are one statement each, however many rows.
    assert sent == ["SELECT", "INSERT", "UPDATE", "SELECT"]  # + the destinations
    assert stored[40:] == new
    stored = stored[:40]
    assert [a.count for a in stored] == [2] * 40
    assert {a.last_seen for a in stored} == {T0 + timedelta(minutes=30)}
    assert {a.first_seen for a in stored} == {T0}
    db_session.expire_all()
    assert repo.get_anomaly(db_session, anomaly_id=first[0].id).count == 2
    assert repo.get_anomaly(db_session, anomaly_id=first[59].id).count == 1


def test_storing_what_is_stored_writes_nothing(db_session: Session, clock: FixedClock) -> None:
    anomalies = _many(20)
    repo.save_anomalies(db_session, anomalies, clock=clock)
    clock.advance(timedelta(hours=1))
    with _statements(db_session) as sent:
        again = repo.save_anomalies(db_session, anomalies, clock=clock)
    assert sent == ["SELECT", "SELECT"]  # the anomalies, the notification destinations
    assert again == anomalies
    (record,) = db_session.scalars(select(AnomalyRecord).where(AnomalyRecord.id == anomalies[0].id))
    assert record.updated_at == clock() - timedelta(hours=1)


def test_merge_keeps_the_worse_severity_its_words_and_caps_evidence(
    db_session: Session, clock: FixedClock
) -> None:
    low = _anomaly(severity=Severity.low, score=30, title="quiet", explanation="a little")
    repo.save_anomalies(db_session, [low], clock=clock, evidence_cap=3)
    sightings = [_again(low, minutes=m, event_id=f"e{m}") for m in (5, 10, 15)]
    worse = msgspec.structs.replace(
        sightings[0], severity=Severity.critical, score=95, title="loud", explanation="a lot"
    )
    repo.save_anomalies(db_session, [worse, *sightings[1:]], clock=clock, evidence_cap=3)
    db_session.expire_all()
    stored = repo.get_anomaly(db_session, anomaly_id=low.id)
    assert stored.count == 4
    assert (stored.severity, stored.score, stored.title, stored.explanation) == (
        Severity.critical,
        95,
        "loud",
        "a lot",
    )
    assert [e.event_id for e in stored.evidence] == [low.evidence[0].event_id, "e5", "e10"]
    assert stored.last_seen == T0 + timedelta(minutes=15)
    # A milder sighting afterwards keeps the worse severity and its words.
    mild = _again(low, minutes=20, event_id="e20")
    (merged,) = repo.save_anomalies(db_session, [mild], clock=clock, evidence_cap=3)
    assert (merged.severity, merged.title, merged.count) == (Severity.critical, "loud", 5)


@pytest.fixture
def committed_elsewhere(pg_engine: Engine) -> Iterator[list[str]]:
    """Ids of anomaly rows a test commits from another connection, deleted afterwards.

    Requested before ``pg_session``, it is torn down after that session's rollback, which
    releases the row locks the test's transaction took on them.
    """
    ids: list[str] = []
    yield ids
    with pg_engine.begin() as conn:
        conn.execute(delete(AnomalyRecord).where(AnomalyRecord.id.in_(ids)))


def test_an_anomaly_another_transaction_stored_first_is_merged(
    committed_elsewhere: list[str], pg_engine: Engine, pg_session: Session, clock: FixedClock
) -> None:
    mine = _anomaly(dedup_key="race" * 8, id="an-race")
    theirs = _again(mine, minutes=5, event_id="theirs")

    def sneak(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Between this transaction's read (nothing stored) and its insert.
        if statement.startswith("INSERT INTO anomalies") and not committed_elsewhere:
            committed_elsewhere.append(theirs.id)
            with pg_engine.begin() as other:
                other.execute(
                    repo._insert(pg_session)(repo._ANOMALIES), [repo._anomaly_row(theirs, clock())]
                )

    bind = pg_session.get_bind()
    event.listen(bind, "before_cursor_execute", sneak)
    try:
        (stored,) = repo.save_anomalies(pg_session, [mine], clock=clock)
    finally:
        event.remove(bind, "before_cursor_execute", sneak)
    assert committed_elsewhere == [theirs.id]
    assert stored.count == 2
    assert stored.event_ids == [mine.evidence[0].event_id, "theirs"]
    assert repo.get_anomaly(pg_session, anomaly_id=mine.id).count == 2


def test_records_the_session_holds_are_refreshed(db_session: Session, clock: FixedClock) -> None:
    (stop,) = repo.save_anomalies(db_session, [_anomaly()], clock=clock)
    held = db_session.get(AnomalyRecord, stop.id)
    assert held is not None
    assert held.count == 1
    repo.save_anomalies(db_session, [_again(stop, minutes=5, event_id="x")], clock=clock)
    assert held.count == 2
    assert repo.get_anomaly(db_session, anomaly_id=stop.id).count == 2


# --- incidents ---------------------------------------------------------------------------------


def _chain_events(person: str, start: datetime) -> list[Event]:
    who = sso(person)
    recon = [
        ct(
            "ListUsers",
            "iam",
            identity=who,
            error="AccessDenied",
            when=start + timedelta(seconds=i),
        )
        for i in range(35)
    ]
    key = ct(
        "CreateAccessKey",
        identity=who,
        params={"userName": "bob"},
        when=start + timedelta(minutes=5),
    )
    stop = ct(
        "StopLogging",
        "cloudtrail",
        identity=who,
        params={"name": "t"},
        when=start + timedelta(minutes=10),
    )
    return [*recon, key, stop]


def _incidents(session: Session) -> list[tuple[Incident, list[str]]]:
    """Every stored incident with its anomalies, in id order (``updated_at`` aside)."""
    out = []
    for incident in sorted(repo.list_incidents(session, limit=10_000), key=lambda i: i.id):
        shown, members = repo.get_incident(session, incident_id=incident.id)
        out.append((shown, sorted(a.id for a in members)))
    return out


def _content(incident: Incident) -> tuple[object, ...]:
    return (
        incident.id,
        incident.title,
        incident.severity,
        incident.score,
        incident.explanation,
        incident.tactics,
        incident.account_ids,
        incident.first_seen,
        incident.last_seen,
        sorted(incident.anomaly_ids),
    )


def test_correlation_is_a_few_statements_for_many_incidents(
    db_session: Session, clock: FixedClock
) -> None:
    s = scorer(MemoryStore())
    events = [
        e for n in range(6) for e in _chain_events(f"p{n}@example.com", T0 + timedelta(hours=3 * n))
    ]
    stored = repo.save_anomalies(db_session, s.score_and_commit(events).anomalies, clock=clock)
    with _statements(db_session) as sent:
        incidents = repo.correlate_incidents(db_session, stored, clock=clock)
    # Read the anomalies, read the incidents, write the incidents, write their links.
    assert sent == ["SELECT", "SELECT", "INSERT", "INSERT", "SELECT"]  # + the destinations
    assert [_content(i) for i in incidents] == [_content(i) for i in build_incidents(stored)]
    assert len(incidents) == 6
    assert all(len(i.anomaly_ids) == 3 for i in incidents)
    with _statements(db_session) as sent:
        again = repo.correlate_incidents(db_session, stored, clock=clock)
    # Now they exist: their links are read too, and none is added.
    assert sent == ["SELECT", "SELECT", "SELECT", "INSERT", "SELECT"]  # + the destinations
    assert again == incidents
    db_session.commit()
    assert db_session.scalar(select(func.count()).select_from(IncidentRecord)) == 6
    assert db_session.scalar(select(func.count()).select_from(IncidentAnomaly)) == 18


def test_a_chain_that_grows_stays_one_incident(db_session: Session, clock: FixedClock) -> None:
    s = scorer(MemoryStore())
    *recon, key, stop = _chain_events("pat", T0)
    later = repo.save_anomalies(db_session, s.score_and_commit([key, stop]).anomalies, clock=clock)
    (incident,) = repo.correlate_incidents(db_session, later, clock=clock)
    assert len(incident.anomaly_ids) == 2
    held = db_session.get(IncidentRecord, incident.id)  # the session now holds the record
    assert held is not None
    assert len(held.links) == 2
    # The reconnaissance before it arrives late: the chain starts earlier, same incident.
    earlier = repo.save_anomalies(db_session, s.score_and_commit(recon).anomalies, clock=clock)
    (grown,) = repo.correlate_incidents(db_session, earlier, clock=clock)
    assert grown.id == incident.id
    assert set(incident.anomaly_ids) < set(grown.anomaly_ids)
    assert len(grown.anomaly_ids) == 3
    # Three stages score at least as high as two: the incident now reads as the longer chain.
    (chain,) = build_incidents([*later, *earlier])
    assert grown.score == chain.score >= incident.score
    assert (grown.title, grown.explanation) == (chain.title, chain.explanation)
    assert grown.title != incident.title
    assert (grown.first_seen, grown.last_seen) == (T0, incident.last_seen)
    assert len(held.links) == 3
    assert held.title == grown.title
    db_session.commit()
    assert repo.get_incident(db_session, incident_id=incident.id)[0] == grown


def test_small_chunks_give_the_same_results(
    db_session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo, "_CHUNK", 2)
    s = scorer(MemoryStore())
    events = [
        e for n in range(5) for e in _chain_events(f"p{n}@example.com", T0 + timedelta(hours=3 * n))
    ]
    found = s.score_and_commit(events).anomalies
    stored = repo.save_anomalies(db_session, found, clock=clock)
    assert stored == found
    incidents = repo.correlate_incidents(db_session, stored, clock=clock)
    assert [_content(i) for i in incidents] == [_content(i) for i in build_incidents(stored)]
    identities = {a.identity for a in stored if a.identity}
    assert repo.correlate_pending(db_session, identities, clock=clock) == incidents


def test_correlate_pending_gives_the_incidents_of_per_batch_correlation(
    db_session: Session,
) -> None:
    events = _noisy(2400)
    batches = [events[i : i + 300] for i in range(0, len(events), 300)]

    s = scorer(MemoryStore())
    per_batch = sum(repo.score_and_store(db_session, s, b).incidents for b in batches)
    inline = _incidents(db_session)
    assert per_batch > len(inline) >= 8  # some chains were correlated more than once
    for model in (IncidentAnomaly, IncidentRecord, AnomalyRecord):
        db_session.execute(delete(model))
    db_session.commit()

    s = scorer(MemoryStore())
    pending: set[str] = set()
    runs = 0
    for index, batch in enumerate(batches):
        summary = repo.score_and_store(db_session, s, batch, correlate=False)
        assert summary.incidents == 0
        assert list(summary.identities) == sorted(set(summary.identities))
        pending.update(summary.identities)
        if index % 3 == 2:
            repo.correlate_pending(db_session, pending, clock=s.clock)
            db_session.commit()
            pending.clear()
            runs += 1
    repo.correlate_pending(db_session, pending, clock=s.clock)
    db_session.commit()
    assert runs == 2
    assert _incidents(db_session) == inline


def test_correlate_pending_looks_only_at_what_changed_since(
    db_session: Session, clock: FixedClock
) -> None:
    s = scorer(MemoryStore())
    stored = repo.save_anomalies(
        db_session, s.score_and_commit(_chain_events("pat", T0)).anomalies, clock=clock
    )
    identities = {a.identity for a in stored if a.identity}
    assert (
        repo.correlate_pending(
            db_session, identities, clock=clock, since=clock() + timedelta(days=1)
        )
        == []
    )
    assert repo.correlate_pending(db_session, ["nobody", ""], clock=clock) == []
    (incident,) = repo.correlate_pending(db_session, identities, clock=clock)
    assert len(incident.anomaly_ids) == 3
    # A day later, nothing is new any more.
    later = FixedClock(clock() + timedelta(days=1, seconds=1))
    assert repo.correlate_pending(db_session, identities, clock=later) == []


# --- the whole step ----------------------------------------------------------------------------


def test_suppressions_passed_in_replace_the_stored_ones(db_session: Session) -> None:
    repo.add_suppression(db_session, detector="aws.cloudtrail-logging-impaired", clock=FixedClock())
    guard = ct("DeleteDetector", "guardduty", when=T0)
    stop = ct("StopLogging", "cloudtrail", identity=sso(), params={"name": "t"}, when=T0)
    muted = repo.score_and_store(
        db_session,
        scorer(MemoryStore()),
        [guard, stop],
        suppressions=[SuppressionRule("aws.guardduty-disabled")],
    )
    assert (muted.anomalies, muted.suppressed) == (1, 1)
    assert [a.detector for a in repo.list_anomalies(db_session)] == [
        "aws.cloudtrail-logging-impaired"
    ]
    # An empty list is the caller's word that nothing is suppressed.
    loud = repo.score_and_store(
        db_session,
        scorer(MemoryStore()),
        [ct("DeleteDetector", "guardduty", when=T0 + timedelta(days=2))],
        suppressions=[],
    )
    assert (loud.anomalies, loud.suppressed) == (1, 0)
    # None reads them from the database.
    read = repo.score_and_store(
        db_session,
        scorer(MemoryStore()),
        [ct("StopLogging", "cloudtrail", params={"name": "t"}, when=T0 + timedelta(days=3))],
    )
    assert (read.anomalies, read.suppressed) == (0, 1)


def test_a_quiet_batch_with_cached_suppressions_sends_no_sql(db_session: Session) -> None:
    quiet = [ct("ListBuckets", "s3", when=T0 + timedelta(seconds=i)) for i in range(50)]
    with _statements(db_session) as sent:
        summary = repo.score_and_store(
            db_session, scorer(MemoryStore()), quiet, correlate=False, suppressions=[]
        )
    assert (summary.events, summary.anomalies, summary.identities) == (50, 0, ())
    assert sent == []


def test_the_summary_names_the_identities_stored(db_session: Session) -> None:
    events = [*_chain_events("sam", T0), *_chain_events("pat", T0)]
    summary = repo.score_and_store(db_session, scorer(MemoryStore()), events, correlate=False)
    assert summary.incidents == 0
    role = "arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_0123456789abcdef"
    assert summary.identities == (f"{role}/pat", f"{role}/sam")
    assert db_session.scalar(select(func.count()).select_from(IncidentRecord)) == 0


def test_a_repeat_folded_into_a_stored_anomaly_is_not_new(db_session: Session) -> None:
    """``StoreSummary.new`` (what ``harvester_anomalies_total`` counts) holds first sightings."""
    first = repo.score_and_store(
        db_session, scorer(MemoryStore()), [ct("DeleteDetector", "guardduty", when=T0)]
    )
    assert first.new == (("aws.guardduty-disabled", first_severity(db_session)),)
    # The same finding again, a minute later: merged into the stored one, not new.
    again = repo.score_and_store(
        db_session,
        scorer(MemoryStore()),
        [ct("DeleteDetector", "guardduty", when=T0 + timedelta(minutes=1))],
    )
    assert (again.anomalies, again.new) == (1, ())
    assert len(repo.list_anomalies(db_session)) == 1


def first_severity(session: Session) -> str:
    (stored,) = repo.list_anomalies(session)
    return stored.severity.value
