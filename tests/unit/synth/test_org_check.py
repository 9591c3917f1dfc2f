"""org-check, the second generated organization: its size and mix, AWS's record shapes, labels."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from datetime import timedelta

import orjson

from harvester.synth import org as tuning
from harvester.synth.org_check import (
    ATTACKS,
    DEFAULT_DAYS,
    DEFAULT_START,
    default_org,
    generate,
    to_event,
)


def test_org_tuning_output_is_unchanged() -> None:
    # org-check reuses org.py's helpers; the tuning organization's bytes must not move.
    records = tuning.generate(days=2, scale=0.1)
    digest = hashlib.sha256(b"".join(orjson.dumps(r.record) for r in records)).hexdigest()
    assert digest == "942be16e78c322e8e63caf3d58506c3052f660dd54100ff44923427e4fd06db0"


def test_another_size_and_mix_than_org_tuning() -> None:
    org = default_org()
    assert len(org.accounts) == 10
    assert len(org.clusters) == 3
    assert DEFAULT_DAYS == 21
    assert {a.id for a in org.accounts}.isdisjoint({a.id for a in tuning.default_org().accounts})
    assert len(ATTACKS) >= 12
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)
    assert all(a.expected and a.mitre and a.day < DEFAULT_DAYS for a in ATTACKS)


def test_deterministic_time_ordered_and_normalized() -> None:
    first = [r.record for r in itertools.islice(generate(scale=0.1), 800)]
    again = [r.record for r in itertools.islice(generate(scale=0.1), 800)]
    assert first == again
    records = list(generate(days=2, scale=0.1, attacks=False))
    times = [r.time for r in records]
    assert times == sorted(times)
    assert DEFAULT_START <= times[0] < times[-1] < DEFAULT_START + timedelta(days=2)
    events = [to_event(r, index=i) for i, r in enumerate(records)]
    assert {e.cluster for e in events if e.source == "eks"} == {
        c.name for c in default_org().clusters
    }
    assert {
        "assumed_role",
        "iam_user",
        "aws_service",
        "web_identity_user",
        "k8s_user",
        "k8s_serviceaccount",
    } <= {e.principal.type for e in events}


def test_records_follow_aws_shapes() -> None:
    records = list(generate(days=DEFAULT_DAYS, scale=0.05))
    trail = [r.record for r in records if r.kind == "cloudtrail"]
    denied = [
        r
        for r in trail
        if r.get("errorCode") == "AccessDenied" and r["eventSource"] != "s3.amazonaws.com"
    ]
    assert denied
    assert all(
        r["errorMessage"].startswith(f"User: {r['userIdentity']['arn']} is not authorized")
        for r in denied
    )
    assert any(r.get("errorCode") == "Client.UnauthorizedOperation" for r in trail)
    assert any(r.get("errorCode") == "Client.VcpuLimitExceeded" for r in trail)
    instance_sessions = [
        r["userIdentity"]
        for r in trail
        if r["userIdentity"].get("sessionContext", {}).get("ec2RoleDelivery")
    ]
    assert instance_sessions
    assert all(u["arn"].rsplit("/", 1)[1].startswith("i-0") for u in instance_sessions)
    assert {r["userIdentity"]["type"] for r in trail} >= {
        "AssumedRole",
        "IAMUser",
        "AWSService",
        "FederatedUser",
    }
    # An exec is logged when it starts and when it ends, under one auditID.
    audits = [r.record for r in records if r.kind == "k8s"]
    execs = [a for a in audits if a["objectRef"].get("subresource") == "exec"]
    by_id = Counter(a["auditID"] for a in execs)
    assert execs
    assert set(by_id.values()) == {2}
    assert {a["stage"] for a in execs} == {"ResponseStarted", "ResponseComplete"}
    assert "RequestReceived" not in {a["stage"] for a in audits}
    # Access entries: the SSO session name with "@" turned into "-".
    people = [
        a["user"] for a in audits if "@" in str(a["user"].get("extra", {}).get("sessionName"))
    ]
    assert people
    assert all("@" not in u["username"] for u in people)
    assert all(
        u["username"].endswith(u["extra"]["sessionName"][0].replace("@", "-")) for u in people
    )


def test_attacks_are_labelled_on_their_day() -> None:
    records = list(generate(days=DEFAULT_DAYS, scale=0.02))
    labelled = Counter(r.technique for r in records if r.technique)
    assert set(labelled) == {a.id for a in ATTACKS}
    for attack in ATTACKS:
        days = {r.time.date() for r in records if r.technique == attack.id}
        assert days == {(DEFAULT_START + timedelta(days=attack.day)).date()}
