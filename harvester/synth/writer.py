"""The record writer of the generated organizations: raw CloudTrail records and EKS audit Events.

``DayWriter`` holds one generated day (its seeded random source, its records) and writes
records in the shapes the harvester reads, so they go through the real ``normalize_*``
functions; ``harvester.synth.org`` and ``harvester.synth.org_check`` build their days on it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

Json = dict[str, Any]
RecordKind = Literal["cloudtrail", "k8s"]
# Where a Kubernetes record belongs: the cluster's account, region and name.
Where = tuple[str, str, str]

_CT_TIME = "%Y-%m-%dT%H:%M:%SZ"
# eventSource host of a service where it differs from the name users know it by.
SERVICE_HOST = {"cloudwatch": "monitoring"}


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """One raw record and where it belongs; ``technique`` is None for normal activity."""

    time: datetime
    kind: RecordKind
    account: str
    region: str
    cluster: str | None
    record: Json
    technique: str | None = None

    @property
    def event_id(self) -> str:
        value = self.record.get("eventID") or self.record.get("auditID")
        return str(value)


class DayWriter:
    """One generated day: its random source, its records, and how to write them.

    ``role_id`` gives the stable unique id (AROA…) of a role of an account.
    """

    def __init__(
        self,
        rng: random.Random,
        start: datetime,
        index: int,
        *,
        role_id: Callable[[str, str], str],
    ) -> None:
        self.rng = rng
        self.start = start
        self.index = index
        self.role_id = role_id
        self.out: list[OrgRecord] = []
        self.technique: str | None = None

    # time

    def at(self, hour: float, jitter_minutes: float = 0.0) -> datetime:
        offset = hour * 3600 + self.rng.uniform(-jitter_minutes, jitter_minutes) * 60
        return self.start + timedelta(seconds=max(0.0, min(86399.0, offset)))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def key(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(16))

    # identities

    def role_session(
        self,
        account: str,
        role: str,
        session: str,
        *,
        path: str = "",
        web_identity: str | None = None,
        invoked_by: str | None = None,
        key: str | None = None,
    ) -> Json:
        role_id = self.role_id(account, role)
        context: Json = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{account}:role/{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {
                "creationDate": (self.start + timedelta(hours=1)).strftime(_CT_TIME),
                "mfaAuthenticated": "false",
            },
        }
        if web_identity:
            context["webIdFederationData"] = {"federatedProvider": web_identity, "attributes": {}}
        identity: Json = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": key or self.key("ASIA"),
            "sessionContext": context,
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return identity

    def user(self, account: str, name: str, key: str) -> Json:
        return {
            "type": "IAMUser",
            "principalId": "AIDA"
            + uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{name}").hex[:17].upper(),
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account,
            "accessKeyId": key,
            "userName": name,
        }

    # records

    def ct(  # noqa: PLR0917  read as a CloudTrail line: when, account, region, who, what
        self,
        when: datetime,
        account: str,
        region: str,
        identity: Json,
        service: str,
        name: str,
        *,
        ip: str,
        agent: str,
        params: Json | None = None,
        response: Json | None = None,
        error: str | None = None,
        message: str | None = None,
        read_only: bool | None = None,
        additional: Json | None = None,
        category: str = "Management",
        technique: str | None = None,
    ) -> Json:
        host = SERVICE_HOST.get(service, service)
        record: Json = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": when.strftime(_CT_TIME),
            "eventSource": f"{host}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": params,
            "responseElements": response,
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only
            if read_only is not None
            else name.startswith(("Get", "List", "Describe", "Head", "Filter", "Lookup")),
            "eventType": "AwsApiCall",
            "managementEvent": category == "Management",
            "recipientAccountId": account,
            "eventCategory": category,
        }
        if error:
            record["errorCode"] = error
            record["errorMessage"] = message or f"User is not authorized to perform: {host}:{name}"
            record["responseElements"] = None
        if additional:
            record["additionalEventData"] = additional
        self.out.append(
            OrgRecord(
                when, "cloudtrail", account, region, None, record, technique or self.technique
            )
        )
        return record

    def audit(
        self,
        when: datetime,
        where: Where,
        user: Json,
        verb: str,
        resource: str,
        *,
        ip: str,
        agent: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        group: str = "",
        code: int | None = None,
        obj: Json | None = None,
        query: str = "",
        technique: str | None = None,
        streaming: bool = False,
    ) -> Json:
        """One audit Event; with ``streaming``, an exec or attach is logged as EKS logs it:
        when the stream starts and when it ends, under one auditID."""
        prefix = f"/apis/{group}/v1" if group else "/api/v1"
        uri = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
        if name:
            uri += f"/{name}"
        if subresource:
            uri += f"/{subresource}"
        if query:
            uri += f"?{query}"
        ref: Json = {"resource": resource, "apiVersion": "v1"}
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        if group:
            ref["apiGroup"] = group
        if subresource:
            ref["subresource"] = subresource
        if code is None:
            code = 201 if verb == "create" else 200
            if subresource in ("exec", "attach"):
                code = 101
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record: Json = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse" if obj else "Metadata",
            "auditID": self.uuid(),
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": [ip],
            "userAgent": agent,
            "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
            "annotations": {
                "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                "authorization.k8s.io/reason": "",
            },
        }
        if obj is not None:
            record["requestObject"] = obj
        account, region, cluster = where
        label = technique or self.technique
        self.out.append(OrgRecord(when, "k8s", account, region, cluster, record, label))
        if streaming and subresource in ("exec", "attach"):
            # EKS leaves RequestReceived out; the stream's end comes minutes later.
            done = when + timedelta(seconds=self.rng.uniform(20, 600))
            ended = {**record, "stage": "ResponseComplete"}
            ended["stageTimestamp"] = done.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            record["stage"] = "ResponseStarted"
            self.out.append(OrgRecord(done, "k8s", account, region, cluster, ended, label))
        return record

    # Kubernetes users

    def iam_k8s_user(
        self, account: str, role: str, session: str, groups: list[str], username: str | None = None
    ) -> Json:
        role_id = self.role_id(account, role)
        return {
            "username": username or f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "uid": f"aws-iam-authenticator:{account}:{role_id}",
            "groups": [*groups, "system:authenticated"],
            "extra": {
                "accessKeyId": [self.key("ASIA")],
                "arn": [f"arn:aws:sts::{account}:assumed-role/{role}/{session}"],
                "canonicalArn": [f"arn:aws:iam::{account}:role/{role}"],
                "principalId": [role_id],
                "sessionName": [session],
            },
        }

    @staticmethod
    def service_account(namespace: str, name: str) -> Json:
        return {
            "username": f"system:serviceaccount:{namespace}:{name}",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sa/{namespace}/{name}")),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
        }


Day = TypeVar("Day", bound=DayWriter)


@dataclass(frozen=True, slots=True)
class AttackTechnique(Generic[Day]):
    """An attack step a generator can inject into a day, with the detectors meant to notice it."""

    id: str
    name: str
    mitre: tuple[str, ...]
    expected: tuple[str, ...]
    day: int
    hour: float
    inject: Callable[[Day, datetime], None]
