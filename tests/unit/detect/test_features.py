"""Shared facts: networks, user-agent families, principals, policy documents."""

from __future__ import annotations

import pytest

from harvester.detect.features import (
    allows_everything,
    behaviour_entity,
    desktop_os,
    grants_outside,
    is_human,
    network_of,
    offensive_tool,
    ua_family,
)
from tests.unit.detect.builders import ACCOUNT, ct, instance, k8s, k8s_user, role, sso


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("81.2.69.142", "81.2.69.0/24"),
        ("2a00:1450:4001:81d::200e", "2a00:1450:4001:81d::/64"),
        ("10.1.2.3", "private"),
        ("172.20.1.1", "private"),
        ("ec2.amazonaws.com", None),
        ("AWS Internal", None),
        (None, None),
    ],
)
def test_network_of(ip: str | None, network: str | None) -> None:
    assert network_of(ip) == network


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        ("aws-cli/2.15.30 Python/3.11.8 Darwin/23.3.0 command/cloudformation.describe", "aws-cli"),
        ("APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io)", "terraform"),
        ("[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]", "aws-cli"),
        ("Boto3/1.34.69 md/Botocore#1.34.69", "boto3"),
        ("console.amazonaws.com", "console"),
        ("autoscaling.amazonaws.com", "service:autoscaling"),
        ("Mozilla/5.0 (Macintosh)", "browser"),
        ("AWS Internal", "aws-internal"),
        (None, "none"),
    ],
)
def test_ua_family(agent: str | None, family: str) -> None:
    assert ua_family(agent) == family


def test_desktop_os_and_offensive_tools() -> None:
    assert desktop_os("aws-cli/2 Python/3 Darwin/23.1.0") == "macOS"
    assert desktop_os("aws-cli/2 Python/3 Windows/10") == "Windows"
    assert desktop_os("aws-sdk-java/2 Linux/6.1") is None
    assert offensive_tool("Pacu/1.5 aws-cli") == "pacu"
    assert offensive_tool("aws-cli/2 Linux/6.5.0-kali3-amd64") == "kali"
    assert offensive_tool("kalibrate/1.0") is None


def test_behaviour_entity_follows_people_and_workloads_across_sources() -> None:
    person_ct = ct("ListBuckets", "s3", identity=sso("pat@example.com"))
    role_arn = "arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_0123456789abcdef"
    person_k8s = k8s(
        "get",
        "pods",
        user={
            "username": "pat@example.com",
            "extra": {
                "arn": [
                    "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_0123456789abcdef"
                    "/pat@example.com"
                ],
                "canonicalArn": [role_arn],
                "sessionName": ["pat@example.com"],
            },
        },
    )
    assert (
        behaviour_entity(person_ct) == behaviour_entity(person_k8s) == f"{role_arn}/pat@example.com"
    )
    # Sessions of a workload role are one entity.
    one = behaviour_entity(ct("ListBuckets", "s3", identity=role("ci", "run-1")))
    two = behaviour_entity(ct("ListBuckets", "s3", identity=role("ci", "run-2")))
    assert one == two == "arn:aws:iam::111122223333:role/ci"
    assert behaviour_entity(ct("ListBuckets", "s3", identity=instance())) == (
        "arn:aws:iam::111122223333:role/app"
    )
    node = k8s("get", "pods", user=k8s_user("system:node:ip-10-0-0-1.ec2.internal"))
    assert behaviour_entity(node) == "system:node:*"


def test_grants_outside() -> None:
    def doc(principal: object, **condition: object) -> dict[str, object]:
        statement: dict[str, object] = {"Effect": "Allow", "Principal": principal, "Action": "*"}
        if condition:
            statement["Condition"] = condition
        return {"Statement": [statement]}

    own, known = "111122223333", frozenset(("222233334444",))
    assert grants_outside(doc("*"), own=own, known=known) == (True, set())
    assert grants_outside(
        doc("*", StringEquals={"aws:PrincipalOrgID": "o-1"}), own=own, known=known
    ) == (False, set())
    assert grants_outside(doc("*", StringEquals={"sts:ExternalId": "x"}), own=own, known=known) == (
        True,
        set(),
    )
    assert grants_outside(
        doc({"AWS": ["arn:aws:iam::999988887777:root", "222233334444", own]}), own=own, known=known
    ) == (False, {"999988887777"})
    assert grants_outside('{"Statement": "bad"}', own=own, known=known) == (False, set())


def test_allows_everything() -> None:
    admin = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    scoped = '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    deny = '{"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}'
    assert allows_everything(admin)
    assert not allows_everything(scoped)
    assert not allows_everything(deny)


# --- people ---------------------------------------------------------------------------------------


def test_identity_center_sessions_are_people_by_the_role_path_whatever_the_role_name() -> None:
    identity = role("REDACTED", "pat")
    identity["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/REDACTED"
    )
    assert is_human(ct("ListBuckets", "s3", identity=identity).principal)
    assert is_human(ct("ListBuckets", "s3", identity=sso("pat")).principal)
    assert not is_human(ct("ListBuckets", "s3", identity=role("deployer", "pat")).principal)


_AUTHENTICATOR_UID = f"aws-iam-authenticator:{ACCOUNT}:AROAEXAMPLEROLEID"


@pytest.mark.parametrize(
    ("user", "person"),
    [
        # EKS access entries' {{SessionName}} turns the "@" of an e-mail into "-".
        (
            {"username": f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineers/pat-example.com"},
            True,
        ),
        ({"username": "pat-example.com", "uid": _AUTHENTICATOR_UID}, True),
        ({"username": "sam.lee-corp.example.co.uk", "uid": _AUTHENTICATOR_UID}, True),
        ({"username": "pat@example.com"}, True),
        # Not signed in with IAM: nothing was mapped.
        ({"username": "pat-example.com"}, False),
        ({"username": "ip-10-0-1-20.ec2.internal", "uid": _AUTHENTICATOR_UID}, False),
        ({"username": "system:node:ip-10-0-1-20.ec2.internal", "uid": _AUTHENTICATOR_UID}, False),
        ({"username": "ci-deployer", "uid": _AUTHENTICATOR_UID}, False),
        (
            {"username": f"arn:aws:sts::{ACCOUNT}:assumed-role/builder/botocore-session-1700"},
            False,
        ),
    ],
)
def test_kubernetes_users_mapped_from_e_mail_sessions_are_people(
    user: dict[str, str], person: bool
) -> None:
    event = k8s("get", "pods", user={**user, "groups": ["system:authenticated"]})
    assert is_human(event.principal) is person


def test_a_mapped_person_on_a_shared_role_keeps_habits_of_their_own() -> None:
    # People sharing a role have different habits: their baselines are per session.
    mapped = {"username": f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineers/pat-example.com"}
    event = k8s("get", "pods", user={**mapped, "groups": ["system:authenticated"]})
    assert behaviour_entity(event) == f"arn:aws:iam::{ACCOUNT}:role/Engineers/pat-example.com"
