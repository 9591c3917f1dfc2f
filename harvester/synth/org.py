"""A generated organization: weeks of normal activity with attacks injected, for evaluation.

``org-tuning`` in ``benchmarks.detection``: the organization detectors are tuned on (its
output must not change; ``harvester.synth.org_check`` is the one kept apart for checking).

Several AWS accounts and one EKS cluster, with the actors a real estate has and stable
habits for each: people signing in through SSO during their working hours from home or the
office (console, CLI, kubectl), CI pipelines deploying with Terraform from ever-changing
runner addresses, services on EC2 instances and in Lambda, AWS services acting on their own,
a nightly security scanner, a legacy IAM user's backup job, and the cluster's nodes,
controllers and operators. Some benign novelty happens after the first week (a new deploy
role, someone travelling, a new engineer, a one-off database failover), and the attacks of
``ATTACKS`` are injected on top, each record labelled with its technique.

Records are the raw shapes the harvester reads (CloudTrail record dicts and Kubernetes audit
Event dicts), so they go through the real ``normalize_*`` functions. Everything is driven by
seeded ``random.Random`` instances: the same seed gives the same bytes.

``generate`` yields records in time order; ``by_source`` and ``delivery_windows`` cut them
the way CloudTrail and Firehose deliver objects, for a demo bucket.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from harvester.events import Event, normalize_cloudtrail, normalize_k8s
from harvester.synth.writer import AttackTechnique, DayWriter, Json, OrgRecord, RecordKind

__all__ = [
    "ATTACKS",
    "AttackTechnique",
    "Org",
    "OrgRecord",
    "by_source",
    "default_org",
    "delivery_windows",
    "generate",
    "to_event",
]

DEFAULT_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
_EXTERNAL_ACCOUNT = "999988887777"
_CT_TIME = "%Y-%m-%dT%H:%M:%SZ"


# --- the organization -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    permission_set: str
    accounts: tuple[str, ...]
    utc_offset: int
    home: str  # a /24 prefix, "a.b.c"
    office: str
    cli: bool
    kubectl: bool
    actions: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Org:
    """The estate and its actors; ``default_org`` builds a plausible one from a seed."""

    accounts: tuple[Account, ...]
    cluster_account: str
    cluster_region: str
    cluster: str
    people: tuple[Person, ...]
    runner_nets: tuple[str, ...]
    lambda_nets: tuple[str, ...]
    nat: Mapping[tuple[str, str], tuple[str, ...]]
    scanner_ip: str
    backup_ip: str
    role_ids: dict[str, str] = field(default_factory=dict)

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def role_id(self, account: str, role: str) -> str:
        key = f"{account}/{role}"
        if key not in self.role_ids:
            digest = uuid.uuid5(uuid.NAMESPACE_URL, key).hex.upper()
            self.role_ids[key] = "AROA" + digest[:17]
        return self.role_ids[key]


# Public first octets, so every generated network is a global (internet) address.
_PUBLIC_OCTETS = (
    23,
    31,
    37,
    45,
    51,
    62,
    77,
    78,
    80,
    81,
    82,
    85,
    86,
    87,
    88,
    89,
    90,
    91,
    92,
    93,
    94,
    95,
    109,
    141,
    145,
    151,
    176,
    178,
    185,
    188,
    193,
    194,
    195,
    212,
    213,
    217,
)


def _rand(seed: str) -> random.Random:
    return random.Random(seed)  # noqa: S311  synthetic data, not security


def _net(rng: random.Random) -> str:
    return f"{rng.choice(_PUBLIC_OCTETS)}.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}"


def _ip(net: str, rng: random.Random) -> str:
    return f"{net}.{rng.randrange(2, 254)}"


_READS = (
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeVolumes"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketLocation"),
    ("lambda", "ListFunctions"),
    ("lambda", "GetFunction"),
    ("rds", "DescribeDBInstances"),
    ("rds", "DescribeDBClusters"),
    ("cloudwatch", "DescribeAlarms"),
    ("logs", "DescribeLogGroups"),
    ("logs", "FilterLogEvents"),
    ("dynamodb", "DescribeTable"),
    ("dynamodb", "ListTables"),
    ("sqs", "ListQueues"),
    ("sqs", "GetQueueAttributes"),
    ("ecs", "DescribeServices"),
    ("ecr", "DescribeRepositories"),
    ("eks", "DescribeCluster"),
    ("eks", "ListNodegroups"),
    ("cloudformation", "DescribeStacks"),
    ("elasticloadbalancing", "DescribeLoadBalancers"),
    ("elasticloadbalancing", "DescribeTargetHealth"),
    ("route53", "ListHostedZones"),
    ("iam", "ListRoles"),
    ("iam", "GetRole"),
    ("sts", "GetCallerIdentity"),
    ("kms", "ListAliases"),
    ("secretsmanager", "ListSecrets"),
    ("ssm", "DescribeParameters"),
    ("autoscaling", "DescribeAutoScalingGroups"),
)
_SERVICE_HOST = {"cloudwatch": "monitoring"}
_PERMISSION_SETS = {
    "admin": "AWSReservedSSO_AdministratorAccess_7f1c2e9a4b3d5e60",
    "developer": "AWSReservedSSO_DeveloperAccess_2b8d4f6a1c9e3b70",
    "readonly": "AWSReservedSSO_ReadOnlyAccess_9e4a1b7c3d2f6a80",
}


def default_org(seed: int = 7) -> Org:
    rng = _rand(f"org:{seed}")
    accounts = (
        Account("100000000001", "prod", ("us-east-1", "eu-west-1")),
        Account("100000000002", "staging", ("us-east-1",)),
        Account("100000000003", "security", ("us-east-1",)),
        Account("100000000004", "sandbox", ("us-west-2",)),
    )
    offices = (_net(rng), _net(rng))
    names = ("alice", "bob", "carol", "dan", "erin", "frank", "grace", "sam", "maria")
    roles = (
        "admin",
        "developer",
        "developer",
        "developer",
        "readonly",
        "developer",
        "admin",
        "developer",
        "developer",
    )
    people = []
    for index, (name, role) in enumerate(zip(names, roles, strict=True)):
        count = rng.randrange(10, 18)
        actions = tuple(rng.sample(_READS, count))
        people.append(
            Person(
                name=name,
                email=f"{name}@example.com",
                permission_set=_PERMISSION_SETS[role],
                accounts=("prod", "staging")
                if role != "admin"
                else ("prod", "staging", "security"),
                utc_offset=rng.choice((-5, 0, 1, 1, 2)),
                home=_net(rng),
                office=offices[index % 2],
                cli=role != "readonly",
                kubectl=role in ("admin", "developer"),
                actions=actions,
            )
        )
    nat = {(a.id, r): (_net(rng) + ".10", _net(rng) + ".20") for a in accounts for r in a.regions}
    return Org(
        accounts=accounts,
        cluster_account="100000000001",
        cluster_region="us-east-1",
        cluster="prod-eks",
        people=tuple(people),
        runner_nets=tuple(_net(rng) for _ in range(300)),
        lambda_nets=tuple(_net(rng) for _ in range(150)),
        nat=nat,
        scanner_ip=_net(rng) + ".44",
        backup_ip=_net(rng) + ".7",
    )


# --- record builders --------------------------------------------------------------------------


class _Day(DayWriter):
    """Everything generated for one day of this organization, and the helpers that write records."""

    def __init__(self, org: Org, rng: random.Random, start: datetime, index: int) -> None:
        super().__init__(rng, start, index, role_id=org.role_id)
        self.org = org

    def sso(self, person: Person, account: str) -> Json:
        return self.role_session(
            account,
            person.permission_set,
            person.email,
            path="aws-reserved/sso.amazonaws.com/",
        )

    def k8s(self, when: datetime, user: Json, verb: str, resource: str, **details: Any) -> Json:
        """An audit Event of the organization's one cluster (``DayWriter.audit``'s details)."""
        org = self.org
        where = (org.cluster_account, org.cluster_region, org.cluster)
        return self.audit(when, where, user, verb, resource, **details)

    def person_k8s(self, person: Person) -> Json:
        group = "cluster-admins" if "Administrator" in person.permission_set else "developers"
        return self.iam_k8s_user(
            self.org.cluster_account,
            person.permission_set,
            person.email,
            [group],
            username=person.email,
        )


_BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36"
)
_CLI = "aws-cli/2.15.30 Python/3.11.8 Darwin/23.3.0 exe/x86_64 prompt/off command/{cmd}"
_KUBECTL = "kubectl/v1.29.2 (darwin/arm64) kubernetes/4b8e819"
_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) "
    "terraform-provider-aws/5.40.0 aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.0"
)
_JAVA = "aws-sdk-java/2.25.11 Linux/6.1.79-99.164.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.2"
_BOTO = "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.11.8"
_LAMBDA_UA = (
    "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.10.209 exec-env/AWS_Lambda_python3.11"
)
_SCANNER_UA = (
    "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#6.1.72 lang/python#3.11.7 inventory-scan/4.2"
)
_GITHUB_OIDC = "arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"
_APP_NAMESPACES = ("payments", "orders", "search-api")
_INSTANCE_ROLES = (
    ("orders-api", "prod"),
    ("payments-api", "prod"),
    ("batch-worker", "prod"),
    ("orders-api", "staging"),
)


def _instance_id(rng: random.Random) -> str:
    return "i-0" + "".join(rng.choice("0123456789abcdef") for _ in range(16))


# --- benign actors ----------------------------------------------------------------------------


def _people(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    weekend = day.start.weekday() >= 5
    for person in org.people:
        if weekend and rng.random() > 0.08:
            continue
        network = person.office if rng.random() < 0.45 else person.home
        if person.name == "maria" and 10 <= day.index <= 11:
            network = _travel_net(org)  # benign novelty: working from a hotel abroad
        ip = _ip(network, _rand(f"{person.name}:{network}"))
        local_start = 9 - person.utc_offset
        for account_name in person.accounts:
            if rng.random() < 0.35 and account_name != "prod":
                continue
            account = org.account(account_name)
            identity = day.sso(person, account.id)
            calls = int(rng.randrange(25, 90) * scale) + 3
            for _ in range(calls):
                when = day.at(local_start + rng.uniform(0, 8.5))
                service, name = rng.choice(person.actions)
                region = account.regions[0] if rng.random() < 0.85 else rng.choice(account.regions)
                cli = person.cli and rng.random() < 0.3
                agent = _CLI.format(cmd=f"{service}.{name.lower()}") if cli else _BROWSER
                error = "AccessDenied" if rng.random() < 0.01 else None
                day.ct(
                    when,
                    account.id,
                    region,
                    identity,
                    service,
                    name,
                    ip=ip,
                    agent=agent,
                    params={},
                    error=error,
                )
        if person.kubectl and rng.random() < 0.8:
            _kubectl_session(day, person, ip, scale)


def _travel_net(org: Org) -> str:
    return _net(_rand(f"travel:{org.scanner_ip}"))


def _kubectl_session(day: _Day, person: Person, ip: str, scale: float) -> None:
    rng = day.rng
    user = day.person_k8s(person)
    namespace = _APP_NAMESPACES[hash_str(person.name) % 2]
    when = day.at(9 - person.utc_offset + rng.uniform(0, 8))
    for _ in range(int(rng.randrange(6, 20) * scale) + 2):
        when += timedelta(seconds=rng.randrange(5, 90))
        verb, resource, sub = rng.choice(
            (
                ("get", "pods", None),
                ("list", "pods", None),
                ("get", "pods", "log"),
                ("get", "deployments", None),
                ("list", "events", None),
                ("get", "configmaps", None),
                ("list", "services", None),
            )
        )
        group = "apps" if resource == "deployments" else ""
        name = None if verb == "list" else f"{namespace}-app-7d9f8b6c5-x2k4p"
        if resource in ("deployments", "configmaps"):
            name = f"{namespace}-app" if verb == "get" else None
        day.k8s(
            when,
            user,
            verb,
            resource,
            ip=ip,
            agent=_KUBECTL,
            namespace=namespace,
            name=name,
            subresource=sub,
            group=group,
        )
    if rng.random() < 0.15:
        # On-call debugging: a shell in the team's own service.
        day.k8s(
            when + timedelta(minutes=2),
            user,
            "create",
            "pods",
            ip=ip,
            agent=_KUBECTL,
            namespace=namespace,
            name=f"{namespace}-app-7d9f8b6c5-x2k4p",
            subresource="exec",
            query="command=sh&container=app&stdin=true&stdout=true&tty=true",
        )


def hash_str(text: str) -> int:
    return int(uuid.uuid5(uuid.NAMESPACE_URL, text).hex[:8], 16)


_CI_READS = (
    ("iam", "GetRole"),
    ("iam", "GetRolePolicy"),
    ("iam", "ListAttachedRolePolicies"),
    ("iam", "GetPolicy"),
    ("iam", "GetPolicyVersion"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeSecurityGroupRules"),
    ("lambda", "GetFunction"),
    ("lambda", "GetPolicy"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketVersioning"),
    ("s3", "GetBucketEncryption"),
    ("ecr", "DescribeRepositories"),
    ("ecs", "DescribeTaskDefinition"),
    ("sts", "GetCallerIdentity"),
    ("kms", "DescribeKey"),
    ("dynamodb", "DescribeTable"),
    ("elasticloadbalancing", "DescribeTargetGroups"),
)


def _ci_writes(day: _Day, account: str, region: str) -> list[tuple[str, str, Json]]:
    rng = day.rng
    function = rng.choice(("thumbnailer", "orders-events", "payments-webhook"))
    policy = orjson.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::app-data-{account}/*",
                }
            ],
        }
    ).decode()
    return [
        ("lambda", "UpdateFunctionCode20150331v2", {"functionName": function}),
        ("ecs", "RegisterTaskDefinition", {"family": "orders-api"}),
        ("ecs", "UpdateService", {"service": "orders-api", "cluster": "apps"}),
        (
            "iam",
            "PutRolePolicy",
            {"roleName": f"{function}-role", "policyName": "data", "policyDocument": policy},
        ),
        ("iam", "TagRole", {"roleName": f"{function}-role"}),
        ("s3", "PutBucketTagging", {"bucketName": f"app-data-{account}"}),
        ("ec2", "CreateTags", {"resourcesSet": {}}),
        ("ec2", "AuthorizeSecurityGroupEgress", {"groupId": "sg-0a1b2c3d4e5f60718"}),
        ("ssm", "PutParameter", {"name": "/apps/orders/version", "type": "String"}),
        ("lambda", "PublishVersion20150331", {"functionName": function}),
    ]


def _ci(
    day: _Day,
    scale: float,
    role: str = "gha-deploy",
    accounts: Iterable[str] = ("prod", "staging"),
    runs_per_day: int = 14,
) -> None:
    org = day.org
    rng = day.rng
    weekend = day.start.weekday() >= 5
    runs = int((runs_per_day // 4 if weekend else runs_per_day) * scale) + 1
    for _ in range(runs):
        account = org.account(rng.choice(tuple(accounts)))
        region = rng.choice(account.regions)
        net = rng.choice(org.runner_nets)
        ip = _ip(net, rng)
        session = f"GitHubActions-{rng.randrange(10**9, 10**10)}"
        provider = _GITHUB_OIDC.format(account=account.id)
        when = day.at(rng.uniform(7, 19) if not weekend else rng.uniform(0, 24))
        identity = day.role_session(account.id, role, session, web_identity=provider)
        web_user = {
            "type": "WebIdentityUser",
            "principalId": f"{provider}:repo:example/app:ref:refs/heads/main",
            "userName": "repo:example/app:ref:refs/heads/main",
            "identityProvider": provider,
        }
        day.ct(
            when,
            account.id,
            region,
            web_user,
            "sts",
            "AssumeRoleWithWebIdentity",
            ip=ip,
            agent=_TERRAFORM,
            params={
                "roleArn": f"arn:aws:iam::{account.id}:role/{role}",
                "roleSessionName": session,
            },
        )
        for service, name in _CI_READS:
            when += timedelta(milliseconds=rng.randrange(50, 900))
            day.ct(
                when,
                account.id,
                region,
                identity,
                service,
                name,
                ip=ip,
                agent=_TERRAFORM,
                params={},
            )
        for service, name, params in rng.sample(_ci_writes(day, account.id, region), 3):
            when += timedelta(seconds=rng.randrange(1, 20))
            day.ct(
                when,
                account.id,
                region,
                identity,
                service,
                name,
                ip=ip,
                agent=_TERRAFORM,
                params=params,
            )
        if account.id == org.cluster_account and rng.random() < 0.5:
            _ci_deploy_k8s(day, account=account.id, role=role, session=session, ip=ip, when=when)


def _ci_deploy_k8s(
    day: _Day, *, account: str, role: str, session: str, ip: str, when: datetime
) -> None:
    user = day.iam_k8s_user(account, role, session, ["deployers"])
    namespace = day.rng.choice(_APP_NAMESPACES)
    agent = "helm/v3.14.2 (linux/amd64)"
    for verb, resource, group in (
        ("get", "deployments", "apps"),
        ("patch", "deployments", "apps"),
        ("get", "configmaps", ""),
        ("update", "configmaps", ""),
    ):
        when += timedelta(seconds=2)
        day.k8s(
            when,
            user,
            verb,
            resource,
            ip=ip,
            agent=agent,
            namespace=namespace,
            name=f"{namespace}-app",
            group=group,
        )


def _services(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    for role, account_name in _INSTANCE_ROLES:
        account = org.account(account_name)
        region = account.regions[0]
        instances = [_instance_id(_rand(f"{role}:{account.id}:{day.index}:{i}")) for i in range(3)]
        nat = org.nat[(account.id, region)]
        agent = _JAVA if role != "batch-worker" else _BOTO
        for instance in instances:
            identity = day.role_session(account.id, role, instance, key=day.key("ASIA"))
            identity["sessionContext"]["ec2RoleDelivery"] = "2.0"
            boot = day.at(rng.uniform(0, 23))
            for service, name, params in (
                ("secretsmanager", "GetSecretValue", {"secretId": f"{role}/db"}),
                ("ssm", "GetParameter", {"name": f"/apps/{role}/config", "withDecryption": True}),
                ("kms", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            ):
                boot += timedelta(seconds=1)
                day.ct(
                    boot,
                    account.id,
                    region,
                    identity,
                    service,
                    name,
                    ip=_private(rng),
                    agent=agent,
                    params=params,
                )
            steady = int(rng.randrange(60, 140) * scale)
            if role == "batch-worker":
                steady //= 4
            for _ in range(steady):
                when = day.at(rng.uniform(0, 24))
                service, name, params, category = rng.choice(
                    (
                        (
                            "s3",
                            "GetObject",
                            {
                                "bucketName": f"app-data-{account.id}",
                                "key": f"objects/{rng.randrange(10**6)}.json",
                            },
                            "Data",
                        ),
                        (
                            "s3",
                            "PutObject",
                            {
                                "bucketName": f"app-data-{account.id}",
                                "key": f"objects/{rng.randrange(10**6)}.json",
                            },
                            "Data",
                        ),
                        ("dynamodb", "DescribeTable", {"tableName": role}, "Management"),
                        ("kms", "GenerateDataKey", {"keySpec": "AES_256"}, "Management"),
                        ("sqs", "GetQueueAttributes", {"queueUrl": role}, "Management"),
                        ("sts", "GetCallerIdentity", {}, "Management"),
                    )
                )
                ip = rng.choice(nat) if rng.random() < 0.25 else _private(rng)
                day.ct(
                    when,
                    account.id,
                    region,
                    identity,
                    service,
                    name,
                    ip=ip,
                    agent=agent,
                    params=params,
                    category=category,
                )
        if role == "batch-worker":
            _nightly_batch(day, account.id, region, instances[0], scale)


def _private(rng: random.Random) -> str:
    return f"10.0.{rng.randrange(0, 16)}.{rng.randrange(2, 254)}"


def _nightly_batch(day: _Day, account: str, region: str, instance: str, scale: float) -> None:
    rng = day.rng
    identity = day.role_session(account, "batch-worker", instance)
    identity["sessionContext"]["ec2RoleDelivery"] = "2.0"
    when = day.at(1.5, 10)
    for _ in range(int(900 * scale)):
        when += timedelta(milliseconds=rng.randrange(200, 2000))
        day.ct(
            when,
            account,
            region,
            identity,
            "s3",
            "GetObject",
            ip=_private(rng),
            agent=_BOTO,
            params={"bucketName": f"app-data-{account}", "key": f"exports/{rng.randrange(10**6)}"},
            category="Data",
        )
        if rng.random() < 0.05:
            day.ct(
                when,
                account,
                region,
                identity,
                "s3",
                "DeleteObject",
                ip=_private(rng),
                agent=_BOTO,
                params={"bucketName": f"app-data-{account}", "key": f"tmp/{rng.randrange(10**6)}"},
                category="Data",
            )


def _lambdas(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    account = org.account("prod")
    for function in ("thumbnailer", "orders-events"):
        identity = day.role_session(account.id, f"{function}-role", function)
        for _ in range(int(rng.randrange(150, 300) * scale)):
            when = day.at(rng.uniform(0, 24))
            ip = _ip(rng.choice(org.lambda_nets), rng)
            service, name, category = rng.choice(
                (
                    ("s3", "GetObject", "Data"),
                    ("s3", "PutObject", "Data"),
                    ("dynamodb", "DescribeTable", "Management"),
                    ("sqs", "ListQueues", "Management"),
                )
            )
            day.ct(
                when,
                account.id,
                account.regions[0],
                identity,
                service,
                name,
                ip=ip,
                agent=_LAMBDA_UA,
                params={"bucketName": f"app-data-{account.id}"},
                category=category,
            )


def _aws_services(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    for account in org.accounts:
        region = account.regions[0]
        scaling = day.role_session(
            account.id,
            "AWSServiceRoleForAutoScaling",
            "AutoScaling",
            path="aws-service-role/autoscaling.amazonaws.com/",
            invoked_by="autoscaling.amazonaws.com",
        )
        for _ in range(int(rng.randrange(4, 12) * scale) + 1):
            when = day.at(rng.uniform(0, 24))
            name = rng.choice(("RunInstances", "TerminateInstances", "DescribeInstances"))
            day.ct(
                when,
                account.id,
                region,
                scaling,
                "ec2",
                name,
                ip="autoscaling.amazonaws.com",
                agent="autoscaling.amazonaws.com",
                params={},
            )
        for _ in range(int(rng.randrange(20, 50) * scale) + 1):
            when = day.at(rng.uniform(0, 24))
            day.ct(
                when,
                account.id,
                region,
                {"type": "AWSService", "invokedBy": "config.amazonaws.com"},
                "sts",
                "AssumeRole",
                ip="config.amazonaws.com",
                agent="config.amazonaws.com",
                params={"roleSessionName": "AWSConfig-Describe"},
            )


def _scanner(day: _Day, scale: float) -> None:
    """The security team's nightly inventory: reads everything, refused here and there."""
    org = day.org
    rng = day.rng
    when = day.at(2.0, 5)
    for account in org.accounts:
        session = f"inventory-scan-{day.index}"
        identity = day.role_session(account.id, "SecurityAudit", session)
        for region in account.regions:
            for _ in range(int(160 * scale) + 5):
                when += timedelta(milliseconds=rng.randrange(100, 1500))
                service, name = rng.choice(_READS)
                error = "AccessDenied" if rng.random() < 0.06 else None
                day.ct(
                    when,
                    account.id,
                    region,
                    identity,
                    service,
                    name,
                    ip=org.scanner_ip,
                    agent=_SCANNER_UA,
                    params={},
                    error=error,
                )


def _backup_user(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    account = org.account("security")
    key = "AKIA" + uuid.uuid5(uuid.NAMESPACE_URL, "backup-svc").hex[:16].upper()
    identity = day.user(account.id, "backup-svc", key)
    when = day.at(3.0, 10)
    agent = "aws-cli/2.13.0 Python/3.11.4 Linux/5.15.0-91-generic exe/x86_64.ubuntu.22"
    for _ in range(int(120 * scale) + 3):
        when += timedelta(seconds=rng.randrange(1, 8))
        name = "PutObject" if rng.random() < 0.8 else "ListObjects"
        day.ct(
            when,
            account.id,
            account.regions[0],
            identity,
            "s3",
            name,
            ip=org.backup_ip,
            agent=agent,
            params={"bucketName": "corp-backups"},
            category="Data",
        )


# Kubernetes: nodes, control plane, operators, workloads.

_NODE_UA = "kubelet/v1.29.0 (linux/amd64) kubernetes/3f7a50f"
_CM_UA = (
    "kube-controller-manager/v1.29.1 (linux/amd64) kubernetes/bc401b9/"
    "system:serviceaccount:kube-system:{name}"
)


def _nodes(day: _Day) -> list[str]:
    # Karpenter replaces a couple of nodes a day; names follow their private addresses.
    rng = _rand(f"nodes:{day.index}")
    return [
        f"ip-10-0-{rng.randrange(0, 16)}-{rng.randrange(2, 254)}.ec2.internal" for _ in range(6)
    ]


def _cluster(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    account = org.cluster_account
    nodes = _nodes(day)
    for node in nodes:
        node_ip = "10.0." + node.split("-")[3] + "." + node.split("-")[4].split(".")[0]
        user = day.iam_k8s_user(
            account,
            "eks-node-role",
            _instance_id(_rand(node)),
            ["system:nodes"],
            username=f"system:node:{node}",
        )
        for _ in range(int(120 * scale) + 5):
            when = day.at(rng.uniform(0, 24))
            verb, resource, group, sub, namespace = rng.choice(
                (
                    ("update", "leases", "coordination.k8s.io", None, "kube-node-lease"),
                    ("update", "leases", "coordination.k8s.io", None, "kube-node-lease"),
                    ("patch", "nodes", "", "status", None),
                    ("get", "pods", "", None, rng.choice(_APP_NAMESPACES)),
                    ("get", "secrets", "", None, rng.choice(_APP_NAMESPACES)),
                    ("get", "configmaps", "", None, "kube-system"),
                    ("create", "serviceaccounts", "", "token", rng.choice(_APP_NAMESPACES)),
                )
            )
            name = (
                node if resource in ("nodes", "leases") else f"{resource[:-1]}-{rng.randrange(9)}"
            )
            day.k8s(
                when,
                user,
                verb,
                resource,
                ip=node_ip,
                agent=_NODE_UA,
                namespace=namespace,
                name=name,
                subresource=sub,
                group=group,
            )
    # Control plane and kube-system controllers.
    for _ in range(int(400 * scale) + 10):
        when = day.at(rng.uniform(0, 24))
        who = rng.choice(
            (
                "system:kube-controller-manager",
                "system:kube-scheduler",
                "generic-garbage-collector",
                "endpointslice-controller",
                "replicaset-controller",
            )
        )
        if who.startswith("system:"):
            user = {"username": who, "groups": ["system:authenticated"]}
        else:
            user = day.service_account("kube-system", who)
        verb, resource, group = rng.choice(
            (
                ("get", "leases", "coordination.k8s.io"),
                ("update", "leases", "coordination.k8s.io"),
                ("update", "endpointslices", "discovery.k8s.io"),
                ("list", "pods", ""),
                ("create", "pods", ""),
                ("delete", "pods", ""),
            )
        )
        namespace = rng.choice(_APP_NAMESPACES)
        obj = None
        if resource == "pods" and verb == "create":
            obj = {
                "kind": "Pod",
                "metadata": {"generateName": f"{namespace}-app-7d9f8b6c5-", "namespace": namespace},
                "spec": {
                    "serviceAccountName": namespace,
                    "containers": [{"name": "app", "image": f"{namespace}:v1"}],
                },
            }
        day.k8s(
            when,
            user,
            verb,
            resource,
            ip="10.0.0.10",
            agent=_CM_UA.format(name=who),
            namespace=namespace,
            name=None if verb in ("list", "create") else f"{resource}-x",
            group=group,
            obj=obj,
        )
    # New nodes get the daemonset pods: privileged and on the host network, by design.
    for node in nodes[:2]:
        when = day.at(rng.uniform(0, 24))
        ds = day.service_account("kube-system", "daemon-set-controller")
        for daemon in ("aws-node", "kube-proxy"):
            day.k8s(
                when,
                ds,
                "create",
                "pods",
                ip="10.0.0.10",
                agent=_CM_UA.format(name="daemon-set-controller"),
                namespace="kube-system",
                obj={
                    "kind": "Pod",
                    "metadata": {
                        "generateName": f"{daemon}-",
                        "namespace": "kube-system",
                        "ownerReferences": [{"kind": "DaemonSet", "name": daemon}],
                    },
                    "spec": {
                        "nodeName": node,
                        "hostNetwork": True,
                        "containers": [{"name": daemon, "securityContext": {"privileged": True}}],
                        "volumes": [{"name": "lib-modules", "hostPath": {"path": "/lib/modules"}}],
                    },
                },
            )
    _operators(day, scale)


def _operators(day: _Day, scale: float) -> None:
    rng = day.rng
    coredns = day.service_account("kube-system", "coredns")
    cert_manager = day.service_account("cert-manager", "cert-manager")
    prometheus = day.service_account("monitoring", "prometheus")
    argocd = day.service_account("argocd", "argocd-application-controller")
    for _ in range(int(120 * scale) + 3):
        when = day.at(rng.uniform(0, 24))
        actor, verb, resource, namespace, sub, group = rng.choice(
            (
                (coredns, "watch", "endpointslices", None, None, "discovery.k8s.io"),
                (coredns, "list", "services", None, None, ""),
                (cert_manager, "watch", "secrets", None, None, ""),
                (cert_manager, "list", "secrets", None, None, ""),
                (cert_manager, "update", "secrets", rng.choice(_APP_NAMESPACES), None, ""),
                (prometheus, "get", "nodes", None, "proxy", ""),
                (prometheus, "list", "pods", None, None, ""),
                (argocd, "list", "deployments", None, None, "apps"),
                (argocd, "patch", "deployments", rng.choice(_APP_NAMESPACES), None, "apps"),
            )
        )
        name = None
        if sub == "proxy":
            name = _nodes(day)[0]
        elif verb in ("update", "patch"):
            name = f"{namespace}-tls" if resource == "secrets" else f"{namespace}-app"
        day.k8s(
            when,
            actor,
            verb,
            resource,
            ip=_private(rng),
            agent="Go-http-client/2.0",
            namespace=namespace,
            name=name,
            subresource=sub,
            group=group,
        )
    # Argo CD keeps the app teams' RBAC in place.
    if rng.random() < 0.5:
        namespace = rng.choice(_APP_NAMESPACES)
        day.k8s(
            day.at(rng.uniform(0, 24)),
            argocd,
            "create",
            "roles",
            ip=_private(rng),
            agent="argocd-application-controller/v2.10.1",
            namespace=namespace,
            name=f"{namespace}-deployer",
            group="rbac.authorization.k8s.io",
            obj={
                "kind": "Role",
                "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}
                ],
            },
        )
    # Workloads read their own configuration at start.
    for namespace in _APP_NAMESPACES:
        sa = day.service_account(namespace, namespace)
        for _ in range(int(rng.randrange(5, 15) * scale) + 1):
            when = day.at(rng.uniform(0, 24))
            resource = rng.choice(("configmaps", "secrets"))
            day.k8s(
                when,
                sa,
                "get",
                resource,
                ip=_private(rng),
                agent="Go-http-client/2.0",
                namespace=namespace,
                name=f"{namespace}-config",
            )


# --- benign novelty after the first week ------------------------------------------------------


def _novelty(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    prod = org.account("prod")
    staging = org.account("staging")
    if day.index == 9:
        # A new deploy role for a new data pipeline, made by the pipeline itself.
        identity = day.role_session(
            staging.id,
            "gha-deploy",
            "GitHubActions-9000000001",
            web_identity=_GITHUB_OIDC.format(account=staging.id),
        )
        ip = _ip(rng.choice(org.runner_nets), rng)
        trust = orjson.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Principal": {"Federated": _GITHUB_OIDC.format(account=staging.id)},
                    }
                ],
            }
        ).decode()
        when = day.at(10.5)
        day.ct(
            when,
            staging.id,
            "us-east-1",
            identity,
            "iam",
            "CreateRole",
            ip=ip,
            agent=_TERRAFORM,
            params={"roleName": "gha-deploy-data", "assumeRolePolicyDocument": trust},
        )
        day.ct(
            when + timedelta(seconds=3),
            staging.id,
            "us-east-1",
            identity,
            "iam",
            "AttachRolePolicy",
            ip=ip,
            agent=_TERRAFORM,
            params={
                "roleName": "gha-deploy-data",
                "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
            },
        )
    if day.index >= 9:
        _ci(day, scale, role="gha-deploy-data", accounts=("staging",), runs_per_day=4)
    if day.index >= 11 and day.start.weekday() < 5:
        # A new engineer starts: new SSO session, first kubectl on the cluster.
        newcomer = Person(
            "li",
            "li@example.com",
            _PERMISSION_SETS["developer"],
            ("staging",),
            0,
            org.people[0].office,
            org.people[0].office,
            True,
            True,
            org.people[1].actions,
        )
        ip = _ip(newcomer.office, rng)
        identity = day.sso(newcomer, staging.id)
        for _ in range(int(30 * scale) + 2):
            service, name = rng.choice(newcomer.actions)
            day.ct(
                day.at(rng.uniform(9, 17)),
                staging.id,
                "us-east-1",
                identity,
                service,
                name,
                ip=ip,
                agent=_BROWSER,
                params={},
            )
        _kubectl_session(day, newcomer, ip, scale)
    if day.index == 12:
        # A DBA fails a database over by hand during maintenance.
        admin = org.people[0]
        identity = day.sso(admin, prod.id)
        ip = _ip(admin.office, _rand(f"{admin.name}:{admin.office}"))
        day.ct(
            day.at(21.0),
            prod.id,
            "us-east-1",
            identity,
            "rds",
            "FailoverDBCluster",
            ip=ip,
            agent=_BROWSER,
            params={"dBClusterIdentifier": "orders-db"},
        )


# --- attacks ----------------------------------------------------------------------------------


def _attacker_ip(label: str) -> str:
    return _ip(_net(_rand(f"attacker:{label}")), _rand(label))


def _compromised_sso(day: _Day, name: str) -> tuple[Person, Json, str]:
    person = next(p for p in day.org.people if p.name == name)
    return person, day.sso(person, day.org.account("prod").id), _attacker_ip(f"sso:{name}")


def _stolen_instance_credentials(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("prod")
    instance = _instance_id(_rand(f"orders-api:{account.id}:{day.index}:0"))
    identity = day.role_session(account.id, "orders-api", instance)
    identity["sessionContext"]["ec2RoleDelivery"] = "2.0"
    ip = _attacker_ip("instance")
    agent = "aws-cli/2.13.25 Python/3.11.6 Darwin/23.1.0 exe/x86_64 prompt/off"
    steps: list[tuple[str, str, Json]] = [
        ("sts", "GetCallerIdentity", {}),
        ("s3", "ListBuckets", {}),
    ]
    steps += [("s3", "ListObjects", {"bucketName": f"app-data-{account.id}"})] * 3
    steps += [
        ("s3", "GetObject", {"bucketName": f"app-data-{account.id}", "key": f"customers/{i}.json"})
        for i in range(30)
    ]
    for service, name, params in steps:
        when += timedelta(seconds=day.rng.randrange(2, 20))
        day.ct(
            when,
            account.id,
            "us-east-1",
            identity,
            service,
            name,
            ip=ip,
            agent=agent,
            params=params,
            category="Data" if service == "s3" and name != "ListBuckets" else "Management",
        )


def _recon_burst(day: _Day, when: datetime) -> None:
    person, identity, ip = _compromised_sso(day, "sam")
    agent = _CLI.format(cmd="enumerate")
    account = day.org.account("prod")
    probes = [
        ("iam", "ListUsers"),
        ("iam", "ListAccessKeys"),
        ("secretsmanager", "ListSecrets"),
        ("ec2", "DescribeInstances"),
        ("lambda", "ListFunctions"),
        ("rds", "DescribeDBInstances"),
        ("organizations", "ListAccounts"),
        ("kms", "ListKeys"),
        ("ssm", "DescribeParameters"),
        ("iam", "GetAccountAuthorizationDetails"),
        ("s3", "ListBuckets"),
        ("cloudtrail", "DescribeTrails"),
        ("guardduty", "ListDetectors"),
    ]
    for index in range(70):
        when += timedelta(seconds=day.rng.randrange(1, 6))
        service, name = probes[index % len(probes)]
        error = "AccessDenied" if day.rng.random() < 0.85 else None
        day.ct(
            when,
            account.id,
            "us-east-1",
            identity,
            service,
            name,
            ip=ip,
            agent=agent,
            params={},
            error=error,
        )
    del person


def _access_key_for_other_user(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "sam")
    account = day.org.account("prod")
    agent = _CLI.format(cmd="iam.create-access-key")
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "iam",
        "CreateAccessKey",
        ip=ip,
        agent=agent,
        params={"userName": "backup-svc"},
        response={
            "accessKey": {
                "userName": "backup-svc",
                "accessKeyId": day.key("AKIA"),
                "status": "Active",
            }
        },
    )


def _cloudtrail_stopped(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "sam")
    account = day.org.account("prod")
    agent = _CLI.format(cmd="cloudtrail.stop-logging")
    trail = f"arn:aws:cloudtrail:us-east-1:{account.id}:trail/org-trail"
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "cloudtrail",
        "StopLogging",
        ip=ip,
        agent=agent,
        params={"name": trail},
    )


def _k8s_exec_kube_system(day: _Day, when: datetime) -> None:
    person, _identity, ip = _compromised_sso(day, "sam")
    user = day.person_k8s(person)
    day.k8s(
        when,
        user,
        "create",
        "pods",
        ip=ip,
        agent=_KUBECTL,
        namespace="kube-system",
        name="aws-node-x7k2p",
        subresource="exec",
        query="command=sh&container=aws-node&stdin=true&stdout=true&tty=true",
    )


def _snapshot_shared(day: _Day, when: datetime) -> None:
    person, identity, ip = _compromised_sso(day, "dan")
    account = day.org.account("prod")
    agent = _CLI.format(cmd="ec2.modify-snapshot-attribute")
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "ec2",
        "ModifySnapshotAttribute",
        ip=ip,
        agent=agent,
        params={
            "snapshotId": "snap-0a1b2c3d4e5f60718",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": _EXTERNAL_ACCOUNT}]}},
        },
    )
    day.ct(
        when + timedelta(minutes=3),
        account.id,
        "us-east-1",
        identity,
        "rds",
        "ModifyDBSnapshotAttribute",
        ip=ip,
        agent=agent,
        params={
            "dBSnapshotIdentifier": "orders-db-2026",
            "attributeName": "restore",
            "valuesToAdd": [_EXTERNAL_ACCOUNT],
        },
    )
    del person


def _privileged_pod(day: _Day, when: datetime) -> None:
    person, _identity, ip = _compromised_sso(day, "erin")
    user = day.person_k8s(person)
    day.k8s(
        when,
        user,
        "create",
        "pods",
        ip=ip,
        agent=_KUBECTL,
        namespace="default",
        name="debug-tools",
        obj={
            "kind": "Pod",
            "metadata": {"name": "debug-tools", "namespace": "default"},
            "spec": {
                "hostPID": True,
                "containers": [
                    {
                        "name": "shell",
                        "image": "alpine:3.19",
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                    }
                ],
                "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            },
        },
    )


def _aws_auth_changed(day: _Day, when: datetime) -> None:
    person, _identity, ip = _compromised_sso(day, "grace")
    user = day.person_k8s(person)
    account = day.org.cluster_account
    day.k8s(
        when,
        user,
        "patch",
        "configmaps",
        ip=ip,
        agent=_KUBECTL,
        namespace="kube-system",
        name="aws-auth",
        obj={
            "data": {
                "mapRoles": (
                    f"- rolearn: arn:aws:iam::{account}:role/ops-shadow\n"
                    "  username: ops-shadow\n  groups:\n  - system:masters\n"
                )
            }
        },
    )


def _secrets_listed(day: _Day, when: datetime) -> None:
    sa = day.service_account("payments", "payments")
    rng = _rand("secrets-listed")
    ip = f"10.0.{rng.randrange(16)}.{rng.randrange(2, 254)}"
    day.k8s(
        when,
        sa,
        "list",
        "secrets",
        ip=ip,
        agent="kubectl/v1.29.2 (linux/amd64) kubernetes",
        query="limit=500",
    )


def _cluster_admin_binding(day: _Day, when: datetime) -> None:
    person, _identity, ip = _compromised_sso(day, "erin")
    user = day.person_k8s(person)
    day.k8s(
        when,
        user,
        "create",
        "clusterrolebindings",
        ip=ip,
        agent=_KUBECTL,
        name="system-monitoring",
        group="rbac.authorization.k8s.io",
        obj={
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system-monitoring"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        },
    )


def _guardduty_deleted(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "grace")
    account = day.org.account("security")
    identity = day.sso(next(p for p in day.org.people if p.name == "grace"), account.id)
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "guardduty",
        "DeleteDetector",
        ip=ip,
        agent=_CLI.format(cmd="guardduty.delete-detector"),
        params={"detectorId": "12abc34d567e8fa901bc2d34e56789f0"},
    )


def _ssh_open(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "dan")
    account = day.org.account("prod")
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "ec2",
        "AuthorizeSecurityGroupIngress",
        ip=ip,
        agent=_CLI.format(cmd="ec2.authorize-security-group-ingress"),
        params={
            "groupId": "sg-0f1e2d3c4b5a69788",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    )


def _backdoor_role(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "dan")
    account = day.org.account("prod")
    agent = _CLI.format(cmd="iam.create-role")
    trust = orjson.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"AWS": f"arn:aws:iam::{_EXTERNAL_ACCOUNT}:root"},
                }
            ],
        }
    ).decode()
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "iam",
        "CreateRole",
        ip=ip,
        agent=agent,
        params={"roleName": "support-access", "assumeRolePolicyDocument": trust},
    )
    day.ct(
        when + timedelta(seconds=20),
        account.id,
        "us-east-1",
        identity,
        "iam",
        "AttachRolePolicy",
        ip=ip,
        agent=agent,
        params={
            "roleName": "support-access",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    )


def _offensive_tool(day: _Day, when: datetime) -> None:
    account = day.org.account("staging")
    key = "AKIA" + uuid.uuid5(uuid.NAMESPACE_URL, "backup-svc").hex[:16].upper()
    identity = day.user(day.org.account("security").id, "backup-svc", key)
    ip = _attacker_ip("pacu")
    agent = "aws-cli/1.29.0 Python/3.11.4 Linux/6.5.0-kali3-amd64 botocore/1.31.0 Pacu/1.5.1"
    for service, name in (
        ("sts", "GetCallerIdentity"),
        ("iam", "ListUsers"),
        ("iam", "ListRoles"),
        ("ec2", "DescribeInstances"),
        ("lambda", "ListFunctions"),
        ("s3", "ListBuckets"),
    ):
        when += timedelta(seconds=day.rng.randrange(1, 5))
        day.ct(
            when,
            account.id,
            "us-east-1",
            identity,
            service,
            name,
            ip=ip,
            agent=agent,
            params={},
            error=None if service == "sts" else "AccessDenied",
        )


def _bucket_public(day: _Day, when: datetime) -> None:
    _person, identity, ip = _compromised_sso(day, "dan")
    account = day.org.account("prod")
    bucket = f"app-data-{account.id}"
    agent = _CLI.format(cmd="s3api.put-bucket-policy")
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "s3",
        "DeleteBucketPublicAccessBlock",
        ip=ip,
        agent=agent,
        params={"bucketName": bucket, "publicAccessBlock": ""},
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    day.ct(
        when + timedelta(seconds=30),
        account.id,
        "us-east-1",
        identity,
        "s3",
        "PutBucketPolicy",
        ip=ip,
        agent=agent,
        params={"bucketName": bucket, "bucketPolicy": policy},
    )


def _secret_burst(day: _Day, when: datetime) -> None:
    account = day.org.account("prod")
    identity = day.role_session(
        account.id,
        "gha-deploy",
        "GitHubActions-5550001111",
        web_identity=_GITHUB_OIDC.format(account=account.id),
    )
    ip = _ip(day.org.runner_nets[0], day.rng)
    for index in range(45):
        when += timedelta(seconds=day.rng.randrange(1, 8))
        day.ct(
            when,
            account.id,
            "us-east-1",
            identity,
            "secretsmanager",
            "GetSecretValue",
            ip=ip,
            agent=_TERRAFORM,
            params={"secretId": f"prod/service-{index}"},
        )


def _root_login(day: _Day, when: datetime) -> None:
    account = day.org.account("sandbox")
    identity = {
        "type": "Root",
        "principalId": account.id,
        "arn": f"arn:aws:iam::{account.id}:root",
        "accountId": account.id,
    }
    day.ct(
        when,
        account.id,
        "us-east-1",
        identity,
        "signin",
        "ConsoleLogin",
        ip=_attacker_ip("root"),
        agent=_BROWSER,
        params=None,
        response={"ConsoleLogin": "Success"},
        additional={
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "No",
        },
    )


ATTACKS: tuple[AttackTechnique[_Day], ...] = (
    AttackTechnique(
        "stolen-instance-credentials",
        "EC2 instance credentials used from outside",
        ("T1552.005",),
        (
            "aws.instance-credentials-on-workstation",
            "behav.instance-credentials-elsewhere",
            "aws.instance-credentials-off-instance",
        ),
        8,
        14.2,
        _stolen_instance_credentials,
    ),
    # One stolen SSO session walks the whole chain within the hour (an incident).
    AttackTechnique(
        "recon-access-denied-burst",
        "Enumeration with many refused calls",
        ("T1580",),
        ("behav.access-denied-burst",),
        9,
        15.0,
        _recon_burst,
    ),
    AttackTechnique(
        "iam-access-key-for-other-user",
        "Access key created for another user",
        ("T1098.001",),
        ("aws.iam-access-key-for-other-user",),
        9,
        15.3,
        _access_key_for_other_user,
    ),
    AttackTechnique(
        "cloudtrail-stopped",
        "CloudTrail logging stopped",
        ("T1562.008",),
        ("aws.cloudtrail-logging-impaired",),
        9,
        15.5,
        _cloudtrail_stopped,
    ),
    AttackTechnique(
        "k8s-exec-kube-system",
        "Shell in a kube-system pod",
        ("T1609",),
        ("k8s.pod-exec",),
        9,
        15.6,
        _k8s_exec_kube_system,
    ),
    AttackTechnique(
        "snapshot-shared-out",
        "EBS and RDS snapshots shared with an outside account",
        ("T1537",),
        ("aws.snapshot-shared",),
        10,
        11.0,
        _snapshot_shared,
    ),
    AttackTechnique(
        "k8s-privileged-hostpath-pod",
        "Privileged pod with the node's filesystem",
        ("T1611",),
        ("k8s.privileged-container", "k8s.host-namespace-or-path"),
        10,
        16.0,
        _privileged_pod,
    ),
    AttackTechnique(
        "k8s-aws-auth-changed",
        "aws-auth mapped a role to system:masters",
        ("T1098",),
        ("k8s.aws-auth-changed",),
        11,
        10.0,
        _aws_auth_changed,
    ),
    AttackTechnique(
        "k8s-secrets-listed-cluster-wide",
        "A workload listed every secret",
        ("T1552.007",),
        ("k8s.secrets-listed-cluster-wide",),
        11,
        3.0,
        _secrets_listed,
    ),
    AttackTechnique(
        "k8s-cluster-admin-binding",
        "cluster-admin bound to a service account",
        ("T1098",),
        ("k8s.cluster-admin-binding",),
        11,
        16.5,
        _cluster_admin_binding,
    ),
    AttackTechnique(
        "guardduty-detector-deleted",
        "GuardDuty detector deleted",
        ("T1562.001",),
        ("aws.guardduty-disabled",),
        12,
        9.5,
        _guardduty_deleted,
    ),
    AttackTechnique(
        "security-group-ssh-open",
        "SSH opened to the internet",
        ("T1562.007",),
        ("aws.network-opened-to-internet",),
        12,
        13.0,
        _ssh_open,
    ),
    AttackTechnique(
        "backdoor-admin-role",
        "Admin role trusting an outside account",
        ("T1098.003",),
        ("aws.iam-trust-opened", "aws.iam-admin-granted"),
        12,
        13.4,
        _backdoor_role,
    ),
    AttackTechnique(
        "offensive-tool-recon",
        "Pacu from Kali with a leaked access key",
        ("T1580",),
        ("aws.offensive-tool-user-agent", "behav.access-key-new-network"),
        12,
        22.0,
        _offensive_tool,
    ),
    AttackTechnique(
        "bucket-made-public",
        "Bucket made public",
        ("T1530",),
        ("aws.s3-public-access-block-removed", "aws.resource-policy-opened"),
        13,
        10.0,
        _bucket_public,
    ),
    AttackTechnique(
        "secret-read-burst",
        "CI credentials used to read many secrets",
        ("T1555.006",),
        ("behav.secret-read-burst",),
        13,
        4.0,
        _secret_burst,
    ),
    AttackTechnique(
        "root-console-login",
        "Root signed in without MFA",
        ("T1078.004",),
        ("aws.root-activity", "aws.console-login-without-mfa"),
        13,
        20.0,
        _root_login,
    ),
)


# --- generation -------------------------------------------------------------------------------


def _day(
    org: Org,
    *,
    seed: int,
    start: datetime,
    index: int,
    scale: float,
    attacks: Iterable[AttackTechnique[_Day]],
) -> list[OrgRecord]:
    day = _Day(org, _rand(f"{seed}:day:{index}"), start + timedelta(days=index), index)
    _people(day, scale)
    _ci(day, scale)
    _services(day, scale)
    _lambdas(day, scale)
    _aws_services(day, scale)
    _scanner(day, scale)
    _backup_user(day, scale)
    _cluster(day, scale)
    _novelty(day, scale)
    for attack in attacks:
        if attack.day == index:
            day.technique = attack.id
            attack.inject(day, day.start + timedelta(hours=attack.hour))
            day.technique = None
    day.out.sort(key=lambda r: r.time)
    return day.out


def generate(
    org: Org | None = None,
    *,
    seed: int = 7,
    days: int = 14,
    start: datetime = DEFAULT_START,
    scale: float = 1.0,
    attacks: bool | Iterable[AttackTechnique[_Day]] = True,
) -> Iterator[OrgRecord]:
    """Records of ``days`` days from ``start``, in time order; the same seed, the same records.

    ``scale`` multiplies the volume of normal activity; ``attacks`` is True for the whole
    catalog, False for none, or the techniques to inject (on their day, if within ``days``).
    """
    org = org or default_org(seed)
    if attacks is True:
        chosen: tuple[AttackTechnique[_Day], ...] = ATTACKS
    elif attacks is False:
        chosen = ()
    else:
        chosen = tuple(attacks)
    for index in range(days):
        yield from _day(org, seed=seed, start=start, index=index, scale=scale, attacks=chosen)


def to_event(
    record: OrgRecord, *, bucket: str = "synthetic", key: str | None = None, index: int = 0
) -> Event:
    """The normalized event, through the same functions the harvester uses."""
    if record.kind == "cloudtrail":
        return normalize_cloudtrail(
            record.record, bucket=bucket, key=key or f"cloudtrail/{record.account}", index=index
        )
    return normalize_k8s(
        record.record,
        cluster=record.cluster,
        account=record.account,
        region=record.region,
        bucket=bucket,
        key=key or f"eks/{record.cluster}",
        index=index,
    )


SourceKey = tuple[RecordKind, str, str, str | None]


def by_source(records: Iterable[OrgRecord]) -> dict[SourceKey, list[OrgRecord]]:
    """Records per (kind, account, region, cluster), each list in time order."""
    out: dict[SourceKey, list[OrgRecord]] = defaultdict(list)
    for record in records:
        out[(record.kind, record.account, record.region, record.cluster)].append(record)
    return dict(out)


def delivery_windows(
    records: Iterable[OrgRecord], *, every: timedelta = timedelta(minutes=5)
) -> Iterator[tuple[SourceKey, datetime, list[Json]]]:
    """Time-ordered records cut like deliveries: one batch per source and ``every`` window.

    Each batch is what one CloudTrail object (or one Firehose object for a cluster) holds;
    batches come out when their window closes, in window order.
    """
    size = every.total_seconds()
    pending: dict[tuple[SourceKey, float], list[Json]] = defaultdict(list)
    current: float | None = None
    for record in records:
        window = record.time.timestamp() // size * size
        if current is not None and window > current:
            for (source, opened), batch in sorted(pending.items(), key=lambda kv: kv[0][1]):
                yield source, datetime.fromtimestamp(opened, UTC), batch
            pending.clear()
        current = window
        pending[((record.kind, record.account, record.region, record.cluster), window)].append(
            record.record
        )
    for (source, opened), batch in sorted(pending.items(), key=lambda kv: kv[0][1]):
        yield source, datetime.fromtimestamp(opened, UTC), batch
