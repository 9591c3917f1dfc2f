"""Small CloudTrail records and Kubernetes audit events for detector tests.

Each builder returns a raw record that goes through the real ``normalize_*`` functions, so a
test exercises what the pipeline would hand the detectors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from harvester.detect.engine import EngineConfig, Scorer
from harvester.detect.model import Anomaly
from harvester.detect.rules import RuleConfig
from harvester.detect.state import MemoryStore, StateStore
from harvester.events import Event, normalize_cloudtrail, normalize_k8s

ACCOUNT = "111122223333"
OTHER = "444455556666"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 2, 1, tzinfo=UTC)
PUBLIC_IP = "81.2.69.142"
_ids = itertools.count()


def role(name: str = "deployer", session: str = "s-1", account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{account}:role/{name}",
                "accountId": account,
                "userName": name,
            },
            "attributes": {"mfaAuthenticated": "false"},
        },
    }


def sso(person: str = "pat@example.com", account: str = ACCOUNT) -> dict[str, Any]:
    identity = role("AWSReservedSSO_Dev_0123456789abcdef", person, account)
    identity["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/"
        "AWSReservedSSO_Dev_0123456789abcdef"
    )
    return identity


def user(
    name: str = "pat", key: str = "AKIAEXAMPLEKEY000001", account: str = ACCOUNT
) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": key,
        "userName": name,
    }


def root(account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
    }


def instance(role_name: str = "app", instance_id: str = "i-0123456789abcdef0") -> dict[str, Any]:
    return role(role_name, instance_id)


def ct(
    name: str,
    service: str = "iam",
    *,
    params: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    additional: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
    error: str | None = None,
    message: str | None = None,
    ip: str = PUBLIC_IP,
    agent: str = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
    when: datetime = T0,
    region: str = "us-east-1",
    account: str = ACCOUNT,
    vpce: str | None = None,
    read_only: bool | None = None,
    event_id: str | None = None,
) -> Event:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventID": event_id or f"ct-{next(_ids)}",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "recipientAccountId": account,
        "userIdentity": identity if identity is not None else role(),
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": params,
        "responseElements": response,
    }
    if read_only is not None:
        record["readOnly"] = read_only
    if additional is not None:
        record["additionalEventData"] = additional
    if error:
        record["errorCode"] = error
        record["errorMessage"] = message or "denied"
    if vpce:
        record["vpcEndpointId"] = vpce
    return normalize_cloudtrail(record, bucket="bucket", key="AWSLogs/test.json.gz", index=0)


def k8s_user(name: str = "pat@example.com", groups: Sequence[str] = ("devs",)) -> dict[str, Any]:
    return {"username": name, "groups": [*groups, "system:authenticated"]}


def sa(namespace: str, name: str) -> dict[str, Any]:
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "groups": ["system:serviceaccounts", "system:authenticated"],
    }


def k8s(
    verb: str,
    resource: str,
    *,
    namespace: str | None = "default",
    name: str | None = None,
    subresource: str | None = None,
    user: dict[str, Any] | None = None,
    obj: dict[str, Any] | None = None,
    code: int | None = None,
    uri: str | None = None,
    ip: str = "10.0.1.20",
    agent: str = "kubectl/v1.29.2 (linux/amd64)",
    when: datetime = T0,
    stage: str = "ResponseComplete",
    event_id: str | None = None,
) -> Event:
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if subresource:
        ref["subresource"] = subresource
    if code is None:
        code = 201 if verb == "create" else 200
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": event_id or f"k8s-{next(_ids)}",
        "stage": stage,
        "requestURI": uri or f"/api/v1/{resource}",
        "verb": verb,
        "user": user if user is not None else k8s_user(),
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": ref,
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": stamp,
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"},
    }
    if obj is not None:
        record["requestObject"] = obj
    return normalize_k8s(
        record,
        cluster="prod",
        account=ACCOUNT,
        region="us-east-1",
        bucket="bucket",
        key="EKSLogs/test",
        index=0,
    )


def scorer(
    store: StateStore | None = None,
    *,
    learning: timedelta = timedelta(days=7),
    known: frozenset[str] = frozenset(),
    **config: Any,
) -> Scorer:
    return Scorer(
        store=store if store is not None else MemoryStore(),
        config=EngineConfig(
            rules=RuleConfig(known_accounts=known), learning_period=learning, **config
        ),
        clock=lambda: NOW,
    )


def detect(*events: Event, store: StateStore | None = None) -> list[Anomaly]:
    return scorer(store).score_and_commit(list(events)).anomalies


def detectors(*events: Event) -> set[str]:
    return {a.detector for a in detect(*events)}


def denied_message(principal_arn: str, action: str, resource: str) -> str:
    """The errorMessage AWS records for an AccessDenied of an identity-based policy."""
    return (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


EC2_UNAUTHORIZED = (
    "You are not authorized to perform this operation. Encoded authorization failure message: "
    "4nAhEzBXmP3d1Hs"
)
DRY_RUN = "Request would have succeeded, but DryRun flag is set."


def only(anomalies: Sequence[Anomaly], detector: str) -> Anomaly:
    """The one anomaly of ``detector``; fails if there is none or several."""
    (found,) = [a for a in anomalies if a.detector == detector]
    return found
