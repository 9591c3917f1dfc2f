"""Detection: rule and behavioural detectors over normalized events, anomalies, incidents.

Entry points: ``Scorer`` (a batch of events → anomalies, state in a ``StateStore``),
``scan_events`` (a stream, everything in memory), ``build_incidents``. The database side is
in :mod:`harvester.detect.repository`, printing in :mod:`harvester.detect.render`.
"""

from harvester.detect.engine import (
    DEFAULT_CATALOG,
    Catalog,
    EngineConfig,
    ScanReport,
    Scorer,
    ScoreResult,
    merge_anomaly,
    scan_events,
)
from harvester.detect.incidents import build_incidents
from harvester.detect.model import (
    Anomaly,
    DetectorSpec,
    Evidence,
    Hit,
    Incident,
    Severity,
    SuppressionRule,
)
from harvester.detect.rules import RuleConfig
from harvester.detect.state import (
    HashRead,
    HashValue,
    HashWrite,
    MemoryStore,
    RedisStore,
    StateStore,
)

__all__ = [
    "DEFAULT_CATALOG",
    "Anomaly",
    "Catalog",
    "DetectorSpec",
    "EngineConfig",
    "Evidence",
    "HashRead",
    "HashValue",
    "HashWrite",
    "Hit",
    "Incident",
    "MemoryStore",
    "RedisStore",
    "RuleConfig",
    "ScanReport",
    "ScoreResult",
    "Scorer",
    "Severity",
    "StateStore",
    "SuppressionRule",
    "build_incidents",
    "merge_anomaly",
    "scan_events",
]
