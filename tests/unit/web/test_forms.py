"""Validation of console and API input, with the CLI's rules, field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harvester.detect.model import Severity
from harvester.inventory.validation import InvalidValue
from harvester.web.forms import (
    FORM_LEVEL,
    AnomalyFilterInput,
    FormErrors,
    NewRoleInput,
    form_field,
    parse_anomaly_filter,
    parse_suppression,
    parse_time,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_times_are_durations_back_or_iso() -> None:
    assert parse_time("24h", "since", now=NOW, future=False) == NOW - timedelta(hours=24)
    assert parse_time("7d", "until", now=NOW, future=True) == NOW + timedelta(days=7)
    assert parse_time("2026-01-10T08:00:00Z", "since", now=NOW, future=False) == datetime(
        2026, 1, 10, 8, tzinfo=UTC
    )
    # A time without a zone is UTC, as every time on the console.
    assert parse_time("2026-01-10T08:00", "since", now=NOW, future=False).tzinfo is UTC
    assert parse_time("2026-01-10T10:00+02:00", "s", now=NOW, future=False).hour == 8


@pytest.mark.parametrize("value", ["yesterday", "", "99999999999999d", "3651d", "-1h"])
def test_bad_times(value: str) -> None:
    with pytest.raises(InvalidValue):
        parse_time(value, "since", now=NOW, future=False)


def test_filter_parsing() -> None:
    flt = parse_anomaly_filter(
        AnomalyFilterInput.from_mapping(
            {
                "severity": "HIGH",
                "account": "111122223333",
                "cluster": "prod",
                "detector": "aws.iam-*",
                "status": "open",
                "since": "7d",
                "limit": "50",
                "ignored": "x",
            }
        ),
        now=NOW,
    )
    assert flt.min_severity is Severity.high
    assert (flt.account, flt.cluster, flt.detector, flt.status) == (
        "111122223333",
        "prod",
        "aws.iam-*",
        "open",
    )
    assert flt.since == NOW - timedelta(days=7)
    assert flt.limit == 50


def test_an_empty_filter_is_everything() -> None:
    flt = parse_anomaly_filter(AnomalyFilterInput(), now=NOW)
    assert (flt.min_severity, flt.account, flt.since, flt.limit) == (None, None, None, 200)


def test_filter_errors_are_collected_by_field() -> None:
    with pytest.raises(FormErrors) as caught:
        parse_anomaly_filter(
            AnomalyFilterInput(severity="x", account="1", status="closed", limit="5000"), now=NOW
        )
    assert set(caught.value.errors) == {"severity", "account", "status", "limit"}


def test_filter_query_string_keeps_what_was_typed() -> None:
    raw = AnomalyFilterInput.from_mapping({"severity": " high ", "account": ""})
    assert raw.query_string() == {"severity": "high"}


def test_service_fields_map_onto_form_fields() -> None:
    assert form_field("bucket") == "bucket"
    assert form_field("new_role.role_arn") == "new_role.role_arn"
    assert form_field("secret_access_key") == "new_role.secret_access_key"
    assert form_field("accounts[0].name") == FORM_LEVEL


def test_new_role_input_never_shows_its_secret() -> None:
    new = NewRoleInput(name="r", secret_access_key="very-secret-value-123")
    assert "very-secret" not in repr(new)


def test_suppression_rules() -> None:
    rule = parse_suppression(
        detector="aws.guardduty-disabled",
        principal="  arn:aws:iam::111122223333:role/x ",
        account="111122223333",
        until="7d",
        reason=" migration ",
        now=NOW,
    )
    assert rule.principal == "arn:aws:iam::111122223333:role/x"
    assert rule.until == NOW + timedelta(days=7)
    assert rule.reason == "migration"
    wildcard = parse_suppression(
        detector="aws.*", principal="", account=None, until=None, reason=None, now=NOW
    )
    assert (wildcard.principal, wildcard.account, wildcard.until) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"detector": "not.a-detector"}, "detector"),
        ({"detector": "a b"}, "detector"),
        ({"detector": "aws.*", "account": "12"}, "account"),
        ({"detector": "aws.*", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"detector": "aws.*", "principal": "x" * 2049}, "principal"),
        ({"detector": "aws.*", "reason": "x" * 1001}, "reason"),
    ],
)
def test_bad_suppressions(fields: dict[str, str], field: str) -> None:
    arguments: dict[str, str | None] = {
        "principal": None,
        "account": None,
        "until": None,
        "reason": None,
        **fields,
    }
    with pytest.raises(FormErrors) as caught:
        parse_suppression(now=NOW, **arguments)  # type: ignore[arg-type]
    assert field in caught.value.errors
