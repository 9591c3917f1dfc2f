"""``harvester scan``'s memory ceiling: caps from one number, anomalies kept, notices."""

from __future__ import annotations

import pytest

from harvester.detect.engine import scan_events
from harvester.detect.state import HashWrite
from harvester.scan_limits import ScanLimits
from tests.unit.detect.builders import NOW, ct, sso, user


def test_caps_scale_with_the_ceiling() -> None:
    small, big = ScanLimits.for_megabytes(256), ScanLimits.for_megabytes(1024)
    assert small.state_bytes is not None
    assert big.state_bytes is not None
    assert small.claims is not None
    assert big.claims is not None
    assert abs(big.state_bytes - 4 * small.state_bytes) <= 4
    assert abs(big.claims - 4 * small.claims) <= 4
    assert ScanLimits.for_megabytes(0).state_bytes is None


def test_a_ceiling_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        ScanLimits.for_megabytes(64)


def test_notice_says_what_the_caps_pushed_out() -> None:
    limits = ScanLimits(512, state_bytes=1000, claims=1, anomalies=1)
    store = limits.store()
    assert limits.notice(store, dropped=0) is None
    store.write([HashWrite(f"k{i}", set={"m": "x" * 200}) for i in range(5)])
    store.claim(["a", "b", "c"], 60)
    notice = limits.notice(store, dropped=2)
    assert notice is not None
    assert "512 MB" in notice
    assert f"forgot {store.evicted_keys:,} baseline" in notice
    assert "forgot 2 event id" in notice
    assert "dropped 2 " in notice


def test_scan_keeps_the_most_severe_anomalies_and_counts_the_rest() -> None:
    # A critical (StopLogging) among many low ones (session tokens minted from user keys).
    events = [
        ct("GetSessionToken", "sts", identity=user(f"u{i}", key=f"AKIAEXAMPLEKEY{i:06d}"))
        for i in range(40)
    ]
    events.append(ct("StopLogging", "cloudtrail", identity=sso("x@example.com")))
    everything = scan_events(events, clock=lambda: NOW)
    assert len(everything.anomalies) > 4
    capped = scan_events(events, clock=lambda: NOW, max_anomalies=2, batch_size=5)
    assert len(capped.anomalies) == 2
    assert capped.dropped == len(everything.anomalies) - 2
    top = max(a.severity.rank for a in everything.anomalies)
    assert top in {a.severity.rank for a in capped.anomalies}
