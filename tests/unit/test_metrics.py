"""Metric names, bounded labels, the recording helpers, the inventory gauges, health files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from harvester import health_files
from harvester import metrics as m
from harvester import metrics_inventory as inv
from harvester.aws.errors import ErrorCode, convert
from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.models import Account, DeadLetter, ProcessedObject, Source
from harvester.detect.model import Severity
from harvester.detect.repository import StoreSummary
from harvester.parse.errors import CorruptObjectError
from harvester.pipeline import DispatchResult, ObjectResult, ObjectsResult, SourceRunResult

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^harvester_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
UNITS = ("seconds", "bytes")


# --- names -------------------------------------------------------------------------------------


def declared_families() -> list[tuple[str, str, tuple[str, ...]]]:
    """(family name, type, label names) of everything the code can export."""
    return [(name, kind, labels) for name, (kind, labels) in inv.exported_families().items()]


@pytest.mark.parametrize("family", declared_families(), ids=lambda f: f[0])
def test_every_metric_name_follows_the_naming_rule(
    family: tuple[str, str, tuple[str, ...]],
) -> None:
    name, kind, labels = family
    exposed = name + "_total" if kind == "counter" else name
    assert NAME.match(exposed), exposed
    tokens = exposed.split("_")
    if kind == "counter":
        assert tokens[-1] == "total"
        tokens = tokens[:-1]
    else:
        assert tokens[-1] not in ("total", "count", "sum", "bucket", "created")
    if kind in ("histogram", "gaugehistogram"):
        assert tokens[-1] in UNITS, f"{exposed}: a histogram's name ends with its unit"
    # A unit is the last word: harvester_<noun>_<unit>, never harvester_seconds_of_x.
    for unit in UNITS:
        if unit in tokens[1:-1]:
            pytest.fail(f"{exposed}: '{unit}' must be the last word of the name")
    if "timestamp" in tokens:
        assert exposed.endswith("_timestamp_seconds")
    # No label may carry an object key, an address or an ARN.
    assert not set(labels) & {"key", "bucket", "ip", "address", "arn", "principal", "role"}


def test_no_two_families_share_a_series_name() -> None:
    # A gauge named like a counter's family (x and x_total) reads as one metric in PromQL.
    families = declared_families()
    stems = [name.removesuffix("_total") for name, _, _ in families]
    assert len(stems) == len(set(stems))
    assert len(families) == len(m.METRICS) + len(m.COLLECTED) + len(inv.INVENTORY_METRICS)


def test_collectors_yield_what_they_declare() -> None:
    described = {family.name for family in m.QueueCollector(None).describe()}  # type: ignore[arg-type]
    assert described | {"harvester_build_info"} == set(m.COLLECTED)
    (build,) = m.BuildInfoCollector().collect()
    assert build.name == "harvester_build_info"
    assert tuple(build.samples[0].labels) == m.COLLECTED["harvester_build_info"][1]


def test_every_worker_metric_declares_its_label_sets() -> None:
    for metric in m.METRICS:
        (described,) = metric.describe()
        assert set(m.LABEL_VALUES[described.name]) == set(metric._labelnames), described.name
        assert metric._labelnames, f"{described.name}: a metric without labels writes at import"


def test_gauges_choose_a_multiprocess_mode_on_purpose() -> None:
    gauges = [metric for metric in m.METRICS if metric._type == "gauge"]
    assert gauges
    source = (REPO / "harvester" / "metrics.py").read_text()
    # Every Gauge(...) call names its mode: prometheus_client's default ("all") keeps one
    # series per pid forever.
    assert source.count("Gauge(\n") == source.count("multiprocess_mode=") == len(gauges)


def test_queue_and_task_labels_are_the_celery_ones() -> None:
    import workers.tasks  # noqa: F401  registers the tasks
    from harvester.settings import load_settings
    from workers.app import TASK_QUEUES, queue_names

    assert set(m.QUEUES) == set(queue_names(load_settings({})))
    assert set(TASK_QUEUES) == set(m.TASKS) - {"other"}


# --- bounded labels ----------------------------------------------------------------------------


def harvester_samples(
    registry: CollectorRegistry = REGISTRY,
) -> list[tuple[str, str, dict[str, str], float]]:
    out = []
    for family in registry.collect():
        if family.name.startswith("harvester_"):
            for sample in family.samples:
                out.append((family.name, sample.name, dict(sample.labels), sample.value))
    return out


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _exercise_with_garbage() -> None:
    """Feed every helper values from outside the label sets."""
    corrupt = CorruptObjectError("bad_gzip", "CRC check failed", byte_offset=12)
    weird = ObjectsResult(
        7,
        [
            ObjectResult("AWSLogs/1/k.json.gz", "done", events=3, bytes=100),
            ObjectResult("k2", "corrupt", events=1, bytes=10, error=str(corrupt)),
            ObjectResult("k3", "corrupt", error="s3://bucket/AWSLogs/secret-key: unreadable"),
            ObjectResult("k4", "exploded"),
        ],
    )
    m.record_objects(weird, kind="cloudtrail", seconds=0.5)
    m.record_objects(weird, kind="arn:aws:iam::123456789012:role/x", seconds=0.5)
    m.record_source_run(SourceRunResult(7, "weird-status"), kind=None, seconds=1.0)
    m.record_source_run(SourceRunResult(7, "ok"), kind="eks", seconds=1.0)
    new = (("aws.root-activity", Severity.high.value), ("10.0.0.1", "catastrophic"))
    m.record_score(StoreSummary(10, 2, 2, 0, 1, 1, new=new), 0.2)
    m.record_dispatch(DispatchResult(due=5, dispatched=4, busy=1), datetime.now(UTC), queue="nope")
    m.worker_process_started(["harvest", "celery"])
    m.record_beat_state(leader=True)
    m.record_task_retry("harvest.source")
    m.record_task_retry("evil.task")
    m.record_dead_letter("score.batch")
    hooks = dict(m.aws_event_hooks())
    hooks["after-call-error"](
        event_name="after-call-error.s3.DeleteBucket", exception=NoCredentialsError()
    )
    hooks["after-call-error"](event_name="after-call-error.frobnicator.Go", exception=ValueError())


def test_labels_take_values_from_fixed_sets_only() -> None:
    _exercise_with_garbage()
    seen = 0
    for family, sample, labels, _ in harvester_samples():
        if family not in m.LABEL_VALUES:
            continue
        allowed = m.LABEL_VALUES[family]
        for label, label_value in labels.items():
            if label == "le":
                continue
            if label == "detector":
                assert label_value in m.detector_ids(), (sample, labels)
            elif allowed[label]:
                assert label_value in allowed[label], (sample, labels)
            seen += 1
    assert seen > 30
    assert value("harvester_parse_errors_total", kind="cloudtrail", reason="other") >= 1
    assert value("harvester_anomalies_total", detector="other", severity="other") >= 1
    assert value("harvester_s3_requests_total", operation="other", outcome="no_credentials") >= 1
    assert value("harvester_aws_errors_total", service="other", code="other") >= 1
    assert value("harvester_worker_processes", queue="other") == 1


def test_record_objects_counts_outcomes_bytes_events_and_reasons() -> None:
    before = {
        "done": value("harvester_objects_total", kind="eks", outcome="done"),
        "corrupt": value("harvester_objects_total", kind="eks", outcome="corrupt"),
        "bytes": value("harvester_object_bytes_total", kind="eks"),
        "events": value("harvester_events_total", kind="eks"),
        "truncated": value("harvester_parse_errors_total", kind="eks", reason="truncated"),
        "runs": value("harvester_object_run_duration_seconds_count", kind="eks"),
    }
    corrupt = CorruptObjectError("truncated", "ends inside a gzip member", record_index=4)
    result = ObjectsResult(
        1,
        [
            ObjectResult("a", "done", events=40, bytes=4000),
            ObjectResult("b", "done", events=2, bytes=200),
            ObjectResult("c", "corrupt", events=4, bytes=50, error=str(corrupt)),
            ObjectResult("d", "missing", error="object s3://b/d does not exist."),
        ],
    )
    m.record_objects(result, kind="eks", seconds=2.0)
    assert value("harvester_objects_total", kind="eks", outcome="done") - before["done"] == 2
    assert value("harvester_objects_total", kind="eks", outcome="corrupt") - before["corrupt"] == 1
    assert value("harvester_object_bytes_total", kind="eks") - before["bytes"] == 4250
    assert value("harvester_events_total", kind="eks") - before["events"] == 46
    assert (
        value("harvester_parse_errors_total", kind="eks", reason="truncated") - before["truncated"]
        == 1
    )
    assert value("harvester_object_run_duration_seconds_count", kind="eks") - before["runs"] == 1


def test_record_score_and_dispatch() -> None:
    scored = value("harvester_score_events_total", outcome="scored")
    dupes = value("harvester_score_events_total", outcome="duplicate")
    errors_runs = value("harvester_score_batch_duration_seconds_count", outcome="detector_errors")
    m.record_score(
        StoreSummary(events=100, duplicates=30, anomalies=2, suppressed=1, incidents=0, errors=1),
        0.4,
    )
    assert value("harvester_score_events_total", outcome="scored") - scored == 70
    assert value("harvester_score_events_total", outcome="duplicate") - dupes == 30
    assert (
        value("harvester_score_batch_duration_seconds_count", outcome="detector_errors")
        - errors_runs
        == 1
    )
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    m.record_dispatch(DispatchResult(due=3, dispatched=2, busy=1), when)
    assert (
        value("harvester_dispatch_last_success_timestamp_seconds", queue="harvest")
        == when.timestamp()
    )


# --- botocore hooks ----------------------------------------------------------------------------


def _stubbed_s3() -> tuple[Any, Stubber]:
    core = botocore.session.Session()
    for event, handler in m.aws_event_hooks():
        core.register(event, handler)
    client = core.create_client(
        "s3", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def test_s3_hooks_count_requests_by_operation_and_outcome() -> None:
    client, stubber = _stubbed_s3()
    ok = value("harvester_s3_requests_total", operation="ListObjectsV2", outcome="ok")
    denied = value("harvester_s3_requests_total", operation="GetObject", outcome="access_denied")
    errors = value("harvester_aws_errors_total", service="s3", code="access_denied")
    throttled = value("harvester_s3_requests_total", operation="HeadObject", outcome="throttled")
    stubber.add_response("list_objects_v2", {"KeyCount": 0}, {"Bucket": "b"})
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    stubber.add_client_error("head_object", "SlowDown", "Please reduce your request rate.", 503)
    with stubber:
        client.list_objects_v2(Bucket="b")
        with pytest.raises(ClientError):
            client.get_object(Bucket="b", Key="AWSLogs/111111111111/x.json.gz")
        with pytest.raises(ClientError):
            client.head_object(Bucket="b", Key="k")
    assert value("harvester_s3_requests_total", operation="ListObjectsV2", outcome="ok") - ok == 1
    assert (
        value("harvester_s3_requests_total", operation="GetObject", outcome="access_denied")
        - denied
        == 1
    )
    assert value("harvester_aws_errors_total", service="s3", code="access_denied") - errors == 1
    assert (
        value("harvester_s3_requests_total", operation="HeadObject", outcome="throttled")
        - throttled
        == 1
    )


def test_error_hook_converts_exceptions_for_any_service() -> None:
    before = value("harvester_aws_errors_total", service="sts", code="endpoint_unreachable")
    s3_before = sum(
        v for f, _, labels, v in harvester_samples() if f == "harvester_s3_requests" and labels
    )
    hooks = dict(m.aws_event_hooks())
    hooks["after-call-error"](
        event_name="after-call-error.sts.AssumeRole",
        exception=EndpointConnectionError(endpoint_url="https://sts.amazonaws.com"),
        context={},
    )
    assert (
        value("harvester_aws_errors_total", service="sts", code="endpoint_unreachable") - before
        == 1
    )
    s3_after = sum(
        v for f, _, labels, v in harvester_samples() if f == "harvester_s3_requests" and labels
    )
    assert s3_after == s3_before  # an STS call is not an S3 request


def test_a_failing_hook_never_breaks_the_call() -> None:
    hooks = dict(m.aws_event_hooks())
    # Nonsense arguments: the hook must swallow its own failure.
    hooks["after-call"](event_name="after-call.s3.GetObject", http_response=object(), parsed=42)
    hooks["after-call-error"](event_name=None, exception="not an exception")


# --- multiprocess helpers ----------------------------------------------------------------------


def test_prepare_multiprocess_dir_wipes_only_metric_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "gauge_livesum_123.db").write_bytes(b"old")
    (directory / "notes.txt").write_text("keep me")
    assert m.prepare_multiprocess_dir(directory) == directory
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]
    assert os.environ[m.MULTIPROC_ENV] == str(directory)
    created = m.prepare_multiprocess_dir(tmp_path / "new" / "dir")
    assert created.is_dir()


def test_importing_the_metrics_modules_writes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "mp"
    directory.mkdir()
    env = {**os.environ, m.MULTIPROC_ENV: str(directory)}
    code = (
        "import harvester.metrics, harvester.metrics_inventory, harvester.cli.metrics_cmds, "
        "harvester.health_files; assert harvester.metrics.multiprocess_active()"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=REPO, timeout=60)
    assert list(directory.iterdir()) == []


def test_prune_ignores_the_living_and_other_files(tmp_path: Path) -> None:
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    (tmp_path / "counter_1.db").write_bytes(b"")
    assert m.prune_dead_processes(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 2


# --- inventory gauges --------------------------------------------------------------------------

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _source(
    session: Session,
    account: Account,
    *,
    kind: str = "cloudtrail",
    cluster: str = "",
    health: str = "ok",
    reason: str | None = None,
    last_success: datetime | None = None,
    enabled: bool = True,
    created: datetime = NOW - timedelta(days=10),
) -> Source:
    source = Source(
        kind=kind,
        account_pk=account.id,
        cluster_name=cluster,
        bucket="trail-logs",
        region="us-east-1",
        prefix="AWSLogs",
        enabled=enabled,
        health=health,
        health_reason=reason,
        last_success_at=last_success,
        created_at=created,
        updated_at=created,
    )
    session.add(source)
    session.flush()
    return source


def _object(
    session: Session, source: Source, key: str, when: datetime, status: str = "done"
) -> None:
    session.add(
        ProcessedObject(
            source_id=source.id,
            key=key,
            etag=key,
            scope="us-east-1",
            object_time=when,
            status=status,
            first_seen_at=when,
            updated_at=when,
        )
    )


def _anomaly(
    session: Session, ident: str, detector: str, severity: str, status: str = "open"
) -> None:
    session.add(
        AnomalyRecord(
            id=ident,
            dedup_key=ident,
            detector=detector,
            title="t",
            severity=severity,
            severity_rank=1,
            score=50,
            first_seen=NOW,
            last_seen=NOW,
            count=1,
            explanation="e",
            evidence=[],
            mitre_tactics=[],
            mitre_techniques=[],
            status=status,
            created_at=NOW,
            updated_at=NOW,
        )
    )


@pytest.fixture
def inventory(sqlite_engine: Any) -> sessionmaker[Session]:
    sessions = sessionmaker(sqlite_engine, expire_on_commit=False)
    denied = convert(
        ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2"
        ),
        operation="ListObjectsV2",
        bucket="trail-logs",
        role_arn="arn:aws:iam::111111111111:role/reader",
    )
    with sessions.begin() as session:
        prod = Account(account_id="111111111111", name="prod", created_at=NOW, updated_at=NOW)
        slow = Account(
            account_id="222222222222",
            name="slow",
            cadence_seconds=3600,
            created_at=NOW,
            updated_at=NOW,
        )
        off = Account(
            account_id="333333333333", name="off", enabled=False, created_at=NOW, updated_at=NOW
        )
        session.add_all([prod, slow, off])
        session.flush()
        fresh = _source(session, prod, last_success=NOW - timedelta(minutes=4))
        _object(session, fresh, "a", NOW - timedelta(minutes=10))
        _object(session, fresh, "b", NOW - timedelta(minutes=3), status="queued")
        stale = _source(
            session,
            prod,
            kind="eks",
            cluster="payments",
            health="degraded",
            reason=f"{denied} — {denied.remedy}",
            last_success=NOW - timedelta(minutes=16),
        )
        _object(session, stale, "c", NOW - timedelta(hours=2))
        # 30 minutes without success is fine at an hourly cadence.
        hourly = _source(session, slow, last_success=NOW - timedelta(minutes=30))
        _object(session, hourly, "d", NOW - timedelta(minutes=40))
        # What the pipeline records after a run wins over the ledger's key times.
        hourly.newest_object_at = NOW - timedelta(minutes=35)
        _source(
            session,
            slow,
            kind="eks",
            cluster="new-one",
            health="new",
            created=NOW - timedelta(hours=4),
        )
        _source(session, off, last_success=NOW - timedelta(days=5))
        _anomaly(session, "1", "aws.root-activity", "high")
        _anomaly(session, "2", "aws.root-activity", "high")
        _anomaly(session, "3", "k8s.pod-exec", "medium")
        _anomaly(session, "4", "k8s.pod-exec", "medium", status="resolved")
        _anomaly(session, "5", "retired.detector", "low")
        session.add(
            DeadLetter(task="score.batch", task_id="t", args="[]", reason="r", created_at=NOW)
        )
    return sessions


def collect(collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def get(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_inventory_gauges(inventory: sessionmaker[Session]) -> None:
    collector = inv.InventoryCollector(inventory, clock=lambda: NOW)
    s = collect(collector)
    assert get(s, "harvester_inventory_up") == 1
    assert get(s, "harvester_sources", kind="cloudtrail", health="ok") == 2
    assert get(s, "harvester_sources", kind="cloudtrail", health="disabled") == 1
    assert get(s, "harvester_sources", kind="eks", health="degraded") == 1
    assert get(s, "harvester_sources", kind="eks", health="new") == 1
    assert get(s, "harvester_sources", kind="eks", health="ok") == 0
    # 16 minutes > 3 × 5 minutes; the new EKS source waited 4 hours > 3 × its hourly cadence.
    assert get(s, "harvester_sources_stale", kind="eks") == 2
    assert get(s, "harvester_sources_stale", kind="cloudtrail") == 0
    assert get(s, "harvester_sources_degraded", kind="eks", reason="access_denied") == 1
    assert get(s, "harvester_sources_degraded", kind="eks", reason="throttled") == 0
    # Lag counts done objects only (the queued one at -3 min is not harvested yet).
    assert get(s, "harvester_sources_lag_quantile_seconds", kind="cloudtrail", quantile="1") == 2100
    assert (
        get(s, "harvester_sources_lag_quantile_seconds", kind="cloudtrail", quantile="0.5") == 600
    )
    assert get(s, "harvester_sources_lag_seconds_bucket", kind="cloudtrail", le="600.0") == 1
    assert get(s, "harvester_sources_lag_seconds_bucket", kind="cloudtrail", le="+Inf") == 2
    assert get(s, "harvester_sources_lag_seconds_gcount", kind="eks") == 1
    assert get(s, "harvester_inventory_per_source_series") == 1
    infos = [key for key in s if key[0] == "harvester_source_info"]
    assert len(infos) == 5
    degraded = [dict(labels) for name, labels in infos if dict(labels)["health"] == "degraded"]
    assert degraded == [
        {
            "source": degraded[0]["source"],
            "kind": "eks",
            "account": "111111111111",
            "cluster": "payments",
            "health": "degraded",
            "reason": "access_denied",
        }
    ]
    assert get(s, "harvester_source_stale", source=degraded[0]["source"], kind="eks") == 1
    assert get(s, "harvester_source_lag_seconds", source=degraded[0]["source"], kind="eks") == 7200
    assert get(s, "harvester_anomalies_open", detector="aws.root-activity", severity="high") == 2
    assert get(s, "harvester_anomalies_open", detector="k8s.pod-exec", severity="medium") == 1
    assert get(s, "harvester_anomalies_open", detector="other", severity="low") == 1
    assert get(s, "harvester_dead_letters_stored") == 1
    for (name, labels), _ in s.items():
        for label, label_value in labels:
            if label in inv.INVENTORY_LABEL_VALUES and name != "harvester_anomalies_open":
                assert label_value in inv.INVENTORY_LABEL_VALUES[label] or (
                    label == "reason" and label_value == ""
                ), (name, labels)


def test_inventory_aggregates_above_the_per_source_limit(inventory: sessionmaker[Session]) -> None:
    config = inv.InventoryConfig(per_source_limit=4)
    s = collect(inv.InventoryCollector(inventory, config=config, clock=lambda: NOW))
    assert get(s, "harvester_inventory_per_source_series") == 0
    assert not [key for key in s if key[0].startswith("harvester_source_")]
    assert get(s, "harvester_sources", kind="cloudtrail", health="ok") == 2


def test_inventory_is_cached_between_scrapes(inventory: sessionmaker[Session]) -> None:
    ticks = iter([0.0, 5.0, 20.0])
    collector = inv.InventoryCollector(inventory, clock=lambda: NOW, monotonic=lambda: next(ticks))
    assert get(collect(collector), "harvester_dead_letters_stored") == 1
    with inventory.begin() as session:
        session.add(DeadLetter(task="t", task_id="2", args="[]", reason="r", created_at=NOW))
    assert get(collect(collector), "harvester_dead_letters_stored") == 1  # 5 s: the cached value
    assert get(collect(collector), "harvester_dead_letters_stored") == 2  # 20 s: computed again


def test_an_unreachable_database_is_reported_not_raised() -> None:
    def broken() -> Session:
        raise ConnectionRefusedError("postgresql://user:hunter2@db/harvester")

    s = collect(inv.InventoryCollector(broken, clock=lambda: NOW))  # type: ignore[arg-type]
    assert s == {("harvester_inventory_up", ()): 0.0}


@pytest.mark.parametrize(
    ("code", "message", "status", "operation"),
    [
        (
            "AccessDenied",
            "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: s3:ListBucket",
            403,
            "ListObjectsV2",
        ),
        ("KMS.AccessDeniedException", "no kms:Decrypt", 403, "GetObject"),
        ("AccessDenied", "not authorized to perform: sts:AssumeRole", 403, "AssumeRole"),
        ("NoSuchBucket", "The specified bucket does not exist", 404, "ListObjectsV2"),
        ("NoSuchKey", "nope", 404, "GetObject"),
        ("PermanentRedirect", "expecting 'eu-west-1'", 301, "ListObjectsV2"),
        ("SlowDown", "Please reduce your request rate.", 503, "ListObjectsV2"),
        ("InternalError", "We encountered an internal error.", 500, "ListObjectsV2"),
        ("ExpiredToken", "The provided token has expired.", 400, "ListObjectsV2"),
        ("InvalidAccessKeyId", "key does not exist", 403, "ListObjectsV2"),
        ("RequestTimeTooSkewed", "too skewed", 403, "ListObjectsV2"),
        ("InvalidArgument", "bad prefix", 400, "ListObjectsV2"),
        ("PreconditionFailed", "etag", 412, "GetObject"),
        ("ResourceNotFoundException", "no such cluster", 404, "DescribeCluster"),
        ("Teapot", "I am a teapot", 418, "ListObjectsV2"),
    ],
)
def test_health_reasons_reduce_to_the_error_code(
    code: str, message: str, status: int, operation: str
) -> None:
    error = convert(
        ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },  # type: ignore[typeddict-item]
            operation,
        ),
        operation=operation,
        bucket="trail-logs",
        key="AWSLogs/1/k.json.gz" if operation == "GetObject" else None,
        role_arn="arn:aws:iam::111111111111:role/reader",
    )
    # What the pipeline stores as a degraded source's health reason.
    assert inv.classify_reason(f"{error} — {error.remedy}") == error.code.value


@pytest.mark.parametrize(
    "exc",
    [NoCredentialsError(), EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")],
)
def test_health_reasons_of_connection_errors(exc: Exception) -> None:
    error = convert(exc, operation="ListObjectsV2", bucket="trail-logs")
    assert inv.classify_reason(f"{error} — {error.remedy}") == error.code.value


def test_health_reason_with_a_leading_code_and_unknown_text() -> None:
    assert inv.classify_reason("throttled: whatever the sentence") == "throttled"
    assert inv.classify_reason("the secret key cannot decrypt") == ErrorCode.OTHER.value
    assert inv.classify_reason(None) == "other"


# --- health files ------------------------------------------------------------------------------


def test_health_files_lifecycle(tmp_path: Path) -> None:
    files = health_files.HealthFiles(tmp_path / "health")
    assert health_files.main(["check", str(files.ready)]) == 1
    files.mark_ready()
    assert health_files.main(["check", str(files.ready)]) == 0
    assert health_files.main(["check", str(files.heartbeat), "--max-age", "60"]) == 0
    health_files.touch(files.heartbeat, now=1_000.0)
    assert health_files.check(files.heartbeat, max_age=60, clock=lambda: 1_030.0) is None
    problem = health_files.check(files.heartbeat, max_age=60, clock=lambda: 1_061.0)
    assert problem is not None
    assert "61s old" in problem
    assert health_files.main(["check", str(files.heartbeat), "--max-age", "60"]) == 1
    files.beat()
    assert health_files.main(["check", str(files.heartbeat), "--max-age", "60"]) == 0
    files.mark_not_ready()
    assert not files.ready.exists()
    assert files.heartbeat.exists()
    files.clear()
    assert list(files.directory.iterdir()) == []


def test_health_files_from_env() -> None:
    assert health_files.health_files_from_env({}) is None
    found = health_files.health_files_from_env({"HARVESTER_HEALTH_DIR": "/run/harvester"})
    assert found is not None
    assert found.heartbeat == Path("/run/harvester/heartbeat")


def test_probe_command_runs_as_a_module(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "harvester.health_files", "check", str(tmp_path / "ready")],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
