"""The Sigma evaluator: pySigma's parsed conditions matched on nested CloudTrail and k8s records."""

from __future__ import annotations

import pytest

from benchmarks.peers import sigma
from benchmarks.peers.cases import Case

# A rule written for these tests (not from the pack), using the constructs the pack uses.
RULE = """
title: Test - security group opened from anywhere
id: 6f1d2c4e-0000-4000-8000-000000000001
status: test
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: ec2.amazonaws.com
        eventName|startswith: 'AuthorizeSecurityGroup'
        requestParameters.ipPermissions.items.ipRanges.items.cidrIp: '0.0.0.0/0'
        sourceIPAddress|cidr: '203.0.113.0/24'
    filter_error:
        errorCode|contains: 'denied'
    filter_agent:
        userAgent: null
    condition: selection and not 1 of filter_*
level: high
tags:
    - attack.t1562.007
"""


def _authorize(cidr: str, **extra: object) -> dict[str, object]:
    # Shape of a CloudTrail AuthorizeSecurityGroupIngress record (requestParameters as AWS logs them).
    return {
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress",
        "userAgent": "aws-cli/2.15.0",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {
            "groupId": "sg-0123456789abcdef0",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}, {"cidrIp": cidr}]},
                    }
                ]
            },
        },
        **extra,
    }


def test_rule_metadata_comes_from_pysigma() -> None:
    rule = sigma.parse_rule(RULE)
    assert (rule.kind, rule.severity) == ("cloudtrail", "high")


@pytest.mark.parametrize(
    ("record", "fires"),
    [
        (_authorize("0.0.0.0/0"), True),  # a list element deep in the record matches
        (_authorize("10.1.0.0/16"), False),  # no element equal
        ({**_authorize("0.0.0.0/0"), "sourceIPAddress": "198.51.100.7"}, False),  # outside the cidr
        (_authorize("0.0.0.0/0", errorCode="Client.InvalidPermission.Duplicate"), True),
        (_authorize("0.0.0.0/0", errorCode="AccessDenied"), False),  # contains, case-insensitive
        ({**_authorize("0.0.0.0/0"), "userAgent": None}, False),  # null = missing or null
        ({**_authorize("0.0.0.0/0"), "eventName": "authorizesecuritygroupegress"}, True),
    ],
)
def test_conditions_modifiers_and_nested_fields(record: dict[str, object], fires: bool) -> None:
    assert sigma.parse_rule(RULE).matches(record) is fires


def test_an_object_field_is_matched_as_its_json_text() -> None:
    record = {"requestParameters": {"policy": {"Statement": [{"Principal": "*"}]}}}
    assert sigma.field_values(record, "requestParameters.policy") == [
        '{"Statement":[{"Principal":"*"}]}'
    ]


def test_alerts_name_each_matching_record_once_per_rule() -> None:
    rule = sigma.parse_rule(RULE)
    cases = [
        Case(_authorize("0.0.0.0/0"), "cloudtrail", "attack", "sg-open"),
        Case(_authorize("10.1.0.0/16"), "cloudtrail", "benign", "normal"),
        Case({"verb": "create"}, "k8s", "benign", "normal"),  # another log type: not evaluated
    ]
    alerts = sigma.alerts(cases, [rule])
    assert [(a.rule, a.severity, a.cases) for a in alerts] == [(rule.title, "high", (0,))]


def test_every_snapshot_rule_parses(sigma_snapshot: None) -> None:
    rules, failed = sigma.load_rules()
    assert failed == []
    assert {r.kind for r in rules} == {"cloudtrail", "k8s"}
