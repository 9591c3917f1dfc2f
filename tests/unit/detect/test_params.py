"""Request parameters read the way AWS means them: networks, ports, names, shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from harvester.detect.model import Severity
from harvester.detect.rules.params import (
    ALL_PORTS,
    broad_network,
    covers,
    dig,
    internet_network,
    items,
    network,
    pick,
    port_range,
    same_name,
    structured,
)
from tests.unit.detect.builders import ACCOUNT, ct, detect, detectors, only, sso, user


@pytest.mark.parametrize(
    "cidr", ["0.0.0.0/0", "10.1.2.3/0", " 192.168.0.0/0 ", "::/0", "2001:db8::/0", "0.0.0.0/16"]
)
def test_any_prefix_zero_network_is_the_whole_internet(cidr: str) -> None:
    net = network(cidr)
    assert net is not None
    assert internet_network(net)


@pytest.mark.parametrize("cidr", ["0.0.0.0/32", "10.0.0.0/8", "203.0.113.0/24", "::1/128"])
def test_other_networks_are_not_the_whole_internet(cidr: str) -> None:
    net = network(cidr)
    assert net is not None
    assert not internet_network(net)


def test_a_slash_eight_is_broad_and_a_slash_sixteen_is_not() -> None:
    wide, narrow = network("11.0.0.0/8"), network("172.16.0.0/16")
    assert wide is not None
    assert broad_network(wide)
    assert narrow is not None
    assert not broad_network(narrow)


@pytest.mark.parametrize("value", [None, "", "not-a-cidr", {"cidrIp": "0.0.0.0/0"}, ["x"]])
def test_what_is_not_a_cidr_is_no_network(value: Any) -> None:
    assert network(value) is None


@pytest.mark.parametrize(
    ("protocol", "low", "high", "expected"),
    [
        ("-1", None, None, ALL_PORTS),
        (-1, -1, -1, ALL_PORTS),
        ("all", 80, 80, ALL_PORTS),
        ("tcp", 0, 65535, (0, 65535)),
        ("tcp", "20", "25", (20, 25)),
        ("6", 3389, 3389, (3389, 3389)),
        ("udp", -1, -1, ALL_PORTS),
        ("tcp", 25, 20, (20, 25)),
        ("icmp", -1, -1, None),
        ("58", 8, 0, None),
    ],
)
def test_port_ranges(protocol: Any, low: Any, high: Any, expected: Any) -> None:
    assert port_range(protocol, low, high) == expected


def test_a_range_covers_the_ports_between_its_ends() -> None:
    ports = port_range("tcp", 20, 25)
    assert ports is not None
    assert covers(ports, 22)
    assert not covers(ports, 3389)


def test_lists_arrive_bare_wrapped_as_json_or_alone() -> None:
    expected = [{"a": 1}]
    assert items({"items": expected}) == expected
    assert items(expected) == expected
    assert items(orjson.dumps({"items": expected}).decode()) == expected
    assert items({"a": 1}) == expected
    assert items(None) == []


def test_keys_are_found_whatever_their_casing_and_documents_however_encoded() -> None:
    assert pick({"GroupId": "sg-1"}, "groupId") == "sg-1"
    assert pick({"groupId": "", "GroupId": "sg-2"}, "groupId") == "sg-2"
    encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%7D%5D%7D"
    assert dig({"policy": encoded}, "policy", "Statement") == [{"Effect": "Allow"}]
    assert structured('{"a": 1}') == {"a": 1}
    assert structured("plain text") == "plain text"


def test_names_compare_without_case() -> None:
    assert same_name("Bob", "bob")
    assert not same_name("bob", None)


# --- the same variants through the rules that use them ------------------------------------------

_RULE_REQUEST = {
    "ModifySecurityGroupRulesRequest": {
        "GroupId": "sg-0a1b2c3d4e5f60718",
        "SecurityGroupRule": {
            "SecurityGroupRuleId": "sgr-0123456789abcdef0",
            "SecurityGroupRule": {
                "IpProtocol": "tcp",
                "FromPort": 3389,
                "ToPort": 3389,
                "CidrIpv4": "0.0.0.0/0",
            },
        },
    }
}


def _ingress(**perm: Any) -> dict[str, Any]:
    return {"groupId": "sg-0a1b2c3d4e5f60718", "ipPermissions": {"items": [perm]}}


@pytest.mark.parametrize(
    ("name", "params", "severity"),
    [
        ("ModifySecurityGroupRules", _RULE_REQUEST, Severity.high),
        (
            "AuthorizeSecurityGroupIngress",
            _ingress(
                ipProtocol="tcp",
                fromPort=20,
                toPort=25,
                ipRanges={"items": [{"cidrIp": "172.31.5.9/0"}]},
            ),
            Severity.high,
        ),
        (
            "AuthorizeSecurityGroupIngress",
            _ingress(ipProtocol="-1", ipv6Ranges={"items": [{"cidrIpv6": "::/0"}]}),
            Severity.high,
        ),
        (
            "AuthorizeSecurityGroupIngress",
            {
                "groupId": "sg-0a1b2c3d4e5f60718",
                "ipProtocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "cidrIp": "0.0.0.0/0",
            },
            Severity.high,
        ),
        (
            "AuthorizeSecurityGroupIngress",
            _ingress(ipProtocol="tcp", fromPort=443, toPort=443, ipRanges=[{"cidrIp": "::/0"}]),
            Severity.low,
        ),
        (
            "CreateNetworkAclEntry",
            {
                "networkAclId": "acl-0123456789abcdef0",
                "ruleNumber": 100,
                "egress": False,
                "ruleAction": "allow",
                "aclProtocol": "6",
                "cidrBlock": "0.0.0.0/0",
                "portRange": {"from": 0, "to": 65535},
            },
            Severity.medium,
        ),
    ],
)
def test_openings_to_the_internet_in_every_recorded_shape(
    name: str, params: dict[str, Any], severity: Severity
) -> None:
    anomaly = only(detect(ct(name, "ec2", params=params)), "aws.network-opened-to-internet")
    assert anomaly.severity is severity


def test_icmp_and_narrow_ranges_are_not_openings() -> None:
    icmp = _ingress(ipProtocol="icmp", fromPort=-1, toPort=-1, ipRanges=[{"cidrIp": "0.0.0.0/0"}])
    narrow = _ingress(ipProtocol="tcp", fromPort=22, toPort=22, ipRanges=[{"cidrIp": "0.0.0.0/32"}])
    for params in (icmp, narrow):
        event = ct("AuthorizeSecurityGroupIngress", "ec2", params=params)
        assert "aws.network-opened-to-internet" not in detectors(event)


def test_a_user_creating_a_key_for_itself_in_another_case_is_itself() -> None:
    mine = ct("CreateAccessKey", identity=user("Pat"), params={"userName": "pat"})
    other = ct("CreateAccessKey", identity=user("Pat"), params={"userName": "bob"})
    assert "aws.iam-access-key-for-other-user" not in detectors(mine)
    assert "aws.iam-access-key-for-other-user" in detectors(other)


def test_admin_policy_arns_compare_without_case() -> None:
    event = ct(
        "AttachUserPolicy",
        params={"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/administratoraccess"},
    )
    assert "aws.iam-admin-granted" in detectors(event)


def test_a_trust_policy_as_url_encoded_text_is_read() -> None:
    document = (
        "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow"
        "%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A999988887777%3Aroot%22"
        "%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"
    )
    event = ct("UpdateAssumeRolePolicy", params={"roleName": "ops", "policyDocument": document})
    assert ACCOUNT not in document
    assert "aws.iam-trust-opened" in detectors(event)


# --- a database snapshot taken by hand (aws.database-export) --------------------------------------

_SNAPSHOT = {"dBInstanceIdentifier": "orders-db", "dBSnapshotIdentifier": "orders-copy"}


def test_a_database_snapshot_taken_by_a_person_is_low_and_by_aws_backup_is_nothing() -> None:
    person = ct("CreateDBSnapshot", "rds", identity=sso(), params=_SNAPSHOT)
    backup = ct(
        "CreateDBSnapshot",
        "rds",
        identity={"type": "AWSService", "invokedBy": "backup.amazonaws.com"},
        params=_SNAPSHOT,
        agent="backup.amazonaws.com",
    )
    pipeline = ct(
        "CreateDBSnapshot", "rds", params=_SNAPSHOT, agent="APN/1.0 HashiCorp/1.0 Terraform/1.7.5"
    )
    assert only(detect(person), "aws.database-export").severity is Severity.low
    assert "aws.database-export" not in detectors(backup)
    assert "aws.database-export" not in detectors(pipeline)
