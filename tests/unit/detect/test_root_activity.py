"""Root use is graded: a password-only sign-in and writes are high, root's own tasks low."""

from __future__ import annotations

from typing import Any

import pytest

from harvester.detect.model import Severity
from tests.unit.detect.builders import ct, detect, root

_NO_MFA = {"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com/console/home"}
_MFA = {"MFAUsed": "Yes", "LoginTo": "https://console.aws.amazon.com/console/home"}
_OK = {"ConsoleLogin": "Success"}


def _root_severity(**kwargs: Any) -> Severity | None:
    found = [a for a in detect(ct(identity=root(), **kwargs)) if a.detector == "aws.root-activity"]
    return found[0].severity if found else None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # Sign-in: the password alone is high, with the MFA device medium.
        (
            {"name": "ConsoleLogin", "service": "signin", "additional": _NO_MFA, "response": _OK},
            Severity.high,
        ),
        (
            {"name": "ConsoleLogin", "service": "signin", "additional": _MFA, "response": _OK},
            Severity.medium,
        ),
        # A write anywhere is high.
        ({"name": "AttachUserPolicy", "service": "iam", "read_only": False}, Severity.high),
        # Root's own tasks and reads are low: the sign-in before them was reported.
        ({"name": "SetContactAddress", "service": "billingconsole"}, Severity.low),
        ({"name": "CreateServiceLinkedRole", "service": "iam"}, Severity.low),
        ({"name": "ListAccessKeys", "service": "iam", "read_only": True}, Severity.low),
        # A refused call is an attempt: low.
        ({"name": "CreateUser", "service": "iam", "error": "AccessDenied"}, Severity.low),
    ],
)
def test_root_activity_severity(kwargs: dict[str, Any], expected: Severity) -> None:
    assert _root_severity(**kwargs) == expected


def test_a_failed_sign_in_event_is_a_failure_whatever_its_name() -> None:
    # CloudTrail records PasswordUpdated's failure in responseElements, as for ConsoleLogin.
    event = ct(
        "PasswordUpdated", "signin", identity=root(), response={"PasswordUpdated": "Failure"}
    )
    assert not event.outcome.success
    assert (
        _root_severity(
            name="PasswordUpdated", service="signin", response={"PasswordUpdated": "Failure"}
        )
        == Severity.low
    )
