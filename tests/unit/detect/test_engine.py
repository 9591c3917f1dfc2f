"""The engine: dedup of events and anomalies, the two-phase commit, suppressions, records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from harvester.detect.engine import merge_anomaly, scan_events
from harvester.detect.model import Severity, SuppressionRule
from harvester.detect.state import MemoryStore
from tests.unit.detect.builders import NOW, T0, ct, detect, k8s, scorer, sso


def _stop(**kwargs: object) -> object:
    return ct("StopLogging", "cloudtrail", params={"name": "main"}, **kwargs)  # type: ignore[arg-type]


def test_anomaly_carries_explanation_evidence_and_mitre() -> None:
    event = ct("StopLogging", "cloudtrail", params={"name": "main"}, identity=sso())
    (anomaly,) = detect(event)
    assert anomaly.detector == "aws.cloudtrail-logging-impaired"
    assert anomaly.severity is Severity.critical
    assert 0 < anomaly.score <= 100
    assert "cloudtrail:StopLogging" in anomaly.explanation
    assert (
        anomaly.principal
        == "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/pat@example.com"
    )
    assert anomaly.identity
    assert anomaly.identity.endswith("/pat@example.com")
    assert anomaly.account_id == "111122223333"
    assert anomaly.source_ip == "81.2.69.142"
    assert anomaly.event_ids == [event.id]
    (evidence,) = anomaly.evidence
    assert (evidence.bucket, evidence.key, evidence.index) == ("bucket", "AWSLogs/test.json.gz", 0)
    assert anomaly.mitre_tactics == ("TA0005",)
    assert "T1562.008" in anomaly.mitre_techniques
    assert anomaly.id == f"an-{anomaly.dedup_key[:16]}"


def test_repeats_within_the_dedup_window_raise_one_anomaly() -> None:
    events = [_stop(when=T0 + timedelta(minutes=m)) for m in (0, 10, 50)]
    (anomaly,) = detect(*events)
    assert anomaly.count == 3
    assert anomaly.first_seen == T0
    assert anomaly.last_seen == T0 + timedelta(minutes=50)
    assert "3 events in all" in anomaly.explanation


def test_repeats_across_batches_keep_the_same_dedup_key() -> None:
    s = scorer()
    first = s.score_and_commit([_stop(when=T0)]).anomalies
    second = s.score_and_commit([_stop(when=T0 + timedelta(hours=2))]).anomalies
    assert first[0].dedup_key == second[0].dedup_key
    merged = merge_anomaly(first[0], second[0])
    assert merged.count == 2
    assert merged.last_seen == T0 + timedelta(hours=2)


def test_a_new_dedup_window_is_a_new_anomaly() -> None:
    (a,) = detect(_stop(when=T0))
    (b,) = detect(_stop(when=T0 + timedelta(days=1)))
    assert a.dedup_key != b.dedup_key


def test_merging_the_same_anomaly_twice_changes_nothing() -> None:
    (anomaly,) = detect(_stop(), _stop())
    assert merge_anomaly(anomaly, anomaly) == anomaly


def test_a_redelivered_batch_changes_nothing() -> None:
    store = MemoryStore()
    s = scorer(store)
    batch = [_stop(), ct("DeleteDetector", "guardduty")]
    first = s.score_and_commit(batch)
    state_before = len(store)
    again = s.score_and_commit(batch)
    assert len(first.anomalies) == 2
    assert again.anomalies == []
    assert again.duplicates == 2
    assert len(store) == state_before


def test_events_repeated_inside_one_batch_count_once() -> None:
    event = _stop()
    result = scorer().score_and_commit([event, event])
    assert result.fresh == 1
    assert result.anomalies[0].count == 1


def test_uncommitted_batch_can_be_scored_again_after_abort() -> None:
    s = scorer()
    batch = [_stop()]
    result = s.score(batch)
    result.abort()
    again = s.score(batch)
    assert [a.dedup_key for a in again.anomalies] == [a.dedup_key for a in result.anomalies]


def test_a_claim_never_committed_expires_and_the_batch_is_redone() -> None:
    ticks = [0.0]
    store = MemoryStore(monotonic=lambda: ticks[0])
    s = scorer(store, processing_ttl=timedelta(minutes=5))
    batch = [_stop()]
    s.score(batch)  # the worker dies before committing
    assert s.score(batch).anomalies == []  # still claimed
    ticks[0] += 301
    assert len(s.score(batch).anomalies) == 1


def test_baselines_are_written_only_on_commit() -> None:
    store = MemoryStore()
    s = scorer(store)
    result = s.score([ct("ListBuckets", "s3", identity=sso())])
    assert len(store) == 0
    result.commit()
    assert len(store) > 0


def test_suppressions_drop_matching_anomalies() -> None:
    event = ct("StopLogging", "cloudtrail", params={"name": "t"}, identity=sso())
    rules = [SuppressionRule("aws.cloudtrail-logging-impaired", principal="*pat@example.com")]
    result = scorer().score_and_commit([event], suppressions=rules)
    assert result.anomalies == []
    assert [a.detector for a in result.suppressed] == ["aws.cloudtrail-logging-impaired"]


def test_expired_or_other_suppressions_do_not_apply() -> None:
    event = ct("StopLogging", "cloudtrail", params={"name": "t"}, identity=sso())
    rules = [
        SuppressionRule("aws.cloudtrail-logging-impaired", until=NOW - timedelta(seconds=1)),
        SuppressionRule("aws.guardduty-disabled"),
        SuppressionRule("*", principal="someone-else"),
        SuppressionRule("*", account="999999999999"),
    ]
    result = scorer().score_and_commit([event], suppressions=rules)
    assert len(result.anomalies) == 1


def test_routine_hits_are_learned_per_entity() -> None:
    s = scorer()
    first = s.score_and_commit([ct("RebootDBInstance", "rds", when=T0)])
    later = s.score_and_commit([ct("RebootDBInstance", "rds", when=T0 + timedelta(days=3))])
    other = s.score_and_commit(
        [ct("RebootDBInstance", "rds", identity=sso(), when=T0 + timedelta(days=3))]
    )
    assert [a.detector for a in first.anomalies] == ["aws.database-disruption"]
    # Done before by this actor: still reported, one step down and saying so.
    assert [(a.severity, a.detector) for a in later.anomalies] == [
        (Severity.low, "aws.database-disruption")
    ]
    assert "did this before (on 1 of the last 14 days)" in later.anomalies[0].explanation
    # Another actor's first time is the rule's severity.
    assert [a.severity for a in other.anomalies] == [first.anomalies[0].severity]


def test_disabled_detectors_do_not_run() -> None:
    s = scorer(disabled=frozenset(("aws.cloudtrail-logging-impaired",)))
    assert s.score_and_commit([_stop()]).anomalies == []


def test_requests_logged_before_they_were_decided_are_skipped() -> None:
    early = k8s("create", "pods", name="x", subresource="exec", stage="RequestReceived", code=101)
    assert detect(early) == []


def test_scan_events_merges_batches_and_builds_incidents() -> None:
    events = [_stop(when=T0 + timedelta(minutes=i)) for i in range(5)]
    report = scan_events(events, batch_size=2, clock=lambda: NOW)
    assert report.events == 5
    (anomaly,) = report.anomalies
    assert anomaly.count == 5
    assert report.incidents == []


def _mixed(count: int) -> list[object]:
    """Events that feed rules, baselines and burst counters: new networks, regions, denials."""
    events: list[object] = []
    for i in range(count):
        when = T0 + timedelta(seconds=10 * i)
        events.append(
            ct(
                "ListUsers",
                "iam",
                identity=sso(),
                error="AccessDenied",
                region=("us-east-1", "eu-west-1", "ap-south-1")[i % 3],
                when=when,
            )
        )
        events.append(
            ct(
                "CreateAccessKey",
                identity=sso(f"p{i % 3}@example.com"),
                params={"userName": f"u{i}"},
                ip=f"81.{i}.9.9",
                when=when,
            )
        )
    return events


def test_a_partly_redelivered_batch_counts_only_its_new_events() -> None:
    events = _mixed(40)
    stores = [MemoryStore(monotonic=lambda: 0.0) for _ in range(2)]
    redelivered, clean = (scorer(store, learning=timedelta(0)) for store in stores)
    for s in (redelivered, clean):
        s.score_and_commit(events[:40])  # type: ignore[arg-type]
    # The second batch repeats half of the first one; the clean scorer gets only what is new.
    again = redelivered.score_and_commit(events[20:80])  # type: ignore[arg-type]
    new = clean.score_and_commit(events[40:80])  # type: ignore[arg-type]
    assert (again.fresh, again.duplicates) == (40, 20)
    assert again.anomalies == new.anomalies
    assert {"behav.access-denied-burst", "behav.new-network"} <= {a.detector for a in new.anomalies}
    # The same baselines and counters: the repeated events were read for but not counted.
    assert dict(stores[0]._hashes) == dict(stores[1]._hashes)


def test_state_the_first_reads_did_not_cover_is_read_again() -> None:
    from harvester.detect.engine import _narrowed
    from harvester.detect.state import HashRead, HashValue, HashWrite

    store = MemoryStore()
    store.write([HashWrite("a", set={"x": "1", "y": "2"}), HashWrite("b", set={"z": "3"})])
    asked = [HashRead("a", ("x", "y"))]
    answers = store.read(asked)
    wanted = [HashRead("a", ("y",)), HashRead("b"), HashRead("a", ("x", "w")), HashRead("a")]
    assert _narrowed(store, wanted, asked, answers) == [
        HashValue({"y": "2"}, 2),
        HashValue({"z": "3"}, 1),
        HashValue({"x": "1"}, 2),
        HashValue({"x": "1", "y": "2"}, 2),
    ]


def test_a_retry_whose_state_write_failed_scores_its_events_again() -> None:
    class FailingWrites(MemoryStore):
        fail = True

        def confirm_and_write(self, *args: Any, **kwargs: Any) -> None:
            if self.fail:
                raise ConnectionError("Redis went away after the database commit")
            super().confirm_and_write(*args, **kwargs)

    store = FailingWrites()
    s = scorer(store)
    batch = [ct("StopLogging", "cloudtrail", identity=sso(), params={"name": "t"}, when=T0)]
    first = s.score(batch, owner="task-1")
    assert len(first.anomalies) == 1
    with pytest.raises(ConnectionError):
        first.commit()
    store.fail = False
    # Someone else's batch with the same events is a duplicate while the claims hold...
    assert s.score(batch, owner="task-2").fresh == 0
    # ...but the task's own retry scores them and keeps them.
    retry = s.score(batch, owner="task-1")
    assert (retry.fresh, len(retry.anomalies)) == (1, 1)
    retry.commit()
    assert s.score(batch, owner="task-1").fresh == 0
