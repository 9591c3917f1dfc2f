"""Panther's CloudTrail, EKS and Kubernetes rules, run by Panther's own engine (``panther-core``).

Each rule's YAML metadata becomes a ``panther_core.rule.Rule`` (its Python file as the module),
each log type's data model a ``panther_core.data_model.DataModel``, and each record a
``PantherEvent`` tagged with its log type (``AWS.CloudTrail`` or ``Amazon.EKS.Audit``), as
panther-analysis-tool does. ``global_helpers/`` is put on ``sys.path`` for the rules' imports.

Alerts follow Panther's rules of alerting: disabled rules and signal-only rules
(``CreateAlert: false``) raise none; matches with one dedup string within the rule's dedup period
are one alert, raised once ``Threshold`` matches are reached; severity is the rule's
``severity()`` result, its YAML ``Severity`` otherwise.

Some rules need Panther's services, so the figures come in ``VARIANTS``:

- ``panther``: the rules that need nothing but the engine.
- ``panther+cache``: plus the four rules that keep state in Panther's key-value cache (a DynamoDB
  table, through ``panther_detection_helpers.caching``), given ``MemoryCache``, an in-memory
  stand-in whose expiry runs on event time. Without it they cannot run at all.
- ``panther+cache+enrichment``: plus the rules that decide on enrichment (ipinfo ASN, MISP
  lists, Tor exit nodes), run without it: there is no lookup data here, so they see none (the
  IMDS rule then takes every public address for an outside one).

The correlation rule (signals of several rules combined) is not run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import yaml

from benchmarks.peers.cases import REPO, Case, Kind
from benchmarks.peers.scoring import PeerAlert

ROOT = REPO.parent / "shared" / "peers" / "panther"
RULE_FOLDERS = ("aws_cloudtrail_rules", "aws_eks_rules", "kubernetes_rules")
LOG_TYPES: dict[Kind, str] = {"cloudtrail": "AWS.CloudTrail", "k8s": "Amazon.EKS.Audit"}
SEVERITIES = ("info", "low", "medium", "high", "critical")

CacheMode = Literal["none", "memory"]
# What a rule needs from Panther beyond its engine: nothing, the key-value cache, or enrichment.
Need = Literal["", "cache", "enrichment"]
# The variants reported: the rules that run on their own; + the cache-backed rules on the
# in-memory stand-in; + the rules that decide on enrichment, run without it (no lookup data).
VARIANTS: dict[str, tuple[Need, ...]] = {
    "panther": ("",),
    "panther+cache": ("", "cache"),
    "panther+cache+enrichment": ("", "cache", "enrichment"),
}
_ENRICHMENT_MARKERS = ("p_enrichment", "get_ipinfo_asn", "get_misp_warning_lists")
Record = dict[str, Any]


class CacheUnavailable(RuntimeError):
    """Panther's key-value cache is not there (the rules run without Panther's services)."""


# --- the cache stand-in ---------------------------------------------------------------------------


@dataclass
class MemoryCache:
    """In-memory stand-in for ``panther_detection_helpers.caching``, on event time.

    Expiry as the helpers set it: ``epoch_seconds`` below seven days is relative to now, above it
    an absolute time, absent 90 days; expired keys read as empty.
    """

    now: datetime = datetime(1970, 1, 1)  # noqa: DTZ001  set per event by the runner
    _sets: dict[str, tuple[set[str], float]] = field(default_factory=dict)
    _counters: dict[str, tuple[int, float]] = field(default_factory=dict)

    def _expiry(self, epoch_seconds: float | str | None) -> float:
        now = self.now.timestamp()
        if epoch_seconds is None:
            return now + 90 * 86400
        seconds = float(epoch_seconds)
        return now + seconds if seconds < 604801 else seconds

    def _live(self, expires: float) -> bool:
        return expires > self.now.timestamp()

    def get_string_set(self, key: str, force_ttl_check: bool = False) -> set[str]:
        values, expires = self._sets.get(key, (set(), 0.0))
        return set(values) if self._live(expires) else set()

    def put_string_set(
        self, key: str, val: Iterable[str], epoch_seconds: float | None = None
    ) -> None:
        values = set(val)
        if values:
            self._sets[key] = (values, self._expiry(epoch_seconds))
        else:
            self._sets.pop(key, None)

    def add_to_string_set(
        self, key: str, val: str | Iterable[str], epoch_seconds: float | None = None
    ) -> set[str]:
        added = {val} if isinstance(val, str) else set(val)
        values = self.get_string_set(key) | added
        self.put_string_set(key, values, epoch_seconds)
        return values

    def reset_string_set(self, key: str) -> None:
        self._sets.pop(key, None)

    def get_counter(self, key: str, force_ttl_check: bool = False) -> int:
        count, expires = self._counters.get(key, (0, 0.0))
        return count if self._live(expires) else 0

    def increment_counter(self, key: str, val: int = 1, epoch_seconds: float | None = None) -> int:
        count = self.get_counter(key) + val
        self._counters[key] = (count, self._expiry(epoch_seconds))
        return count

    def reset_counter(self, key: str) -> None:
        self._counters.pop(key, None)

    def check_account_age(self, key: Any) -> bool:
        return isinstance(key, str) and key != "" and bool(self.get_string_set(key))

    def functions(self) -> dict[str, Callable[..., Any]]:
        names = (
            "get_string_set",
            "put_string_set",
            "add_to_string_set",
            "reset_string_set",
            "get_counter",
            "increment_counter",
            "reset_counter",
            "check_account_age",
        )
        return {name: getattr(self, name) for name in names}


def _unavailable(name: str) -> Callable[..., Any]:
    def call(*_args: Any, **_kwargs: Any) -> Any:
        raise CacheUnavailable(f"{name}: Panther's key-value cache is not available")

    return call


# --- loading --------------------------------------------------------------------------------------


def _use_helpers(root: Path) -> None:
    helpers = str(root / "global_helpers")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)


def _severity(value: Any) -> str:
    text = str(value or "info").lower()
    return text if text in SEVERITIES else "info"


def load_data_models(root: Path = ROOT) -> dict[str, Any]:
    """Data models of our log types, keyed by log type."""
    from panther_core.data_model import DataModel

    _use_helpers(root)
    models: dict[str, Any] = {}
    for path in sorted((root / "data_models").glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        log_types = [t for t in spec.get("LogTypes", ()) if t in LOG_TYPES.values()]
        if not log_types or not spec.get("Enabled", True):
            continue
        config: dict[str, Any] = {
            "id": spec["DataModelID"],
            "versionId": "snapshot",
            "mappings": [
                {"name": m["Name"], "path": m.get("Path"), "method": m.get("Method")}
                for m in spec["Mappings"]
            ],
        }
        if spec.get("Filename"):
            config["body"] = (path.parent / spec["Filename"]).read_text(encoding="utf-8")
        model = DataModel(config)
        for log_type in log_types:
            models[log_type] = model
    return models


@dataclass
class PantherPeerRule:
    id: str
    rule: Any  # panther_core.rule.Rule
    log_types: frozenset[str]
    severity: str
    threshold: int
    dedup_minutes: int
    alerts: bool  # enabled and not signal-only
    needs: Need
    tests: list[dict[str, Any]]
    path: Path


def _cache_names(module: Any) -> list[str]:
    from panther_detection_helpers import caching

    return [
        name
        for name, value in vars(module).items()
        if callable(value) and getattr(caching, name, None) is value
    ]


def _needs(module: Any, source: Path) -> Need:
    if _cache_names(module):
        return "cache"
    text = source.read_text(encoding="utf-8")
    return "enrichment" if any(marker in text for marker in _ENRICHMENT_MARKERS) else ""


def load_rules(root: Path = ROOT, *, only: Iterable[str] = ()) -> list[PantherPeerRule]:
    """The single-event rules of the CloudTrail, EKS and Kubernetes folders.

    ``only``: file names (``aws_cloudtrail_stopped.yml``) to load instead of every rule.
    """
    from panther_core.rule import Rule

    if not root.is_dir():
        raise FileNotFoundError(
            f"Panther rules not found at {root}; the peers snapshot lives in <repo>/../shared/peers"
        )
    _use_helpers(root)
    wanted = set(only)
    rules: list[PantherPeerRule] = []
    for folder in RULE_FOLDERS:
        for path in sorted((root / "rules" / folder).glob("*.yml")):
            if wanted and path.name not in wanted:
                continue
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
            log_types = frozenset(spec.get("LogTypes", ())) & frozenset(LOG_TYPES.values())
            if spec.get("AnalysisType") != "rule" or not log_types:
                continue
            rule = Rule(
                {
                    "id": spec["RuleID"],
                    "versionId": "snapshot",
                    "analysisType": "RULE",
                    "path": str(path.parent / spec["Filename"]),
                    "severity": str(spec.get("Severity", "Info")).upper(),
                    "dedupPeriodMinutes": int(spec.get("DedupPeriodMinutes", 60)),
                    "tags": list(spec.get("Tags", ())),
                }
            )
            if rule.setup_exception:
                raise RuntimeError(f"{path.name} did not load: {rule.setup_exception!r}")
            rules.append(
                PantherPeerRule(
                    id=spec["RuleID"],
                    rule=rule,
                    log_types=log_types,
                    severity=_severity(spec.get("Severity")),
                    threshold=int(spec.get("Threshold", 1)),
                    dedup_minutes=int(spec.get("DedupPeriodMinutes", 60)),
                    alerts=bool(spec.get("Enabled", True)) and spec.get("CreateAlert", True),
                    needs=_needs(rule.module, path.parent / spec["Filename"]),
                    tests=list(spec.get("Tests", ())),
                    path=path,
                )
            )
    return rules


def use_cache(rules: Iterable[PantherPeerRule], cache: MemoryCache | None) -> None:
    """Point the cache-backed rules at ``cache``, or at a cache that is not there (None)."""
    for peer in rules:
        if peer.needs != "cache":
            continue
        module = peer.rule.module
        for name in _cache_names_or_replaced(module):
            setattr(module, name, getattr(cache, name) if cache else _unavailable(name))


def _cache_names_or_replaced(module: Any) -> list[str]:
    names = getattr(module, "_peers_cache_names", None)
    if names is None:
        names = _cache_names(module)
        module._peers_cache_names = names
    return list(names)


# --- running --------------------------------------------------------------------------------------


def event_time(record: Record) -> datetime | None:
    """When the record happened (CloudTrail ``eventTime``, Kubernetes request timestamps)."""
    for key in ("eventTime", "requestReceivedTimestamp", "stageTimestamp", "timestamp"):
        value = record.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class Match:
    rule: PantherPeerRule
    severity: str
    dedup: str


class PantherRunner:
    """Runs every loaded rule on records; ``cache`` says how the cache-backed rules run."""

    def __init__(self, rules: list[PantherPeerRule], models: dict[str, Any], cache: CacheMode):
        self.rules = [r for r in rules if r.alerts]
        self.models = models
        self.mode = cache
        self.cache = MemoryCache() if cache == "memory" else None
        self.errors: dict[str, int] = {}

    def reset(self) -> None:
        """Forget cached state (each corpus case is scored alone, like ours)."""
        if self.mode == "memory":
            self.cache = MemoryCache()

    def event(self, record: Record, kind: Kind) -> Any:
        from panther_core import PantherEvent

        # The standard fields Panther adds to every event that rules read: its log type and time.
        log_type = record.get("p_log_type") or LOG_TYPES[kind]
        tagged = {**record, "p_log_type": log_type}
        when = event_time(record)
        if "p_event_time" not in record and when is not None:
            tagged["p_event_time"] = when.strftime("%Y-%m-%d %H:%M:%S.%f")
        return PantherEvent(tagged, self.models.get(log_type))

    def run(self, record: Record, kind: Kind) -> list[Match]:
        event = self.event(record, kind)
        log_type = event.get("p_log_type")
        if self.cache is not None:
            self.cache.now = event_time(record) or self.cache.now
        use_cache(self.rules, self.cache)
        matches: list[Match] = []
        for peer in self.rules:
            if log_type not in peer.log_types:
                continue
            result = peer.rule.run(event, {}, {}, batch_mode=True)
            if result.detection_evaluation_failed:
                self.errors[peer.id] = self.errors.get(peer.id, 0) + 1
            if result.trigger_alert:
                severity = _severity(result.severity_output or peer.severity)
                matches.append(Match(peer, severity, str(result.dedup_output or "")))
        return matches


@dataclass
class OpenAlert:
    rule: str
    severity: str
    started: datetime | None
    until: datetime | None
    matches: list[int]  # case indexes
    threshold: int

    @property
    def raised(self) -> bool:
        return len(self.matches) >= self.threshold


class Alerter:
    """Groups matches into Panther alerts: one per rule and dedup string per dedup period."""

    def __init__(self) -> None:
        self.alerts: list[OpenAlert] = []
        self._open: dict[tuple[str, str], OpenAlert] = {}

    def add(self, match: Match, index: int, when: datetime | None) -> None:
        key = (match.rule.id, match.dedup)
        current = self._open.get(key)
        if current is None or (
            when is not None and current.until is not None and when > current.until
        ):
            until = when + timedelta(minutes=match.rule.dedup_minutes) if when else None
            current = OpenAlert(
                match.rule.id, match.severity, when, until, [], match.rule.threshold
            )
            self._open[key] = current
            self.alerts.append(current)
        current.matches.append(index)

    def raised(self) -> list[OpenAlert]:
        return [a for a in self.alerts if a.raised]


# --- the rules' own tests -------------------------------------------------------------------------


def run_rule_tests(
    rules: Iterable[PantherPeerRule], models: dict[str, Any]
) -> tuple[int, list[str]]:
    """Run each rule's YAML unit tests on CloudTrail and EKS logs through this harness.

    Returns (passed, failures); the harness is right when there are no failures.
    """
    runner = PantherRunner([], models, "memory")
    passed = 0
    failures: list[str] = []
    for peer in rules:
        use_cache([peer], MemoryCache())
        for test in peer.tests:
            log = test.get("Log") or {}
            if log.get("p_log_type", LOG_TYPES["cloudtrail"]) not in LOG_TYPES.values():
                continue  # a test of the same rule on GKE or AKS logs: not our log types
            kind: Kind = "k8s" if "auditID" in log or "verb" in log else "cloudtrail"
            event = runner.event(log, kind)
            module = peer.rule.module
            patches = [
                mock.patch.object(
                    module, m["objectName"], mock.MagicMock(return_value=m["returnValue"])
                )
                for m in test.get("Mocks", ()) or ()
                if hasattr(module, m["objectName"])
            ]
            for patch in patches:
                patch.start()
            try:
                result = peer.rule.run(event, {}, {}, batch_mode=False)
            finally:
                for patch in patches:
                    patch.stop()
            expected = bool(test.get("ExpectedResult"))
            if result.detection_output is expected and not result.detection_evaluation_failed:
                passed += 1
            else:
                failures.append(
                    f"{peer.id} / {test.get('Name')}: expected {expected}, got "
                    f"{result.detection_output} {result.short_error_message or ''}".rstrip()
                )
    return passed, failures


# --- alerts on a corpus ---------------------------------------------------------------------------


def alerts(
    cases: Sequence[Case],
    variants: Iterable[str],
    *,
    per_case: bool,
    rules: list[PantherPeerRule] | None = None,
    models: dict[str, Any] | None = None,
) -> dict[str, tuple[list[PeerAlert], dict[str, int]]]:
    """Per variant (keys of ``VARIANTS``), Panther's alerts and its rules' errors (per rule).

    ``per_case``: each case alone with an empty cache (as ours score the corpora); otherwise the
    cases are one stream in time order, with dedup periods, thresholds and the cache carried on.
    One pass serves every variant: a rule's alerts do not depend on which other rules run, and
    only the cache-backed rules touch the cache.
    """
    chosen_variants = tuple(variants)
    needs = {need for v in chosen_variants for need in VARIANTS[v]}
    rules = [r for r in (rules if rules is not None else load_rules()) if r.needs in needs]
    cache: CacheMode = "memory" if "cache" in needs else "none"
    runner = PantherRunner(rules, models if models is not None else load_data_models(), cache)
    raised: list[OpenAlert] = []
    alerter = Alerter()
    for index, case in enumerate(cases):
        if per_case:
            runner.reset()
            alerter = Alerter()
        when = case.time or event_time(case.record)
        for match in runner.run(case.record, case.kind):
            alerter.add(match, index, when)
        if per_case:
            raised += alerter.raised()
    if not per_case:
        raised = alerter.raised()
    need_of = {r.id: r.needs for r in rules}
    out: dict[str, tuple[list[PeerAlert], dict[str, int]]] = {}
    for variant in chosen_variants:
        allowed = VARIANTS[variant]
        out[variant] = (
            [
                PeerAlert(a.rule, a.severity, tuple(a.matches))
                for a in raised
                if need_of[a.rule] in allowed
            ],
            {rule: n for rule, n in runner.errors.items() if need_of[rule] in allowed},
        )
    return out
