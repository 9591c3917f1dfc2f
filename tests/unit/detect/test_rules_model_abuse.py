"""Model access, model invocation logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harvester.detect.model import Severity
from harvester.events import Event
from tests.unit.detect.builders import ACCOUNT, ct, detect, detectors, only

Make = Callable[[], Event]

_LOGGING = {
    "loggingConfig": {
        "s3Config": {"bucketName": "model-invocation-logs", "keyPrefix": "bedrock"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": True,
        "embeddingDataDeliveryEnabled": True,
    }
}
_NOTHING = {
    "loggingConfig": {
        "s3Config": {"bucketName": "model-invocation-logs"},
        "textDataDeliveryEnabled": False,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": False,
    }
}

# detector id: (positive, negative), run with every rule's in test_rules.py
CASES: dict[str, tuple[Make, Make]] = {
    "aws.model-access-changed": (
        lambda: ct(
            "PutFoundationModelEntitlement",
            "bedrock",
            params={"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"},
        ),
        lambda: ct("ListFoundationModels", "bedrock", params={}),
    ),
    "aws.model-invocation-logging-disabled": (
        lambda: ct("DeleteModelInvocationLoggingConfiguration", "bedrock", params=None),
        lambda: ct("PutModelInvocationLoggingConfiguration", "bedrock", params=_LOGGING),
    ),
}


@pytest.mark.parametrize("name", ["PutUseCaseForModelAccess", "CreateFoundationModelAgreement"])
def test_other_model_access_calls(name: str) -> None:
    params: dict[str, Any] = {
        "offerToken": "token-redacted",
        "modelId": "meta.llama3-70b-instruct-v1:0",
    }
    assert "aws.model-access-changed" in detectors(ct(name, "bedrock", params=params))


def test_logging_rewritten_to_deliver_nothing_is_medium() -> None:
    event = ct("PutModelInvocationLoggingConfiguration", "bedrock", params=_NOTHING)
    anomaly = only(detect(event), "aws.model-invocation-logging-disabled")
    assert anomaly.severity is Severity.medium


def test_deleting_invocation_logging_is_high_and_refused_is_low() -> None:
    done = ct("DeleteModelInvocationLoggingConfiguration", "bedrock")
    refused = ct(
        "DeleteModelInvocationLoggingConfiguration",
        "bedrock",
        error="AccessDeniedException",
        message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/x/y is not authorized to perform: "
        "bedrock:DeleteModelInvocationLoggingConfiguration",
    )
    assert only(detect(done), "aws.model-invocation-logging-disabled").severity is Severity.high
    assert only(detect(refused), "aws.model-invocation-logging-disabled").severity is Severity.low


def test_logging_deletion_is_not_reported_twice() -> None:
    found = detectors(ct("DeleteModelInvocationLoggingConfiguration", "bedrock"))
    assert "aws.protection-removed" not in found
