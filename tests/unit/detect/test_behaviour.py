"""Behavioural detectors: learning in event time, novelty, bursts, bounded state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.detect.engine import Scorer
from harvester.detect.model import Anomaly
from harvester.detect.state import MemoryStore
from harvester.events import Event
from tests.unit.detect.builders import T0, ct, instance, k8s, k8s_user, sa, scorer, sso, user

HOME = "81.2.69.142"
ELSEWHERE = "5.188.10.99"


def _train(s: Scorer, events: list[Event]) -> None:
    for start in range(0, len(events), 50):
        s.score_and_commit(events[start : start + 50])


def _daily(make: object, days: int = 8) -> list[Event]:
    return [make(T0 + timedelta(days=d, hours=h)) for d in range(days) for h in (1, 5)]  # type: ignore[operator]


def _found(s: Scorer, *events: Event) -> dict[str, Anomaly]:
    return {a.detector: a for a in s.score_and_commit(list(events)).anomalies}


def test_new_network_after_the_learning_period() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=t)))
    later = T0 + timedelta(days=9)
    found = _found(s, ct("ListBuckets", "s3", identity=sso(), ip=ELSEWHERE, when=later))
    anomaly = found["behav.new-network"]
    assert "5.188.10.0/24" in anomaly.explanation
    assert "First time in 8 days of history" in anomaly.explanation
    assert "81.2.69.0/24" in anomaly.explanation  # its usual networks
    assert not _found(s, ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=later))


def test_no_novelty_during_the_learning_period() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=t), days=3))
    found = _found(
        s, ct("ListBuckets", "s3", identity=sso(), ip=ELSEWHERE, when=T0 + timedelta(days=3))
    )
    assert "behav.new-network" not in found


def test_learning_is_measured_in_event_time_not_wall_time() -> None:
    # The scorer's clock stays put (a replay of old logs): only event times move.
    s = scorer()
    old = T0 - timedelta(days=400)
    _train(
        s, _daily(lambda t: ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=t - (T0 - old)))
    )
    found = _found(
        s, ct("ListBuckets", "s3", identity=sso(), ip=ELSEWHERE, when=old + timedelta(days=9))
    )
    assert "behav.new-network" in found


def test_principals_that_roam_are_left_alone() -> None:
    s = scorer()
    events = [
        ct(
            "GetObject",
            "s3",
            identity=sso(),
            ip=f"{40 + d}.{h}.1.9",
            when=T0 + timedelta(days=d, hours=h),
        )
        for d in range(8)
        for h in range(4)
    ]
    _train(s, events)
    found = _found(
        s, ct("GetObject", "s3", identity=sso(), ip=ELSEWHERE, when=T0 + timedelta(days=9))
    )
    assert "behav.new-network" not in found


def test_first_sensitive_call_names_the_usual_actions() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=t)))
    event = ct("CreateAccessKey", "iam", identity=sso(), ip=HOME, when=T0 + timedelta(days=9))
    anomaly = _found(s, event)["behav.new-sensitive-action"]
    assert "iam:CreateAccessKey" in anomaly.explanation
    assert "s3:ListBuckets" in anomaly.explanation
    # A first harmless read is learned, not reported.
    read = ct("DescribeVpcs", "ec2", identity=sso(), ip=HOME, when=T0 + timedelta(days=9))
    assert "behav.new-sensitive-action" not in _found(s, read)


def test_new_region_for_the_account() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("DescribeInstances", "ec2", identity=sso(), when=t)))
    event = ct(
        "RunInstances", "ec2", identity=sso(), region="ap-southeast-3", when=T0 + timedelta(days=9)
    )
    found = _found(s, event)
    assert "behav.new-region-account" in found
    assert "behav.new-region-principal" in found
    assert "ap-southeast-3" in found["behav.new-region-account"].explanation


def test_workload_with_a_new_tool() -> None:
    s = scorer()
    agent = "aws-sdk-java/2.25 Linux/6.1"
    _train(s, _daily(lambda t: ct("GetObject", "s3", identity=sso(), when=t, agent=agent)))
    _train(s, _daily(lambda t: ct("GetObject", "s3", when=t, agent=agent)))
    later = T0 + timedelta(days=9)
    workload = _found(s, ct("GetObject", "s3", when=later, agent="python-requests/2.31"))
    assert workload["behav.new-user-agent"].severity.value == "medium"


def test_access_key_from_a_new_network() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("PutObject", "s3", identity=user(), ip=HOME, when=t)))
    found = _found(
        s, ct("PutObject", "s3", identity=user(), ip=ELSEWHERE, when=T0 + timedelta(days=9))
    )
    assert "AKIAEXAMPLEKEY000001" in found["behav.access-key-new-network"].explanation


def test_instance_credentials_from_outside_the_role_networks() -> None:
    s = scorer()
    agent = "aws-sdk-java/2.25 Linux/6.1"
    _train(
        s,
        _daily(
            lambda t: ct("GetObject", "s3", identity=instance(), ip="10.0.3.4", when=t, agent=agent)
        ),
    )
    later = T0 + timedelta(days=9)
    found = _found(
        s, ct("GetObject", "s3", identity=instance(), ip=ELSEWHERE, when=later, agent=agent)
    )
    anomaly = found["behav.instance-credentials-elsewhere"]
    assert anomaly.severity.value == "high"
    assert "arn:aws:iam::111122223333:role/app" in anomaly.explanation


def test_instance_credentials_from_a_public_address_before_learning() -> None:
    found = _found(scorer(), ct("GetObject", "s3", identity=instance(), ip=ELSEWHERE))
    assert found["behav.instance-credentials-elsewhere"].severity.value == "low"


def test_new_kubernetes_user_and_first_sensitive_action() -> None:
    s = scorer()
    _train(s, _daily(lambda t: k8s("get", "pods", user=k8s_user("pat@example.com"), when=t)))
    later = T0 + timedelta(days=9)
    newcomer = _found(s, k8s("get", "pods", user=k8s_user("lee@example.com"), when=later))
    assert "lee@example.com" in newcomer["behav.new-k8s-user"].explanation
    # A new engineer's first read is how people start: low. A first request that lists
    # secrets is how a stolen identity starts: the detector's medium.
    assert newcomer["behav.new-k8s-user"].severity.value == "low"
    grab = k8s("list", "secrets", namespace=None, user=k8s_user("kim@example.com"), when=later)
    first_grab = _found(s, grab)["behav.new-k8s-user"]
    assert first_grab.severity.value == "medium"
    assert "its first request was a sensitive action" in first_grab.explanation
    exec_ = k8s("create", "pods", name="web-1", subresource="exec", code=101, when=later)
    assert "behav.new-k8s-action" in _found(s, exec_)


def test_first_uses_of_one_detector_fold_into_one_anomaly_a_day() -> None:
    s = scorer()
    _train(s, _daily(lambda t: ct("ListBuckets", "s3", identity=sso(), ip=HOME, when=t)))
    later = T0 + timedelta(days=9)
    found = s.score_and_commit(
        [
            ct(name, "iam", identity=sso(), ip=HOME, when=later + timedelta(seconds=n))
            for n, name in enumerate(("CreateRole", "AttachRolePolicy", "CreateAccessKey"))
        ]
    ).anomalies
    firsts = [a for a in found if a.detector == "behav.new-sensitive-action"]
    assert len(firsts) == 1
    assert firsts[0].count == 3


def test_service_accounts_are_not_new_users() -> None:
    s = scorer()
    _train(s, _daily(lambda t: k8s("get", "pods", user=k8s_user("pat@example.com"), when=t)))
    found = _found(s, k8s("get", "pods", user=sa("shop", "cart"), when=T0 + timedelta(days=9)))
    assert "behav.new-k8s-user" not in found


def _denied(at: object, n: int) -> list[Event]:
    return [
        ct("ListUsers", "iam", identity=sso(), error="AccessDenied", when=at + timedelta(seconds=i))  # type: ignore[operator]
        for i in range(n)
    ]


def test_access_denied_burst_against_the_principal_own_peak() -> None:
    s = scorer()
    # A week with a handful of refusals a day: the peak is small.
    history = [e for d in range(8) for e in _denied(T0 + timedelta(days=d), 3)]
    _train(s, history)
    burst = _denied(T0 + timedelta(days=9), 25)
    anomaly = _found(s, *burst)["behav.access-denied-burst"]
    assert anomaly.count == 25
    assert "usual peak is 3 per 10 minutes; the alert threshold is 15" in anomaly.explanation


def test_a_principal_that_is_refused_a_lot_every_day_is_not_a_burst() -> None:
    s = scorer()
    history = [e for d in range(8) for e in _denied(T0 + timedelta(days=d), 30)]
    _train(s, history)
    assert "behav.access-denied-burst" not in _found(s, *_denied(T0 + timedelta(days=9), 25))


def test_bursts_before_learning_need_twice_the_minimum_or_the_peak_so_far() -> None:
    assert "behav.access-denied-burst" not in _found(scorer(), *_denied(T0, 29))
    assert "behav.access-denied-burst" in _found(scorer(), *_denied(T0, 30))
    s = scorer()
    s.score_and_commit(_denied(T0, 25))
    # An hour later the first window is history: 4 x 25 is the bar, not 30.
    assert "behav.access-denied-burst" not in _found(s, *_denied(T0 + timedelta(hours=1), 60))


def test_error_variety_burst() -> None:
    codes = [
        "AccessDenied",
        "NoSuchEntity",
        "ValidationError",
        "InvalidParameter",
        "Throttling",
        "NotFound",
        "OptInRequired",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "MalformedPolicyDocument",
    ]
    events = [
        ct("ListUsers", "iam", identity=sso(), error=code, when=T0 + timedelta(seconds=i))
        for i, code in enumerate(codes)
    ]
    anomaly = _found(scorer(), *events)["behav.error-variety-burst"]
    assert "10 distinct error codes" in anomaly.explanation


def test_burst_counts_accumulate_across_batches_of_one_window() -> None:
    s = scorer()
    burst = _denied(T0, 40)
    assert "behav.access-denied-burst" not in _found(s, *burst[:20])
    assert "behav.access-denied-burst" in _found(s, *burst[20:])


def test_baselines_are_bounded() -> None:
    store = MemoryStore()
    s = scorer(store)
    events = [
        ct(f"Describe{i}", "ec2", identity=sso(), when=T0 + timedelta(seconds=i))
        for i in range(1500)
    ]
    _train(s, events)
    sizes = [len(data) for _, data, _ in store._hashes.values()]
    assert max(sizes) <= 1024 + 4


def _many(make: object, n: int) -> list[Event]:
    return [make(T0 + timedelta(seconds=i)) for i in range(n)]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("detector", "make", "minimum"),
    [
        (
            "behav.secret-read-burst",
            lambda t: ct("GetSecretValue", "secretsmanager", identity=sso(), when=t),
            20,
        ),
        ("behav.object-read-burst", lambda t: ct("GetObject", "s3", identity=sso(), when=t), 300),
        (
            "behav.destructive-burst",
            lambda t: ct("TerminateInstances", "ec2", identity=sso(), when=t),
            15,
        ),
        (
            "behav.secret-read-burst",
            lambda t: k8s("get", "secrets", name="s", user=sa("shop", "cart"), when=t),
            20,
        ),
        (
            "behav.destructive-burst",
            lambda t: k8s("delete", "pods", name="p", user=k8s_user("pat@example.com"), when=t),
            15,
        ),
    ],
)
def test_bursts_fire_above_and_stay_quiet_below(detector: str, make: object, minimum: int) -> None:
    # Before learning, twice the minimum is needed.
    assert detector not in _found(scorer(), *_many(make, 2 * minimum - 1))
    assert detector in _found(scorer(), *_many(make, 2 * minimum))
