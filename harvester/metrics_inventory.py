"""Inventory-level gauges computed from the database when Prometheus scrapes.

What no single worker knows: how many sources are healthy, degraded (and why), stale; how far
behind the newest harvested object each source is; how many anomalies are open. Served by
``harvester metrics serve``, one process for the whole fleet.

Per-source series (``harvester_source_*``, labelled with the source id) are exported only
while the inventory has at most ``per_source_limit`` sources; above that only the aggregates
(``harvester_sources_*``) are, so the number of series stays bounded whatever the inventory.

Definitions:

- **lag** of a source: now minus the time of the newest object harvested from it: its S3
  ``LastModified`` as the pipeline records it in ``sources.newest_object_at`` after each run,
  else the key time of the newest done object in the ledger. A source with nothing harvested
  yet has no lag (it counts as ``new``, and as stale once it has waited past the limit).
- **stale**: an enabled source whose last successful run (or, never run, its creation) is
  older than ``stale_factor`` times its cadence (the account's, else the default).
- **silent**: an enabled source whose harvests succeed but whose logs stopped, or never came
  (:mod:`harvester.silence`); ``harvester_sources{health="silent"}``.
- **reason** of a degraded source: its health reason reduced to an AWS error code
  (:class:`~harvester.aws.errors.ErrorCode`), so it can label a series.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from prometheus_client.metrics_core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from harvester.aws.errors import ErrorCode
from harvester.clock import Clock, utcnow
from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.models import Account, DeadLetter, ProcessedObject, Source
from harvester.db.notify_models import DestinationRecord, NotificationRecord
from harvester.metrics import (
    COLLECTED,
    KINDS,
    METRICS,
    SEVERITIES,
    detector_label,
    kind_label,
    severity_label,
)

__all__ = [
    "HEALTHS",
    "INVENTORY_LABEL_VALUES",
    "INVENTORY_METRICS",
    "LAG_BUCKETS",
    "LAG_QUANTILES",
    "REASONS",
    "InventoryCollector",
    "InventoryConfig",
    "classify_reason",
    "exported_families",
    "exported_sample_names",
]

log = logging.getLogger(__name__)

HEALTHS: Final = ("new", "ok", "degraded", "silent", "disabled", "other")
REASONS: Final = tuple(code.value for code in ErrorCode)
LAG_BUCKETS: Final = (
    60.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    43200.0,
    86400.0,
    259200.0,
    604800.0,
)
LAG_QUANTILES: Final = ("0.5", "0.9", "0.99", "1")

# name → (type, help, label names): collect() and describe() both read this table, and the
# deploy tests check dashboards and rules against it.
INVENTORY_METRICS: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "harvester_sources": (
        "gauge",
        "Sources by kind and health (new, ok, degraded, silent, disabled).",
        ("kind", "health"),
    ),
    "harvester_sources_stale": (
        "gauge",
        "Enabled sources whose last success is older than stale_factor times their cadence.",
        ("kind",),
    ),
    "harvester_sources_degraded": (
        "gauge",
        "Degraded sources by the error code of their health reason.",
        ("kind", "reason"),
    ),
    "harvester_sources_lag_seconds": (
        "gaugehistogram",
        "Distribution of the lag of enabled sources (now minus the newest harvested object).",
        ("kind",),
    ),
    "harvester_sources_lag_quantile_seconds": (
        "gauge",
        "Quantiles of the lag of enabled sources (1 is the largest).",
        ("kind", "quantile"),
    ),
    "harvester_source_info": (
        "gauge",
        "Always 1 per source: its kind, account, cluster, health and health reason code.",
        ("source", "kind", "account", "cluster", "health", "reason"),
    ),
    "harvester_source_lag_seconds": (
        "gauge",
        "Now minus the key time of the newest object harvested from the source.",
        ("source", "kind"),
    ),
    "harvester_source_last_success_timestamp_seconds": (
        "gauge",
        "When the source last ran successfully (Unix time).",
        ("source", "kind"),
    ),
    "harvester_source_cadence_seconds": (
        "gauge",
        "How often the source is harvested.",
        ("source", "kind"),
    ),
    "harvester_source_stale": (
        "gauge",
        "1 when the source's last success is older than stale_factor times its cadence.",
        ("source", "kind"),
    ),
    "harvester_inventory_per_source_series": (
        "gauge",
        "1 when per-source series are exported, 0 when the inventory is above the limit.",
        (),
    ),
    "harvester_anomalies_open": (
        "gauge",
        "Open anomalies in the database, by detector and severity.",
        ("detector", "severity"),
    ),
    "harvester_dead_letters_stored": ("gauge", "Dead-lettered task messages in the database.", ()),
    "harvester_notifications_pending": (
        "gauge",
        "Notification deliveries waiting in the outbox, by destination.",
        ("destination",),
    ),
    "harvester_notifications_oldest_pending_age_seconds": (
        "gauge",
        "Age of the oldest delivery still waiting in the outbox (0 when none), by destination.",
        ("destination",),
    ),
    "harvester_inventory_up": ("gauge", "1 when the database answered the last scrape.", ()),
    "harvester_inventory_collect_duration_seconds": (
        "gauge",
        "How long the last computation of these gauges took.",
        (),
    ),
}

# The fixed sets of the aggregated series' labels. Per-source series carry ``source``,
# ``account`` and ``cluster`` instead, bounded by per_source_limit.
INVENTORY_LABEL_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "kind": KINDS,
    "health": HEALTHS,
    "reason": REASONS,
    "quantile": LAG_QUANTILES,
    "severity": SEVERITIES,
}
PER_SOURCE_LABELS: Final = frozenset({"source", "account", "cluster"})


def exported_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every metric family audit-harvester exports: name → (type, label names).

    The workers' metrics (harvester.metrics), the collectors computed on scrape, and the
    inventory gauges of ``metrics serve``. Dashboards and alert rules may only name these.
    """
    families: dict[str, tuple[str, tuple[str, ...]]] = {}
    for metric in METRICS:
        for described in metric.describe():
            families[described.name] = (described.type, tuple(metric._labelnames))
    families.update(COLLECTED)
    families.update({name: (kind, labels) for name, (kind, _, labels) in INVENTORY_METRICS.items()})
    return families


_SAMPLE_SUFFIXES: Final[dict[str, tuple[str, ...]]] = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
}


def exported_sample_names() -> frozenset[str]:
    """The series names Prometheus stores for :func:`exported_families`."""
    return frozenset(
        name + suffix
        for name, (kind, _) in exported_families().items()
        for suffix in _SAMPLE_SUFFIXES.get(kind, ("",))
    )


# --- health reasons → codes --------------------------------------------------------------------

# Matched against the sentences harvester.aws.errors writes; first match wins, so the more
# specific come first. A test runs each error code through convert() and back through here.
_REASON_PATTERNS: Final[tuple[tuple[re.Pattern[str], ErrorCode], ...]] = tuple(
    (re.compile(pattern), code)
    for pattern, code in (
        (r"^KMS refused to decrypt", ErrorCode.KMS_ACCESS_DENIED),
        (r"^access denied:", ErrorCode.ACCESS_DENIED),
        (r" may not assume ", ErrorCode.ASSUME_ROLE_REFUSED),
        (r"^bucket \S+ is not in region", ErrorCode.WRONG_REGION),
        (r"^bucket \S+ does not exist", ErrorCode.NO_SUCH_BUCKET),
        (r"^object s3://.* changed since it was listed", ErrorCode.OBJECT_CHANGED),
        (r"^object s3://.* does not exist", ErrorCode.NO_SUCH_KEY),
        (r"^AWS throttled ", ErrorCode.THROTTLED),
        (r"^AWS failed on ", ErrorCode.SERVER_ERROR),
        (r"^the credentials used for .* have expired", ErrorCode.EXPIRED_CREDENTIALS),
        (r"^AWS rejected the (credentials|signature time)", ErrorCode.INVALID_CREDENTIALS),
        (r"^no AWS credentials were found", ErrorCode.NO_CREDENTIALS),
        (
            r"^(could not connect to the AWS endpoint|the connection to AWS broke)",
            ErrorCode.ENDPOINT_UNREACHABLE,
        ),
        (
            r"^(AWS rejected the \S+ request|invalid \S+ request|no region was given)",
            ErrorCode.INVALID_REQUEST,
        ),
        (r" found nothing \(", ErrorCode.NOT_FOUND),
    )
)
_LEADING_CODE: Final = re.compile(r"^\[?(?P<code>[a-z_]+)[\]:]")


def classify_reason(reason: str | None) -> str:
    """The :class:`ErrorCode` value a health reason stands for, ``other`` when unknown."""
    if not reason:
        return ErrorCode.OTHER.value
    text = reason.strip()
    leading = _LEADING_CODE.match(text)
    if leading and leading["code"] in REASONS:
        return leading["code"]
    for pattern, code in _REASON_PATTERNS:
        if pattern.search(text):
            return code.value
    return ErrorCode.OTHER.value


# --- the snapshot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryConfig:
    per_source_limit: int = 500
    stale_factor: float = 3.0
    default_cadence: timedelta = timedelta(minutes=5)
    # Several Prometheus servers, or a short scrape interval, share one computation.
    cache_seconds: float = 15.0


@dataclass(frozen=True)
class SourceRow:
    id: int
    kind: str
    account: str
    cluster: str
    health: str
    reason: str
    enabled: bool
    cadence_seconds: float
    last_success: datetime | None
    lag_seconds: float | None
    stale: bool


@dataclass
class Snapshot:
    sources: list[SourceRow] = field(default_factory=list)
    open_anomalies: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: int = 0
    # destination -> (pending deliveries, age of the oldest in seconds)
    notifications: dict[str, tuple[int, float]] = field(default_factory=dict)


def _newest_done() -> ScalarSelect[datetime]:
    # Only read for sources without newest_object_at (COALESCE stops at the first value). It
    # walks the (source_id, object_time) index backwards from the newest object: cheap per
    # source, where a GROUP BY over the whole ledger would read all of it on every scrape.
    return (
        select(ProcessedObject.object_time)
        .where(ProcessedObject.source_id == Source.id, ProcessedObject.status == "done")
        .order_by(ProcessedObject.object_time.desc())
        .limit(1)
        .correlate(Source)
        .scalar_subquery()
    )


def load_snapshot(session: Session, *, now: datetime, config: InventoryConfig) -> Snapshot:
    """Read what the gauges need in a few queries."""
    newest = func.coalesce(Source.newest_object_at, _newest_done())
    query = select(
        Source.id,
        Source.kind,
        Source.enabled,
        Account.enabled,
        Account.account_id,
        Source.cluster_name,
        Source.health,
        Source.health_reason,
        Source.last_success_at,
        Source.created_at,
        Account.cadence_seconds,
        newest,
    ).join(Account, Source.account_pk == Account.id)
    snapshot = Snapshot()
    for (
        source_id,
        kind,
        source_enabled,
        account_enabled,
        account_id,
        cluster,
        health,
        health_reason,
        last_success,
        created_at,
        cadence_seconds,
        newest_time,
    ) in session.execute(query):
        enabled = bool(source_enabled and account_enabled)
        cadence = (
            float(cadence_seconds) if cadence_seconds else config.default_cadence.total_seconds()
        )
        lag = max(0.0, (now - newest_time).total_seconds()) if newest_time else None
        since = last_success or created_at
        stale = (
            enabled
            and since is not None
            and ((now - since).total_seconds() > config.stale_factor * cadence)
        )
        health_label = "disabled" if not enabled else (health if health in HEALTHS else "other")
        snapshot.sources.append(
            SourceRow(
                id=int(source_id),
                kind=kind_label(kind),
                account=str(account_id),
                cluster=str(cluster or ""),
                health=health_label,
                reason=classify_reason(health_reason) if health == "degraded" else "",
                enabled=enabled,
                cadence_seconds=cadence,
                last_success=last_success,
                lag_seconds=lag if enabled else None,
                stale=stale,
            )
        )
    anomalies = select(AnomalyRecord.detector, AnomalyRecord.severity, func.count()).where(
        AnomalyRecord.status == "open"
    )
    for detector, severity, count in session.execute(
        anomalies.group_by(AnomalyRecord.detector, AnomalyRecord.severity)
    ):
        snapshot.open_anomalies[(detector_label(detector), severity_label(severity))] += int(count)
    snapshot.dead_letters = int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)
    snapshot.notifications = dict.fromkeys(
        session.scalars(select(DestinationRecord.name)), (0, 0.0)
    )
    pending = select(
        NotificationRecord.destination, func.count(), func.min(NotificationRecord.created_at)
    ).where(NotificationRecord.status == "pending")
    for destination, count, oldest in session.execute(
        pending.group_by(NotificationRecord.destination)
    ):
        age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        snapshot.notifications[destination] = (int(count), age)
    return snapshot


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _family(name: str) -> GaugeMetricFamily:
    _, help_text, labels = INVENTORY_METRICS[name]
    return GaugeMetricFamily(name, help_text, labels=list(labels))


def snapshot_families(snapshot: Snapshot, *, config: InventoryConfig) -> list[Metric]:
    """The metric families of one snapshot."""
    kinds = ["cloudtrail", "eks"]
    if any(row.kind == "unknown" for row in snapshot.sources):
        kinds.append("unknown")
    by_health = Counter((row.kind, row.health) for row in snapshot.sources)
    sources = _family("harvester_sources")
    stale = _family("harvester_sources_stale")
    degraded = _family("harvester_sources_degraded")
    degraded_counts = Counter(
        (row.kind, row.reason) for row in snapshot.sources if row.health == "degraded"
    )
    _, lag_help, _ = INVENTORY_METRICS["harvester_sources_lag_seconds"]
    lag_hist = GaugeHistogramMetricFamily(
        "harvester_sources_lag_seconds", lag_help, labels=["kind"]
    )
    quantiles = _family("harvester_sources_lag_quantile_seconds")
    for kind in kinds:
        # Every combination, zeros included: an alert on a series that never existed is an
        # alert that never fires.
        for health in HEALTHS:
            sources.add_metric([kind, health], float(by_health[(kind, health)]))
        stale.add_metric(
            [kind], float(sum(1 for r in snapshot.sources if r.kind == kind and r.stale))
        )
        for reason in REASONS:
            degraded.add_metric([kind, reason], float(degraded_counts[(kind, reason)]))
        lags = sorted(
            r.lag_seconds for r in snapshot.sources if r.kind == kind and r.lag_seconds is not None
        )
        buckets = [(str(bound), float(sum(1 for v in lags if v <= bound))) for bound in LAG_BUCKETS]
        buckets.append(("+Inf", float(len(lags))))
        lag_hist.add_metric([kind], buckets, sum(lags))
        if lags:
            for q in LAG_QUANTILES:
                quantiles.add_metric([kind, q], _quantile(lags, float(q)))
    families: list[Metric] = [sources, stale, degraded, lag_hist, quantiles]

    detailed = len(snapshot.sources) <= config.per_source_limit
    per_source = _family("harvester_inventory_per_source_series")
    per_source.add_metric([], 1.0 if detailed else 0.0)
    families.append(per_source)
    if detailed:
        info = _family("harvester_source_info")
        lag = _family("harvester_source_lag_seconds")
        success = _family("harvester_source_last_success_timestamp_seconds")
        cadence = _family("harvester_source_cadence_seconds")
        stale_one = _family("harvester_source_stale")
        for row in snapshot.sources:
            key = [str(row.id), row.kind]
            info.add_metric([*key, row.account, row.cluster, row.health, row.reason], 1.0)
            cadence.add_metric(key, row.cadence_seconds)
            if row.lag_seconds is not None:
                lag.add_metric(key, row.lag_seconds)
            if row.last_success is not None:
                success.add_metric(key, row.last_success.timestamp())
            if row.enabled:
                stale_one.add_metric(key, 1.0 if row.stale else 0.0)
        families += [info, lag, success, cadence, stale_one]

    anomalies = _family("harvester_anomalies_open")
    for (detector, severity), count in sorted(snapshot.open_anomalies.items()):
        anomalies.add_metric([detector, severity], float(count))
    dead = _family("harvester_dead_letters_stored")
    dead.add_metric([], float(snapshot.dead_letters))
    pending = _family("harvester_notifications_pending")
    oldest = _family("harvester_notifications_oldest_pending_age_seconds")
    for destination, (count, age) in sorted(snapshot.notifications.items()):
        pending.add_metric([destination], float(count))
        oldest.add_metric([destination], age)
    families += [anomalies, dead, pending, oldest]
    return families


class InventoryCollector(Collector):
    """Computes the inventory gauges from the database, at most once per ``cache_seconds``.

    ``sessions`` makes a session (a ``sessionmaker``); a database that does not answer yields
    ``harvester_inventory_up 0`` and nothing else, rather than failing the scrape.
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        config: InventoryConfig | None = None,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._config = config or InventoryConfig()
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would call collect() at registration: a query.
        for name in INVENTORY_METRICS:
            yield GaugeMetricFamily(name, "")

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self._monotonic()
            if self._cached is None or now - self._cached[0] >= self._config.cache_seconds:
                self._cached = (now, self._compute())
            families = self._cached[1]
        yield from families

    def _compute(self) -> list[Metric]:
        started = time.perf_counter()
        up = _family("harvester_inventory_up")
        try:
            with self._sessions() as session:
                snapshot = load_snapshot(session, now=self._clock(), config=self._config)
        except Exception as exc:  # noqa: BLE001  a scrape reports the outage, it does not fail
            # The exception's text may hold the database URL: log its type only.
            log.warning("metrics: cannot read the inventory: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            return [up]
        up.add_metric([], 1.0)
        families = snapshot_families(snapshot, config=self._config)
        duration = _family("harvester_inventory_collect_duration_seconds")
        duration.add_metric([], time.perf_counter() - started)
        return [*families, up, duration]
