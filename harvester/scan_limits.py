"""How ``harvester scan`` keeps within a memory ceiling whatever its input (docs/operations.md).

One number, the ceiling in MB (512 by default), sets every cap: the detector state (baselines
and burst counters, by estimated bytes), the event ids remembered for de-duplication, and
the anomalies kept. What a cap pushed out is counted and reported, never dropped silently.
The shares were measured with ``python -m benchmarks.scan_memory``: the process itself
(imports, parser buffers, the principal counts) takes about 150 MB of the 512.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# harvester.detect (the whole engine) is imported where it is used: `harvester parse` and
# `--help` start without it.
if TYPE_CHECKING:
    from harvester.detect.state import MemoryStore

__all__ = ["DEFAULT_MEMORY_MB", "MINIMUM_MEMORY_MB", "ScanLimits"]

DEFAULT_MEMORY_MB = 512
MINIMUM_MEMORY_MB = 256
_MB = 1024 * 1024
# Parts of the ceiling: detector state, claims, anomalies (about 2.5 KB each, with evidence).
_STATE_SHARE = 0.30
_CLAIM_SHARE = 0.08
_ANOMALY_SHARE = 0.05
_ANOMALY_BYTES = 2500


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Caps derived from a ceiling in MB; ``megabytes == 0`` keeps only the store's count caps
    (a million baselines, two million event ids: what scan did before it had a ceiling)."""

    megabytes: int
    state_bytes: int | None
    claims: int | None
    anomalies: int | None

    @classmethod
    def for_megabytes(cls, megabytes: int) -> ScanLimits:
        if megabytes == 0:
            return cls(0, None, None, None)
        if megabytes < MINIMUM_MEMORY_MB:
            raise ValueError(
                f"a memory ceiling of {megabytes} MB is below the {MINIMUM_MEMORY_MB} MB the "
                "process needs; give at least that, or 0 for no caps"
            )
        from harvester.detect.state import CLAIM_BYTES  # noqa: PLC0415  see the top

        total = megabytes * _MB
        return cls(
            megabytes,
            state_bytes=int(total * _STATE_SHARE),
            claims=int(total * _CLAIM_SHARE) // CLAIM_BYTES,
            anomalies=int(total * _ANOMALY_SHARE) // _ANOMALY_BYTES,
        )

    def store(self) -> MemoryStore:
        from harvester.detect.state import MemoryStore  # noqa: PLC0415  see the top

        if self.claims is None:
            return MemoryStore()
        return MemoryStore(max_keys=2**62, max_claims=self.claims, max_bytes=self.state_bytes)

    def notice(self, store: MemoryStore, *, dropped: int) -> str | None:
        """One line for the operator when a cap pushed anything out; None when none did."""
        if not (store.evicted_keys or store.evicted_claims or dropped):
            return None
        parts = []
        if store.evicted_keys:
            parts.append(
                f"forgot {store.evicted_keys:,} baseline(s) of the least recently seen "
                "principals (their next new behaviour may be missed or reported again)"
            )
        if store.evicted_claims:
            parts.append(
                f"forgot {store.evicted_claims:,} event id(s) (a duplicate seen after that "
                "is scored again)"
            )
        if dropped:
            parts.append(f"dropped {dropped:,} of the least severe anomalies")
        return (
            f"memory ceiling {self.megabytes} MB reached: " + "; ".join(parts) + ". "
            "Raise --memory-mb, or scan fewer objects at a time, to keep everything."
        )
