"""The demo replays history: its sources are judged silent from the data's end, not from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harvester.demo import demo_silence, demo_start
from harvester.settings import load_settings
from harvester.silence import SilencePolicy


def test_demo_sources_are_silent_only_if_their_logs_stop_before_the_data_ends() -> None:
    now = datetime(2026, 12, 6, 17, 4, tzinfo=UTC)
    start = demo_start(now, 14)
    expectations = demo_silence(now, start, 14)
    # The data ends at midnight, 17 h 4 min before now: the usual hour is counted from there.
    assert expectations["silent_after_cloudtrail"] == timedelta(hours=18, minutes=4)
    assert expectations["silent_after_eks"] == timedelta(hours=17, minutes=34)
    settings = load_settings({}, **expectations)
    assert settings.silent_after_cloudtrail == timedelta(hours=18, minutes=4)
    assert SilencePolicy.from_settings(settings) is not None
