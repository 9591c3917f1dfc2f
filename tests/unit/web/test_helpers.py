"""Small pure helpers of the pages: redirects, ATT&CK links, how times read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harvester.web.pages import _safe_next, mitre_url
from harvester.web.templating import ago, duration, when

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/anomalies?severity=high", "/anomalies?severity=high"),
        ("/incidents/in-1", "/incidents/in-1"),
        (None, "/overview"),
        ("", "/overview"),
        ("//evil.example", "/overview"),
        ("/\\evil.example", "/overview"),
        ("https://evil.example", "/overview"),
        ("/ok\r\nSet-Cookie: x=y", "/overview"),
        ("/" + "a" * 3000, "/overview"),
    ],
)
def test_next_stays_on_site(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected


def test_mitre_links() -> None:
    assert mitre_url("T1098") == "https://attack.mitre.org/techniques/T1098/"
    assert mitre_url("T1562.008") == "https://attack.mitre.org/techniques/T1562/008/"
    assert mitre_url("TA0005") == "https://attack.mitre.org/tactics/TA0005/"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (3900, "1h 5m"),
        (86400, "1d"),
        (90000, "1d 1h"),
    ],
)
def test_duration(seconds: int, text: str) -> None:
    assert duration(timedelta(seconds=seconds)) == text


def test_when_and_ago() -> None:
    assert when(NOW) == "2026-01-15 12:00 UTC"
    assert when(None) == "—"
    assert duration(None) == "—"
    assert ago(NOW - timedelta(minutes=3), NOW) == "3m ago"
    assert ago(NOW + timedelta(hours=2), NOW) == "in 2h"
    assert ago(None, NOW) == "never"


def test_allowed_hosts_follow_the_listening_address() -> None:
    from harvester.cli.web_cmds import _allowed_hosts

    assert _allowed_hosts("127.0.0.1", []) == ("127.0.0.1", "localhost", "[::1]")
    assert _allowed_hosts("::1", ["console.internal"]) == (
        "127.0.0.1",
        "localhost",
        "[::1]",
        "console.internal",
    )
    assert _allowed_hosts("0.0.0.0", []) is None  # noqa: S104  the address under test
    assert _allowed_hosts("10.0.0.5", ["console.internal"]) == ("console.internal",)


def test_forwarded_allow_ips_are_addresses_or_networks() -> None:
    from harvester.cli.web_cmds import _proxies
    from harvester.inventory.validation import InvalidValue

    assert _proxies(None) is None
    assert _proxies("10.0.0.5, 10.1.0.0/16,") == ("10.0.0.5", "10.1.0.0/16")
    with pytest.raises(InvalidValue, match="--forwarded-allow-ips: '\\*' is not valid"):
        _proxies("10.0.0.5,*")
