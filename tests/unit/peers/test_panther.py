"""Panther's rules through panther-core: the harness, alerting (dedup, threshold), the cache stand-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from benchmarks.peers import panther
from benchmarks.peers.cases import Case


def _send_command(instance: str, minute: int) -> dict[str, object]:
    # CloudTrail record of SSM SendCommand, as AWS logs it (requestParameters.instanceIds).
    return {
        "eventVersion": "1.08",
        "eventTime": f"2026-03-02T10:{minute:02d}:00Z",
        "eventSource": "ssm.amazonaws.com",
        "eventName": "SendCommand",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/ops",
            "accountId": "111122223333",
            "userName": "ops",
        },
        "requestParameters": {"instanceIds": [instance], "documentName": "AWS-RunShellScript"},
        "responseElements": None,
    }


def test_rule_tests_pass_through_the_harness(panther_snapshot: None) -> None:
    rules = panther.load_rules(only=["aws_cloudtrail_stopped.yml", "k8s_pod_host_network.yml"])
    passed, failures = panther.run_rule_tests(rules, panther.load_data_models())
    assert failures == []
    assert passed >= 4


def test_cache_backed_rule_alerts_only_with_the_stand_in(panther_snapshot: None) -> None:
    rules = panther.load_rules(only=["aws_ssm_distributed_command.yml"])
    assert [r.needs for r in rules] == ["cache"]
    cases = [
        Case(_send_command(f"i-0{n}aaaaaaaaaaaaaaa", n), "cloudtrail", "attack", "run-command")
        for n in range(4)
    ]
    models = panther.load_data_models()
    variants = ("panther", "panther+cache")
    alone = panther.alerts(cases, variants, per_case=True, rules=rules, models=models)
    # Each record alone: one instance each, under the rule's threshold of instances.
    assert alone["panther+cache"] == ([], {})
    stream = panther.alerts(cases, variants, per_case=False, rules=rules, models=models)
    alerts, errors = stream["panther+cache"]
    assert [(a.rule, a.cases) for a in alerts] == [("AWS.SSM.DistributedCommand", (2, 3))]
    assert errors == {}
    assert stream["panther"] == ([], {})  # the variant without the cache leaves the rule out


def test_memory_cache_expires_on_event_time() -> None:
    cache = panther.MemoryCache(now=datetime(2026, 3, 2, tzinfo=UTC))
    cache.put_string_set("k", {"a"}, epoch_seconds=3600)
    assert cache.get_string_set("k") == {"a"}
    cache.now += timedelta(hours=2)
    assert cache.get_string_set("k") == set()


def test_alerter_groups_by_dedup_period_and_waits_for_the_threshold() -> None:
    rule = panther.PantherPeerRule(
        id="R",
        rule=None,
        log_types=frozenset(),
        severity="high",
        threshold=2,
        dedup_minutes=60,
        alerts=True,
        needs="",
        tests=[],
        path=panther.ROOT,
    )
    alerter = panther.Alerter()
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for index, minutes in enumerate((0, 30, 90)):
        alerter.add(panther.Match(rule, "high", "same"), index, start + timedelta(minutes=minutes))
    # 0 and 30 fall in one period and reach the threshold; 90 opens a second period alone.
    assert [a.matches for a in alerter.raised()] == [[0, 1]]
