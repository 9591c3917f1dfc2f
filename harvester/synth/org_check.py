"""org-check: a second generated organization, kept apart to check detectors, never to tune them.

Another seed, size and mix than ``harvester.synth.org`` (``org-tuning``): ten accounts of an
online shop with a data platform, three EKS clusters, three weeks. Its people sign in through
IAM Identity Center: platform engineers, developers, on-call engineers who open Session Manager
sessions and exec into pods, data scientists who call Bedrock every day, a DBA, security
analysts. Its machines: a GitLab runner fleet on EC2 that deploys with Terraform through a
deployer role in each account, GitHub Actions for the data team, ECS tasks, Kafka brokers on
EC2, Lambda functions, Karpenter launching nodes, a nightly posture scan, AWS services.

Benign novelty after the first week: two new hires (one a data scientist whose first Bedrock
call is legitimate), a new service with its own secret, a migration of the Kafka brokers to
Graviton instances and of a database to a restored Aurora cluster, an on-call night of
Session Manager sessions and pod execs, a developer travelling.

Attacks (``ATTACKS``) are of the classes issue 13 found missed: refused privilege escalation,
SSM Run Command and EC2 Instance Connect, instance credentials used off the instance, a burst
of user-data reads, GPU instances (first refused for quota) in an unused region, Bedrock model
access, invocation logging deleted and first invocations, an IAM Roles Anywhere trust anchor,
a federation token minted from a user's key, secrets read by a principal that never read any,
and classic ones. Each declares the detectors meant to find it.

Records follow AWS's documented shapes: CloudTrail ``userIdentity`` types (AssumedRole with
sessions named after instance ids, IAMUser, FederatedUser, AWSService, WebIdentityUser), the
error codes and messages AWS writes (``AccessDenied``, ``Client.UnauthorizedOperation``,
``Client.VcpuLimitExceeded``); EKS audit Events as EKS writes them (no RequestReceived stage,
``pods/exec`` as a ResponseStarted and a ResponseComplete event with one auditID, access-entry
usernames from the session name with ``@`` turned into ``-``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from harvester.synth.org import (
    _BOTO,
    _BROWSER,
    _CLI,
    _CM_UA,
    _JAVA,
    _KUBECTL,
    _LAMBDA_UA,
    _NODE_UA,
    _TERRAFORM,
    Account,
    _instance_id,
    _ip,
    _net,
    _private,
    _rand,
    to_event,
)
from harvester.synth.writer import SERVICE_HOST, AttackTechnique, DayWriter, Json, OrgRecord

__all__ = [
    "ATTACKS",
    "DEFAULT_DAYS",
    "DEFAULT_START",
    "AttackTechnique",
    "CheckOrg",
    "default_org",
    "generate",
    "to_event",
]


DEFAULT_START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # a Monday
DEFAULT_DAYS = 21
_CT_TIME = "%Y-%m-%dT%H:%M:%SZ"
_OUTSIDE = "404040404040"  # an account outside the organization
_ALLOW_ALL = orjson.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
).decode()


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    account: str
    region: str
    namespaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    permission_set: str
    accounts: tuple[str, ...]
    utc_offset: int
    home: str
    office: str
    clusters: tuple[str, ...]
    actions: tuple[tuple[str, str], ...]
    starts: int = 0  # the day index of the first day at work


@dataclass(slots=True)
class CheckOrg:
    accounts: tuple[Account, ...]
    clusters: tuple[Cluster, ...]
    people: tuple[Person, ...]
    runner_net: str
    lambda_nets: tuple[str, ...]
    nat: dict[str, str]  # account id → the NAT gateway address of its VPC
    scanner_ip: str
    reporting_ip: str
    role_ids: dict[str, str] = field(default_factory=dict)

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def cluster(self, name: str) -> Cluster:
        return next(c for c in self.clusters if c.name == name)

    def person(self, name: str) -> Person:
        return next(p for p in self.people if p.name == name)

    def role_id(self, account: str, role: str) -> str:
        key = f"{account}/{role}"
        if key not in self.role_ids:
            self.role_ids[key] = "AROA" + uuid.uuid5(uuid.NAMESPACE_DNS, key).hex.upper()[:17]
        return self.role_ids[key]


_SETS = {
    "platform": "AWSReservedSSO_PlatformAdmin_0c4e8a2f61b3d957",
    "developer": "AWSReservedSSO_Developer_5a1f9c3e7b2d4068",
    "oncall": "AWSReservedSSO_OnCallOperator_9d2b6e4a8c1f3075",
    "data": "AWSReservedSSO_DataScientist_3e7c1a9f5b8d2064",
    "dba": "AWSReservedSSO_DatabaseAdmin_7b3f5d1a9e6c2048",
    "security": "AWSReservedSSO_SecurityAnalyst_1f8a4c6e2d9b7053",
}
_DEV_READS = (
    ("ecs", "DescribeServices"),
    ("ecs", "ListTasks"),
    ("ecs", "DescribeTasks"),
    ("logs", "FilterLogEvents"),
    ("logs", "GetLogEvents"),
    ("cloudwatch", "GetMetricData"),
    ("dynamodb", "DescribeTable"),
    ("sqs", "GetQueueAttributes"),
    ("ecr", "DescribeImages"),
    ("eks", "DescribeCluster"),
    ("eks", "ListClusters"),
    ("lambda", "GetFunction"),
    ("s3", "ListBuckets"),
    ("cloudformation", "DescribeStacks"),
    ("xray", "GetTraceSummaries"),
)
_PLATFORM_READS = (
    *_DEV_READS[:8],
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeRouteTables"),
    ("iam", "ListRoles"),
    ("iam", "GetRole"),
    ("elasticloadbalancing", "DescribeTargetHealth"),
    ("route53", "ListResourceRecordSets"),
    ("autoscaling", "DescribeAutoScalingGroups"),
    ("ssm", "DescribeInstanceInformation"),
)
_DATA_READS = (
    ("athena", "StartQueryExecution"),
    ("athena", "GetQueryResults"),
    ("glue", "GetTables"),
    ("glue", "GetDatabases"),
    ("s3", "ListBuckets"),
    ("sagemaker", "ListNotebookInstances"),
    ("bedrock", "ListFoundationModels"),
)
_SECURITY_READS = (
    ("guardduty", "ListFindings"),
    ("guardduty", "GetFindings"),
    ("securityhub", "GetFindings"),
    ("access-analyzer", "ListFindings"),
    ("cloudtrail", "LookupEvents"),
    ("config", "DescribeComplianceByConfigRule"),
)
_DBA_READS = (
    ("rds", "DescribeDBClusters"),
    ("rds", "DescribeDBInstances"),
    ("rds", "DescribeDBClusterSnapshots"),
    ("cloudwatch", "GetMetricData"),
    ("pi", "GetResourceMetrics"),
)
_MODELS = (
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.titan-embed-text-v2:0",
)
_EKS_GROUPS = {
    "platform": "platform-admins",
    "oncall": "platform-admins",
    "developer": "developers",
}


def default_org(seed: int = 2027) -> CheckOrg:
    rng = _rand(f"org-check:{seed}")
    accounts = (
        Account("310000000001", "management", ("us-east-1",)),
        Account("310000000002", "identity", ("us-east-1",)),
        Account("310000000003", "log-archive", ("us-east-1",)),
        Account("310000000004", "security-tooling", ("us-east-1", "eu-central-1")),
        Account("310000000005", "network", ("eu-central-1",)),
        Account("310000000006", "shop-prod", ("eu-central-1", "eu-west-1")),
        Account("310000000007", "shop-staging", ("eu-central-1",)),
        Account("310000000008", "data-prod", ("us-west-2",)),
        Account("310000000009", "ml-research", ("us-east-1", "us-west-2")),
        Account("310000000010", "shared-services", ("eu-central-1",)),
    )
    clusters = (
        Cluster("shop-prod", "310000000006", "eu-central-1", ("checkout", "catalog", "web")),
        Cluster("shop-staging", "310000000007", "eu-central-1", ("checkout", "catalog", "web")),
        Cluster("data-platform", "310000000008", "us-west-2", ("airflow", "spark", "trino")),
    )
    offices = (_net(rng), _net(rng))
    roster = (
        # name, role, accounts, clusters, starts
        ("amara", "platform", ("shop-prod", "shop-staging", "network", "shared-services"), 0),
        ("bjorn", "platform", ("shop-prod", "shop-staging", "data-prod", "management"), 0),
        ("chen", "oncall", ("shop-prod", "shop-staging", "data-prod"), 0),
        ("ines", "oncall", ("shop-prod", "shop-staging"), 0),
        ("dmitri", "developer", ("shop-staging", "shop-prod"), 0),
        ("eva", "developer", ("shop-staging", "shop-prod"), 0),
        ("farah", "developer", ("shop-staging",), 0),
        ("goran", "developer", ("shop-staging", "shop-prod"), 0),
        ("hana", "data", ("ml-research", "data-prod"), 0),
        ("ivo", "data", ("ml-research",), 0),
        ("jules", "data", ("ml-research", "data-prod"), 0),
        ("kemal", "dba", ("shop-prod", "data-prod"), 0),
        ("lena", "security", ("security-tooling", "log-archive"), 0),
        ("noor", "developer", ("shop-staging",), 9),
        ("kai", "data", ("ml-research",), 15),
    )
    reads = {
        "platform": _PLATFORM_READS,
        "oncall": _PLATFORM_READS,
        "developer": _DEV_READS,
        "data": _DATA_READS,
        "dba": _DBA_READS,
        "security": _SECURITY_READS,
    }
    people = []
    for index, (name, role, where, starts) in enumerate(roster):
        pool = reads[role]
        actions = tuple(rng.sample(pool, min(len(pool), rng.randrange(5, 12))))
        on_clusters: tuple[str, ...] = ()
        if role in ("platform", "oncall"):
            on_clusters = ("shop-prod", "shop-staging", "data-platform")
        elif role == "developer":
            on_clusters = (
                ("shop-staging",) if name in ("farah", "noor") else ("shop-staging", "shop-prod")
            )
        elif role == "data" and "data-prod" in where:
            on_clusters = ("data-platform",)
        people.append(
            Person(
                name=name,
                email=f"{name}@shop.example",
                permission_set=_SETS[role],
                accounts=where,
                utc_offset=rng.choice((-4, 0, 1, 2, 2, 3)),
                home=_net(rng),
                office=offices[index % 2],
                clusters=on_clusters,
                actions=actions,
                starts=starts,
            )
        )
    nat = {a.id: _net(rng) + f".{rng.randrange(10, 250)}" for a in accounts}
    return CheckOrg(
        accounts=accounts,
        clusters=clusters,
        people=tuple(people),
        runner_net=_net(rng),
        lambda_nets=tuple(_net(rng) for _ in range(200)),
        nat=nat,
        scanner_ip=_net(rng) + ".61",
        reporting_ip=_net(rng) + ".18",
    )


# --- the record writer ----------------------------------------------------------------------------


# Services whose (query-protocol) APIs answer AccessDenied; JSON APIs answer AccessDeniedException.
_ACCESS_DENIED = frozenset(
    {"iam", "sts", "s3", "monitoring", "rds", "elasticloadbalancing", "autoscaling", "sns"}
)


def _denial(host: str, name: str, arn: str, resource: str) -> tuple[str, str]:
    """The error code and message AWS records for a call the caller's policies do not allow."""
    if host == "s3":
        return "AccessDenied", "Access Denied"
    because = f"because no identity-based policy allows the {host}:{name} action"
    if host == "ec2":
        return (
            "Client.UnauthorizedOperation",
            f"You are not authorized to perform this operation. User: {arn} is not authorized "
            f"to perform: ec2:{name} on resource: {resource} {because}. Encoded authorization "
            f"failure message: {uuid.uuid5(uuid.NAMESPACE_URL, arn + name).hex}",
        )
    code = "AccessDenied" if host in _ACCESS_DENIED else "AccessDeniedException"
    return (
        code,
        f"User: {arn} is not authorized to perform: {host}:{name} on resource: {resource} "
        + because,
    )


class _Day(DayWriter):
    """One day of org-check: ``DayWriter`` with AWS's refusals, several clusters, access entries."""

    def __init__(self, org: CheckOrg, rng: random.Random, start: datetime, index: int) -> None:
        super().__init__(rng, start, index, role_id=org.role_id)
        self.org = org

    # identities

    def assumed(
        self,
        account: str,
        role: str,
        session: str,
        *,
        path: str = "",
        web_identity: str | None = None,
        instance: bool = False,
    ) -> Json:
        identity = self.role_session(account, role, session, path=path, web_identity=web_identity)
        if instance:
            identity["sessionContext"]["ec2RoleDelivery"] = "2.0"
        return identity

    def sso(self, person: Person, account: str) -> Json:
        return self.assumed(
            account, person.permission_set, person.email, path="aws-reserved/sso.amazonaws.com/"
        )

    @staticmethod
    def service(name: str) -> Json:
        return {"type": "AWSService", "invokedBy": f"{name}.amazonaws.com"}

    # CloudTrail

    def api(  # noqa: PLR0917  read as a CloudTrail line: when, account, region, who, what
        self,
        when: datetime,
        account: str,
        region: str,
        identity: Json,
        service: str,
        name: str,
        *,
        denied: str | None = None,
        error: tuple[str, str] | None = None,
        **details: Any,
    ) -> Json:
        """``ct``, with the error AWS records for a refused call (``denied`` names the resource)
        or for another failure (``error``: code and message)."""
        if denied is not None:
            host = SERVICE_HOST.get(service, service)
            error = _denial(host, name, str(identity.get("arn", "")), denied)
        code, message = error if error is not None else (None, None)
        return self.ct(
            when, account, region, identity, service, name, error=code, message=message, **details
        )

    # Kubernetes

    def k8s(
        self, when: datetime, cluster: Cluster, user: Json, verb: str, resource: str, **details: Any
    ) -> None:
        where = (cluster.account, cluster.region, cluster.name)
        self.audit(when, where, user, verb, resource, streaming=True, **details)

    def eks_user(self, cluster: Cluster, role: str, session: str, groups: list[str]) -> Json:
        """An IAM role session as an EKS access entry maps it (``@`` becomes ``-``)."""
        username = f"arn:aws:sts::{cluster.account}:assumed-role/{role}/{session.replace('@', '-')}"
        return self.iam_k8s_user(cluster.account, role, session, groups, username=username)

    def person_on(self, cluster: Cluster, person: Person) -> Json:
        role = next(k for k, v in _SETS.items() if v == person.permission_set)
        return self.eks_user(
            cluster, person.permission_set, person.email, [_EKS_GROUPS.get(role, "viewers")]
        )


def _instances(label: str, count: int) -> list[str]:
    return [_instance_id(_rand(f"{label}:{i}")) for i in range(count)]


def _cli(command: str) -> str:
    return _CLI.format(cmd=command)


# --- benign actors ----------------------------------------------------------------------------


def _working(day: _Day, person: Person) -> bool:
    if day.index < person.starts:
        return False
    weekend = day.start.weekday() >= 5
    return not weekend or day.rng.random() < 0.06


def _person_ip(day: _Day, person: Person) -> str:
    net = person.office if day.rng.random() < 0.5 else person.home
    if person.name == "goran" and 16 <= day.index <= 18:
        net = _net(_rand("goran:conference"))  # benign novelty: at a conference abroad
    return _ip(net, _rand(f"{person.name}:{net}"))


def _people(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    for person in org.people:
        if not _working(day, person):
            continue
        ip = _person_ip(day, person)
        begin = 9 - person.utc_offset
        for account_name in person.accounts:
            if rng.random() < 0.3 and account_name != person.accounts[0]:
                continue
            account = org.account(account_name)
            identity = day.sso(person, account.id)
            for _ in range(int(rng.randrange(20, 70) * scale) + 2):
                service, name = rng.choice(person.actions)
                cli = rng.random() < 0.4
                region = account.regions[0] if rng.random() < 0.9 else rng.choice(account.regions)
                day.api(
                    day.at(begin + rng.uniform(0, 8.5)),
                    account.id,
                    region,
                    identity,
                    service,
                    name,
                    ip=ip,
                    agent=_cli(f"{service}.{name.lower()}") if cli else _BROWSER,
                    params={},
                    denied="*" if rng.random() < 0.008 else None,
                )
        if person.permission_set == _SETS["data"]:
            _bedrock_user(day, person, ip, scale)
        if person.permission_set == _SETS["oncall"] and rng.random() < 0.2:
            broker = rng.choice(_brokers(day))
            _session_manager(day, person, ip, broker, day.at(begin + rng.uniform(0, 8)))
        for cluster_name in person.clusters:
            if rng.random() < 0.6:
                _kubectl(day, org.cluster(cluster_name), person, ip, scale)


def _session_manager(day: _Day, person: Person, ip: str, broker: str, when: datetime) -> None:
    """A Session Manager shell on a broker, as on-call engineers open now and then."""
    account = day.org.account("data-prod")
    session = f"{person.email}-0{uuid.uuid5(uuid.NAMESPACE_DNS, f'{broker}:{when}').hex[:16]}"
    day.api(
        when,
        account.id,
        "us-west-2",
        day.sso(person, account.id),
        "ssm",
        "StartSession",
        ip=ip,
        agent=_cli("ssm.start-session"),
        params={"target": broker},
        response={
            "sessionId": session,
            "tokenValue": "Value hidden due to security reasons.",
            "streamUrl": f"wss://ssmmessages.us-west-2.amazonaws.com/v1/data-channel/{session}",
        },
    )


def _bedrock_user(day: _Day, person: Person, ip: str, scale: float) -> None:
    """Data scientists prompt models from notebooks every working day."""
    rng = day.rng
    account = day.org.account("ml-research")
    identity = day.sso(person, account.id)
    for _ in range(int(rng.randrange(10, 40) * scale) + 1):
        name = rng.choice(
            ("InvokeModel", "InvokeModel", "Converse", "InvokeModelWithResponseStream")
        )
        day.api(
            day.at(9 - person.utc_offset + rng.uniform(0, 8)),
            account.id,
            "us-east-1",
            identity,
            "bedrock",
            name,
            ip=ip,
            agent=_BOTO,
            params={"modelId": rng.choice(_MODELS)},
            read_only=False,
        )


def _kubectl(day: _Day, cluster: Cluster, person: Person, ip: str, scale: float) -> None:
    rng = day.rng
    user = day.person_on(cluster, person)
    namespace = rng.choice(cluster.namespaces)
    when = day.at(9 - person.utc_offset + rng.uniform(0, 8))
    for _ in range(int(rng.randrange(5, 16) * scale) + 1):
        when += timedelta(seconds=rng.randrange(2, 90))
        verb, resource, group = rng.choice(
            (
                ("get", "pods", ""),
                ("list", "pods", ""),
                ("get", "deployments", "apps"),
                ("list", "events", ""),
                ("get", "services", ""),
                ("get", "pods", "log"),
            )
        )
        sub = "log" if group == "log" else None
        day.k8s(
            when,
            cluster,
            user,
            verb,
            resource,
            ip=ip,
            agent=_KUBECTL,
            namespace=namespace,
            name=f"{namespace}-{rng.randrange(100):02d}" if verb == "get" else None,
            subresource=sub,
            group="" if sub else group,
        )
    on_call = person.permission_set == _SETS["oncall"]
    if on_call and rng.random() < 0.5:
        # The on-call engineer looks inside a pod most days: routine, not an attack.
        day.k8s(
            when + timedelta(minutes=3),
            cluster,
            user,
            "create",
            "pods",
            ip=ip,
            agent=_KUBECTL,
            namespace=namespace,
            name=f"{namespace}-7c9d8f-{rng.randrange(10**4):04d}",
            subresource="exec",
            query="command=sh&container=app&stdin=true&stdout=true&tty=true",
        )


def _gitlab(day: _Day, scale: float) -> None:
    """GitLab runners on EC2 in shared-services assume a deployer role in each account."""
    org = day.org
    rng = day.rng
    shared = org.account("shared-services")
    runners = _instances("gitlab-runner", 4)
    weekend = day.start.weekday() >= 5
    for _ in range(int((3 if weekend else 18) * scale) + 1):
        runner = rng.choice(runners)
        target = org.account(rng.choice(("shop-prod", "shop-staging", "shop-staging", "data-prod")))
        region = target.regions[0]
        pipeline = rng.randrange(10**6, 10**7)
        when = day.at(rng.uniform(6, 20) if not weekend else rng.uniform(0, 24))
        own = day.assumed(shared.id, "gitlab-runner", runner, instance=True)
        ip = org.nat[shared.id]
        session = f"gitlab-{pipeline}"
        day.api(
            when,
            target.id,
            region,
            own,
            "sts",
            "AssumeRole",
            ip=ip,
            agent=_TERRAFORM,
            params={
                "roleArn": f"arn:aws:iam::{target.id}:role/deployer",
                "roleSessionName": session,
                "durationSeconds": 3600,
            },
        )
        deployer = day.assumed(target.id, "deployer", session)
        for service, name, params in _deploy_calls(day, target, rng):
            when += timedelta(seconds=rng.randrange(1, 15))
            day.api(
                when,
                target.id,
                region,
                deployer,
                service,
                name,
                ip=ip,
                agent=_TERRAFORM,
                params=params,
            )
        cluster = next((c for c in org.clusters if c.account == target.id), None)
        if cluster is not None and rng.random() < 0.6:
            user = day.eks_user(cluster, "deployer", session, ["deployers"])
            namespace = rng.choice(cluster.namespaces)
            for verb, resource in (("get", "deployments"), ("patch", "deployments")):
                when += timedelta(seconds=2)
                day.k8s(
                    when,
                    cluster,
                    user,
                    verb,
                    resource,
                    ip=ip,
                    agent="helm/v3.15.2 (linux/amd64)",
                    namespace=namespace,
                    name=f"{namespace}-app",
                    group="apps",
                )


def _github(day: _Day, scale: float) -> None:
    """The data team deploys its pipelines from GitHub Actions through OIDC."""
    rng = day.rng
    account = day.org.account("data-prod")
    provider = f"arn:aws:iam::{account.id}:oidc-provider/token.actions.githubusercontent.com"
    subject = "repo:shop-example/data-pipelines:ref:refs/heads/main"
    for _ in range(int(rng.randrange(2, 7) * scale) + 1):
        session = f"GitHubActions-{rng.randrange(10**9, 10**10)}"
        ip = _ip(_net(rng), rng)  # GitHub-hosted runners: a new address every run
        when = day.at(rng.uniform(7, 19))
        day.api(
            when,
            account.id,
            "us-west-2",
            {
                "type": "WebIdentityUser",
                "principalId": f"{provider}:sts.amazonaws.com:{subject}",
                "userName": subject,
                "identityProvider": provider,
            },
            "sts",
            "AssumeRoleWithWebIdentity",
            ip=ip,
            agent="aws-sdk-js/3.621.0 ua/2.0 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.16.0",
            params={
                "roleArn": f"arn:aws:iam::{account.id}:role/gha-data-deploy",
                "roleSessionName": session,
            },
        )
        identity = day.assumed(account.id, "gha-data-deploy", session, web_identity=provider)
        for service, name, params in (
            ("sts", "GetCallerIdentity", {}),
            ("glue", "UpdateJob", {"jobName": rng.choice(("orders-daily", "clicks-hourly"))}),
            ("s3", "PutObject", {"bucketName": f"data-artifacts-{account.id}", "key": "jobs.zip"}),
        ):
            when += timedelta(seconds=rng.randrange(2, 30))
            day.api(
                when,
                account.id,
                "us-west-2",
                identity,
                service,
                name,
                ip=ip,
                agent=_BOTO,
                params=params,
                category="Data" if service == "s3" else "Management",
            )


def _deploy_calls(day: _Day, target: Account, rng: random.Random) -> list[tuple[str, str, Json]]:
    reads: list[tuple[str, str, Json]] = [
        ("sts", "GetCallerIdentity", {}),
        ("ec2", "DescribeVpcs", {}),
        ("ec2", "DescribeSecurityGroups", {}),
        ("iam", "GetRole", {"roleName": "checkout-task"}),
        ("ecs", "DescribeServices", {"cluster": "shop", "services": ["checkout"]}),
        ("ecr", "DescribeRepositories", {}),
    ]
    writes: list[tuple[str, str, Json]] = [
        ("ecs", "RegisterTaskDefinition", {"family": rng.choice(("checkout", "catalog"))}),
        ("ecs", "UpdateService", {"cluster": "shop", "service": "checkout"}),
        ("lambda", "UpdateFunctionCode20150331v2", {"functionName": "order-events"}),
        ("ssm", "PutParameter", {"name": "/shop/release", "type": "String", "overwrite": True}),
        (
            "ec2",
            "CreateTags",
            {"resourcesSet": {"items": [{"resourceId": "sg-0aa11bb22cc33dd44"}]}},
        ),
    ]
    return [*reads, *rng.sample(writes, 2)]


def _services(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    shop = org.account("shop-prod")
    # ECS tasks: sessions named after the task id, from private addresses.
    for role in ("checkout-task", "catalog-task"):
        for task in range(3):
            session = uuid.uuid5(uuid.NAMESPACE_DNS, f"{role}:{day.index}:{task}").hex
            identity = day.assumed(shop.id, role, session)
            ip = _private(rng)
            day.api(
                day.at(rng.uniform(0, 2)),
                shop.id,
                "eu-central-1",
                identity,
                "secretsmanager",
                "GetSecretValue",
                ip=ip,
                agent=_JAVA,
                params={"secretId": f"shop/{role}/db"},
            )
            for _ in range(int(rng.randrange(40, 90) * scale)):
                service, name, category = rng.choice(
                    (
                        ("dynamodb", "DescribeTable", "Management"),
                        ("kms", "Decrypt", "Management"),
                        ("sqs", "GetQueueUrl", "Management"),
                        ("s3", "GetObject", "Data"),
                        ("s3", "PutObject", "Data"),
                    )
                )
                day.api(
                    day.at(rng.uniform(0, 24)),
                    shop.id,
                    "eu-central-1",
                    identity,
                    service,
                    name,
                    ip=ip,
                    agent=_JAVA,
                    params={"bucketName": f"shop-assets-{shop.id}"} if service == "s3" else {},
                    category=category,
                )
    # Kafka brokers on EC2 in data-prod: instance sessions, on-instance addresses only.
    data = org.account("data-prod")
    for broker in _brokers(day):
        identity = day.assumed(data.id, "kafka-broker", broker, instance=True)
        for _ in range(int(rng.randrange(30, 60) * scale)):
            service, name = rng.choice(
                (
                    ("s3", "PutObject"),
                    ("s3", "GetObject"),
                    ("kms", "GenerateDataKey"),
                    ("cloudwatch", "PutMetricData"),
                    ("ec2", "DescribeInstances"),
                )
            )
            day.api(
                day.at(rng.uniform(0, 24)),
                data.id,
                "us-west-2",
                identity,
                service,
                name,
                ip=_private(rng) if rng.random() < 0.7 else org.nat[data.id],
                agent=_BOTO,
                params={"bucketName": f"kafka-tiered-{data.id}"} if service == "s3" else {},
                category="Data" if service == "s3" else "Management",
            )
    # Lambda functions.
    for function, account_name in (
        ("order-events", "shop-prod"),
        ("image-resizer", "shop-prod"),
        ("etl-trigger", "data-prod"),
    ):
        account = org.account(account_name)
        identity = day.assumed(account.id, f"{function}-role", function)
        for _ in range(int(rng.randrange(80, 160) * scale)):
            service, name, category = rng.choice(
                (
                    ("s3", "GetObject", "Data"),
                    ("s3", "PutObject", "Data"),
                    ("sqs", "SendMessage", "Data"),
                )
            )
            day.api(
                day.at(rng.uniform(0, 24)),
                account.id,
                account.regions[0],
                identity,
                service,
                name,
                ip=_ip(rng.choice(org.lambda_nets), rng),
                agent=_LAMBDA_UA,
                params={"bucketName": f"{function}-{account.id}"},
                category=category,
            )


def _brokers(day: _Day) -> list[str]:
    # The migration to Graviton (day 12) replaces the brokers.
    return _instances("kafka-graviton" if day.index >= 12 else "kafka-broker", 3)


def _aws_services(day: _Day, scale: float) -> None:
    rng = day.rng
    for account in day.org.accounts:
        for _ in range(int(rng.randrange(15, 40) * scale) + 1):
            day.api(
                day.at(rng.uniform(0, 24)),
                account.id,
                account.regions[0],
                day.service("config"),
                "sts",
                "AssumeRole",
                ip="config.amazonaws.com",
                agent="config.amazonaws.com",
                params={"roleSessionName": "AWSConfig-Describe"},
            )
        if rng.random() < 0.5:
            day.api(
                day.at(rng.uniform(0, 24)),
                account.id,
                account.regions[0],
                day.service("backup"),
                "ec2",
                "CreateSnapshot",
                ip="backup.amazonaws.com",
                agent="backup.amazonaws.com",
                params={"volumeId": "vol-0" + uuid.uuid5(uuid.NAMESPACE_DNS, account.id).hex[:16]},
            )


def _karpenter(day: _Day, scale: float) -> None:
    """Karpenter (IRSA) launches and removes nodes of each cluster through CreateFleet."""
    rng = day.rng
    for cluster in day.org.clusters:
        provider = (
            f"arn:aws:iam::{cluster.account}:oidc-provider/oidc.eks.{cluster.region}.amazonaws.com/"
            f"id/{uuid.uuid5(uuid.NAMESPACE_DNS, cluster.name).hex[:32].upper()}"
        )
        identity = day.assumed(
            cluster.account,
            "KarpenterController",
            f"{rng.randrange(10**18, 10**19)}",
            web_identity=provider,
        )
        ip = day.org.nat[cluster.account]
        for _ in range(int(rng.randrange(3, 9) * scale) + 1):
            when = day.at(rng.uniform(0, 24))
            family = rng.choice(
                ("m6i", "c6i", "r6i") if cluster.name != "data-platform" else ("r6i", "m6i")
            )
            size = rng.choice(("large", "xlarge", "2xlarge"))
            day.api(
                when,
                cluster.account,
                cluster.region,
                identity,
                "ec2",
                "CreateFleet",
                ip=ip,
                agent="aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 karpenter.sh-1.0.1",
                params={
                    "CreateFleetRequest": {
                        "Type": "instant",
                        "LaunchTemplateConfigs": {
                            "Overrides": {"InstanceType": f"{family}.{size}"},
                            "tag": 1,
                        },
                        "TargetCapacitySpecification": {"TotalTargetCapacity": 1},
                    }
                },
            )
            day.api(
                when + timedelta(minutes=rng.randrange(30, 600)),
                cluster.account,
                cluster.region,
                identity,
                "ec2",
                "TerminateInstances",
                ip=ip,
                agent="aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 karpenter.sh-1.0.1",
                params={"instancesSet": {"items": [{"instanceId": _instance_id(rng)}]}},
            )


def _scanner(day: _Day, scale: float) -> None:
    """The security team's nightly posture scan of every account, refused here and there."""
    org = day.org
    rng = day.rng
    when = day.at(1.0)
    reads = (*_PLATFORM_READS, *_DBA_READS, ("s3", "GetBucketAcl"), ("kms", "ListKeys"))
    agent = (
        "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#6.1.97 lang/python#3.12.4 "
        "cloud-posture/3.8.1"
    )
    for account in org.accounts:
        identity = day.assumed(account.id, "posture-scan", f"posture-scan-{day.index}")
        for _ in range(int(90 * scale) + 3):
            when += timedelta(milliseconds=rng.randrange(80, 900))
            service, name = rng.choice(reads)
            day.api(
                when,
                account.id,
                account.regions[0],
                identity,
                service,
                name,
                ip=org.scanner_ip,
                agent=agent,
                params={},
                denied="*" if rng.random() < 0.05 else None,
            )


def _reporting(day: _Day, scale: float) -> None:
    """A legacy IAM user with a long-term key pulls cost reports every morning."""
    account = day.org.account("management")
    key = "AKIA" + uuid.uuid5(uuid.NAMESPACE_DNS, "reporting-bot").hex[:16].upper()
    identity = day.user(account.id, "reporting-bot", key)
    when = day.at(5.0)
    for _ in range(int(12 * scale) + 2):
        when += timedelta(seconds=day.rng.randrange(1, 20))
        day.api(
            when,
            account.id,
            "us-east-1",
            identity,
            "ce",
            "GetCostAndUsage",
            ip=day.org.reporting_ip,
            agent="aws-cli/2.17.20 Python/3.11.9 Linux/5.15.0-113-generic exe/x86_64.ubuntu.22",
            params={"granularity": "DAILY"},
        )


def _clusters(day: _Day, scale: float) -> None:
    rng = day.rng
    for cluster in day.org.clusters:
        nodes = [
            f"ip-10-{cluster.name.count('-')}-{rng.randrange(0, 16)}-{rng.randrange(2, 254)}"
            ".ec2.internal"
            for _ in range(4)
        ]
        for node in nodes:
            ip = node.removeprefix("ip-").split(".")[0].replace("-", ".")
            user = day.eks_user(
                cluster,
                "eks-node-role",
                _instance_id(_rand(node)),
                ["system:bootstrappers", "system:nodes"],
            )
            user["username"] = f"system:node:{node}"
            for _ in range(int(60 * scale) + 3):
                verb, resource, group, namespace = rng.choice(
                    (
                        ("update", "leases", "coordination.k8s.io", "kube-node-lease"),
                        ("patch", "nodes", "", None),
                        ("get", "pods", "", rng.choice(cluster.namespaces)),
                        ("get", "secrets", "", rng.choice(cluster.namespaces)),
                    )
                )
                day.k8s(
                    day.at(rng.uniform(0, 24)),
                    cluster,
                    user,
                    verb,
                    resource,
                    ip=ip,
                    agent=_NODE_UA,
                    namespace=namespace,
                    name=node
                    if resource in ("nodes", "leases")
                    else f"{resource[:-1]}-{rng.randrange(9)}",
                    subresource="status" if resource == "nodes" else None,
                    group=group,
                )
        for _ in range(int(150 * scale) + 5):
            who = rng.choice(
                ("replicaset-controller", "endpointslice-controller", "job-controller")
            )
            verb, resource, group = rng.choice(
                (
                    ("create", "pods", ""),
                    ("delete", "pods", ""),
                    ("update", "endpointslices", "discovery.k8s.io"),
                )
            )
            namespace = rng.choice(cluster.namespaces)
            day.k8s(
                day.at(rng.uniform(0, 24)),
                cluster,
                day.service_account("kube-system", who),
                verb,
                resource,
                ip="10.0.0.5",
                agent=_CM_UA.format(name=who),
                namespace=namespace,
                name=None if verb == "create" else f"{namespace}-x",
                group=group,
            )
        operators = (
            (day.service_account("external-secrets", "external-secrets"), "get", "secrets"),
            (
                day.service_account("argocd", "argocd-application-controller"),
                "patch",
                "deployments",
            ),
            (day.service_account("karpenter", "karpenter"), "create", "nodeclaims"),
        )
        for _ in range(int(60 * scale) + 2):
            actor, verb, resource = rng.choice(operators)
            namespace = rng.choice(cluster.namespaces) if resource != "nodeclaims" else None
            day.k8s(
                day.at(rng.uniform(0, 24)),
                cluster,
                actor,
                verb,
                resource,
                ip=_private(rng),
                agent="Go-http-client/2.0",
                namespace=namespace,
                name=f"{namespace or 'default'}-{resource[:-1]}",
                group={"deployments": "apps", "nodeclaims": "karpenter.sh"}.get(resource, ""),
            )


# --- benign novelty ---------------------------------------------------------------------------


def _novelty(day: _Day, scale: float) -> None:
    org = day.org
    rng = day.rng
    shop = org.account("shop-prod")
    data = org.account("data-prod")
    if day.index == 10:
        # A new service: its role, its function and its secret, made by the pipeline.
        deployer = day.assumed(shop.id, "deployer", "gitlab-5550123")
        ip = org.nat[org.account("shared-services").id]
        when = day.at(11.0)
        trust = orjson.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ).decode()
        for service, name, params in (
            (
                "iam",
                "CreateRole",
                {"roleName": "recommendations-role", "assumeRolePolicyDocument": trust},
            ),
            ("secretsmanager", "CreateSecret", {"name": "shop/recommendations/api-key"}),
            ("lambda", "CreateFunction20150331", {"functionName": "recommendations"}),
        ):
            when += timedelta(seconds=5)
            day.api(
                when,
                shop.id,
                "eu-central-1",
                deployer,
                service,
                name,
                ip=ip,
                agent=_TERRAFORM,
                params=params,
            )
    if day.index >= 10:
        identity = day.assumed(shop.id, "recommendations-role", "recommendations")
        for _ in range(int(rng.randrange(3, 8) * scale) + 1):
            day.api(
                day.at(rng.uniform(0, 24)),
                shop.id,
                "eu-central-1",
                identity,
                "secretsmanager",
                "GetSecretValue",
                ip=_ip(rng.choice(org.lambda_nets), rng),
                agent=_LAMBDA_UA,
                params={"secretId": "shop/recommendations/api-key"},
            )
    if day.index == 12:
        # The Kafka brokers move to Graviton: launched by the pipeline's deployer role.
        deployer = day.assumed(data.id, "deployer", "gitlab-5550456")
        ip = org.nat[org.account("shared-services").id]
        for broker in _instances("kafka-graviton", 3):
            day.api(
                day.at(10.0 + rng.uniform(0, 0.2)),
                data.id,
                "us-west-2",
                deployer,
                "ec2",
                "RunInstances",
                ip=ip,
                agent=_TERRAFORM,
                params={
                    "instancesSet": {
                        "items": [
                            {"imageId": "ami-0f1e2d3c4b5a69788", "minCount": 1, "maxCount": 1}
                        ]
                    },
                    "instanceType": "m7g.2xlarge",
                    "iamInstanceProfile": {"name": "kafka-broker"},
                },
                response={
                    "reservationId": f"r-0{uuid.uuid5(uuid.NAMESPACE_DNS, broker).hex[:16]}",
                    "ownerId": data.id,
                    "instancesSet": {
                        "items": [{"instanceId": broker, "instanceType": "m7g.2xlarge"}]
                    },
                },
            )
    if day.index == 13:
        # The DBA restores a database to a new Aurora cluster during a migration window.
        dba = org.person("kemal")
        identity = day.sso(dba, shop.id)
        ip = _person_ip(day, dba)
        when = day.at(20.0)
        for name, changes in (
            (
                "CreateDBClusterSnapshot",
                {
                    "dBClusterIdentifier": "orders",
                    "dBClusterSnapshotIdentifier": "orders-pre-migration",
                },
            ),
            (
                "RestoreDBClusterFromSnapshot",
                {
                    "dBClusterIdentifier": "orders-v2",
                    "snapshotIdentifier": "orders-pre-migration",
                    "engine": "aurora-postgresql",
                },
            ),
            ("ModifyDBCluster", {"dBClusterIdentifier": "orders-v2", "backupRetentionPeriod": 14}),
        ):
            when += timedelta(minutes=4)
            day.api(
                when,
                shop.id,
                "eu-central-1",
                identity,
                "rds",
                name,
                ip=ip,
                agent=_BROWSER,
                params=changes,
            )
    if day.index == 16:
        # An on-call night: Session Manager into the brokers, a look inside a pod, a secret.
        engineer = org.person("ines")
        ip = _ip(engineer.home, _rand(f"{engineer.name}:{engineer.home}"))
        identity = day.sso(engineer, data.id)
        when = day.at(3.2)
        for broker in _brokers(day):
            when += timedelta(minutes=6)
            _session_manager(day, engineer, ip, broker, when)
        day.api(
            when + timedelta(minutes=2),
            data.id,
            "us-west-2",
            identity,
            "secretsmanager",
            "GetSecretValue",
            ip=ip,
            agent=_cli("secretsmanager.get-secret-value"),
            params={"secretId": "data/kafka/admin"},
        )
        cluster = org.cluster("data-platform")
        day.k8s(
            when + timedelta(minutes=9),
            cluster,
            day.person_on(cluster, engineer),
            "create",
            "pods",
            ip=ip,
            agent=_KUBECTL,
            namespace="trino",
            name="trino-coordinator-0",
            subresource="exec",
            query="command=bash&container=trino&stdin=true&stdout=true&tty=true",
        )


# --- attacks ----------------------------------------------------------------------------------


def _attacker(label: str) -> str:
    return _ip(_net(_rand(f"check-attacker:{label}")), _rand(f"check:{label}"))


_VPS_CLI = "aws-cli/2.17.37 Python/3.11.9 Linux/6.8.0-41-generic exe/x86_64.ubuntu.24 prompt/off"


def _refused_escalation(day: _Day, when: datetime) -> None:
    org = day.org
    person = org.person("dmitri")
    account = org.account("shop-prod")
    identity = day.sso(person, account.id)
    ip = _attacker("sso-dmitri")
    steps: list[tuple[str, str, Json, str]] = [
        ("iam", "CreateAccessKey", {"userName": "reporting-bot"}, "user reporting-bot"),
        (
            "iam",
            "AttachRolePolicy",
            {
                "roleName": "checkout-task",
                "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
            },
            "role checkout-task",
        ),
        (
            "iam",
            "PutUserPolicy",
            {
                "userName": "reporting-bot",
                "policyName": "ops",
                "policyDocument": _ALLOW_ALL,
            },
            "user reporting-bot",
        ),
        (
            "iam",
            "UpdateAssumeRolePolicy",
            {
                "roleName": "deployer",
                "policyDocument": orjson.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{_OUTSIDE}:root"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ).decode(),
            },
            "role deployer",
        ),
        ("iam", "CreateLoginProfile", {"userName": "reporting-bot"}, "user reporting-bot"),
    ]
    steps += [
        (
            "secretsmanager",
            "GetSecretValue",
            {"secretId": f"shop/service-{i}/db"},
            f"arn:aws:secretsmanager:eu-central-1:{account.id}:secret:shop/service-{i}/db",
        )
        for i in range(18)
    ]
    for service, name, params, resource in steps:
        when += timedelta(seconds=day.rng.randrange(2, 12))
        day.api(
            when,
            account.id,
            "eu-central-1",
            identity,
            service,
            name,
            ip=ip,
            agent=_cli(f"{service}.{name.lower()}"),
            params=params,
            denied=f"arn:aws:iam::{account.id}:{resource.replace(' ', '/')}"
            if service == "iam"
            else resource,
        )


def _ssm_send_command(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("data-prod")
    # The pipeline's deployer session, its token stolen from a job log.
    identity = day.assumed(account.id, "deployer", "gitlab-6123987")
    brokers = _brokers(day)
    day.api(
        when,
        account.id,
        "us-west-2",
        identity,
        "ssm",
        "SendCommand",
        ip=_attacker("ssm"),
        agent=_VPS_CLI,
        params={
            "instanceIds": brokers,
            "documentName": "AWS-RunShellScript",
            "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
            "interactive": False,
        },
        response={
            "command": {
                "commandId": day.uuid(),
                "documentName": "AWS-RunShellScript",
                "instanceIds": brokers,
                "status": "Pending",
                "targetCount": len(brokers),
            }
        },
    )


def _instance_connect(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("shop-staging")
    person = org.person("farah")
    identity = day.sso(person, account.id)
    for instance in _instances("staging-bastion", 2):
        when += timedelta(seconds=40)
        day.api(
            when,
            account.id,
            "eu-central-1",
            identity,
            "ec2-instance-connect",
            "SendSSHPublicKey",
            ip=_attacker("eic"),
            agent=_VPS_CLI,
            params={
                "instanceId": instance,
                "instanceOSUser": "ec2-user",
                "sSHPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1vY2tlZCBrZXkgZm9y"
                "IHRlc3RzIG9ubHkgbm90IHJlYWw root@vps",
            },
            response={"requestId": day.uuid(), "success": True},
            read_only=False,
        )


def _instance_credentials_elsewhere(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("data-prod")
    broker = _brokers(day)[1]
    identity = day.assumed(account.id, "kafka-broker", broker, instance=True)
    ip = _attacker("kafka-creds")
    steps: list[tuple[str, str, Json, str]] = [
        ("sts", "GetCallerIdentity", {}, "Management"),
        ("s3", "ListBuckets", {}, "Management"),
        ("iam", "ListAttachedRolePolicies", {"roleName": "kafka-broker"}, "Management"),
    ]
    steps += [
        (
            "s3",
            "GetObject",
            {"bucketName": f"kafka-tiered-{account.id}", "key": f"orders/{i:05d}.log"},
            "Data",
        )
        for i in range(20)
    ]
    for service, name, params, category in steps:
        when += timedelta(seconds=day.rng.randrange(2, 30))
        day.api(
            when,
            account.id,
            "us-west-2",
            identity,
            service,
            name,
            ip=ip,
            agent=_VPS_CLI,
            params=params,
            category=category,
            denied="role/kafka-broker" if service == "iam" else None,
        )


def _userdata_burst(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("shop-prod")
    identity = day.sso(org.person("goran"), account.id)
    ip = _attacker("userdata")
    for index, instance in enumerate(_instances("shop-fleet", 24)):
        when += timedelta(seconds=day.rng.randrange(1, 4))
        day.api(
            when,
            account.id,
            "eu-central-1",
            identity,
            "ec2",
            "DescribeInstanceAttribute",
            ip=ip,
            agent=_VPS_CLI,
            params={"instanceId": instance, "attribute": "userData"},
            denied=f"arn:aws:ec2:eu-central-1:{account.id}:instance/{instance}"
            if index % 6 == 5
            else None,
        )


def _stolen_key(day: _Day) -> tuple[Json, str, str]:
    account = day.org.account("management")
    key = "AKIA" + uuid.uuid5(uuid.NAMESPACE_DNS, "reporting-bot").hex[:16].upper()
    agent = "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.8.0 lang/python#3.12.3"
    return day.user(account.id, "reporting-bot", key), _attacker("llm"), agent


def _gpu_launch(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("ml-research")
    identity = day.sso(org.person("ivo"), account.id)
    ip = _attacker("gpu")
    for instance_type, error in (
        ("p4d.24xlarge", True),
        ("p5.48xlarge", True),
        ("g5.12xlarge", False),
        ("g5.12xlarge", False),
    ):
        when += timedelta(seconds=day.rng.randrange(10, 60))
        instance = _instance_id(day.rng)
        day.api(
            when,
            account.id,
            "ap-southeast-1",
            identity,
            "ec2",
            "RunInstances",
            ip=ip,
            agent=_VPS_CLI,
            params={
                "instancesSet": {
                    "items": [{"imageId": "ami-0a9b8c7d6e5f40312", "minCount": 1, "maxCount": 1}]
                },
                "instanceType": instance_type,
                "blockDeviceMapping": {},
                "monitoring": {"enabled": False},
                "disableApiTermination": False,
            },
            response={
                "reservationId": f"r-0{uuid.uuid5(uuid.NAMESPACE_DNS, instance).hex[:16]}",
                "ownerId": account.id,
                "instancesSet": {
                    "items": [{"instanceId": instance, "instanceType": instance_type}]
                },
            },
            error=(
                "Client.VcpuLimitExceeded",
                "You have requested more vCPU capacity than your current vCPU limit of 0 allows "
                "for the instance bucket that the specified instance type belongs to. Please visit "
                "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this "
                "limit.",
            )
            if error
            else None,
        )


def _bedrock_access(day: _Day, when: datetime) -> None:
    identity, ip, agent = _stolen_key(day)
    account = day.org.account("management")
    model = "anthropic.claude-3-opus-20240229-v1:0"
    for name, params in (
        ("ListFoundationModels", {}),
        ("PutUseCaseForModelAccess", {"formData": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
        (
            "CreateFoundationModelAgreement",
            {"modelId": model, "offerToken": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        ),
        ("PutFoundationModelEntitlement", {"modelId": model}),
    ):
        when += timedelta(seconds=day.rng.randrange(5, 40))
        day.api(
            when,
            account.id,
            "us-east-1",
            identity,
            "bedrock",
            name,
            ip=ip,
            agent=agent,
            params=params,
        )


def _bedrock_logging_deleted(day: _Day, when: datetime) -> None:
    identity, ip, agent = _stolen_key(day)
    account = day.org.account("management")
    day.api(
        when,
        account.id,
        "us-east-1",
        identity,
        "bedrock",
        "DeleteModelInvocationLoggingConfiguration",
        ip=ip,
        agent=agent,
        params=None,
    )


def _bedrock_invocations(day: _Day, when: datetime) -> None:
    identity, ip, agent = _stolen_key(day)
    account = day.org.account("management")
    for _ in range(30):
        when += timedelta(seconds=day.rng.randrange(3, 30))
        day.api(
            when,
            account.id,
            "us-east-1",
            identity,
            "bedrock",
            day.rng.choice(("InvokeModel", "Converse")),
            ip=ip,
            agent=agent,
            params={"modelId": "anthropic.claude-3-opus-20240229-v1:0"},
            read_only=False,
        )


def _roles_anywhere(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("shop-prod")
    identity = day.sso(org.person("amara"), account.id)
    ip = _attacker("rolesanywhere")
    anchor = f"arn:aws:rolesanywhere:eu-central-1:{account.id}:trust-anchor/{day.uuid()}"
    day.api(
        when,
        account.id,
        "eu-central-1",
        identity,
        "rolesanywhere",
        "CreateTrustAnchor",
        ip=ip,
        agent=_VPS_CLI,
        params={
            "name": "partner-sync",
            "enabled": True,
            "source": {
                "sourceType": "CERTIFICATE_BUNDLE",
                "sourceData": {"x509CertificateData": "-----BEGIN CERTIFICATE-----\nMIIB..."},
            },
        },
        response={
            "trustAnchor": {"trustAnchorArn": anchor, "name": "partner-sync", "enabled": True}
        },
    )
    day.api(
        when + timedelta(seconds=50),
        account.id,
        "eu-central-1",
        identity,
        "rolesanywhere",
        "CreateProfile",
        ip=ip,
        agent=_VPS_CLI,
        params={
            "name": "partner-sync",
            "enabled": True,
            "roleArns": [f"arn:aws:iam::{account.id}:role/deployer"],
            "durationSeconds": 43200,
        },
        response={"profile": {"name": "partner-sync", "enabled": True}},
    )


def _federation_token(day: _Day, when: datetime) -> None:
    identity, ip, agent = _stolen_key(day)
    account = day.org.account("management")
    day.api(
        when,
        account.id,
        "us-east-1",
        identity,
        "sts",
        "GetFederationToken",
        ip=ip,
        agent=agent,
        params={
            "name": "ops-admin",
            "policy": _ALLOW_ALL,
            "durationSeconds": 129600,
        },
        response={
            "credentials": {
                "accessKeyId": day.key("ASIA"),
                "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "expiration": (when + timedelta(hours=36)).strftime("%b %d, %Y, %I:%M:%S %p"),
            },
            "federatedUser": {
                "federatedUserId": f"{account.id}:ops-admin",
                "arn": f"arn:aws:sts::{account.id}:federated-user/ops-admin",
            },
            "packedPolicySize": 9,
        },
    )
    federated = {
        "type": "FederatedUser",
        "principalId": f"{account.id}:ops-admin",
        "arn": f"arn:aws:sts::{account.id}:federated-user/ops-admin",
        "accountId": account.id,
        "accessKeyId": day.key("ASIA"),
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": identity["principalId"],
                "arn": identity["arn"],
                "accountId": account.id,
                "userName": "reporting-bot",
            },
            "attributes": {"creationDate": when.strftime(_CT_TIME), "mfaAuthenticated": "false"},
        },
    }
    day.api(
        when + timedelta(seconds=30),
        account.id,
        "us-east-1",
        federated,
        "signin",
        "GetSigninToken",
        ip=ip,
        agent="python-requests/2.32.3",
        params=None,
        response={"GetSigninToken": "Success"},
        additional={"MobileVersion": "No", "MFAUsed": "No"},
        read_only=False,
    )


def _secrets_by_new_principal(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("shop-prod")
    identity = day.assumed(account.id, "image-resizer-role", "image-resizer")
    ip = _ip(org.lambda_nets[3], day.rng)
    for service, name, params in (
        ("secretsmanager", "GetSecretValue", {"secretId": "shop/checkout-task/db"}),
        ("secretsmanager", "GetSecretValue", {"secretId": "shop/payments/stripe"}),
        ("ssm", "GetParameter", {"name": "/shop/prod/admin-token", "withDecryption": True}),
    ):
        when += timedelta(seconds=day.rng.randrange(2, 20))
        day.api(
            when,
            account.id,
            "eu-central-1",
            identity,
            service,
            name,
            ip=ip,
            agent=_LAMBDA_UA,
            params=params,
        )


def _security_group_all_open(day: _Day, when: datetime) -> None:
    org = day.org
    account = org.account("shop-staging")
    identity = day.sso(org.person("farah"), account.id)
    day.api(
        when,
        account.id,
        "eu-central-1",
        identity,
        "ec2",
        "AuthorizeSecurityGroupIngress",
        ip=_attacker("eic"),
        agent=_VPS_CLI,
        params={
            "groupId": "sg-0123abcd4567ef890",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "-1",
                        "groups": {},
                        "ipRanges": {},
                        "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]},
                        "prefixListIds": {},
                    }
                ]
            },
        },
        response={"requestId": day.uuid(), "_return": True},
        read_only=False,
    )


def _k8s_exec(day: _Day, when: datetime) -> None:
    org = day.org
    cluster = org.cluster("data-platform")
    person = org.person("hana")
    day.k8s(
        when,
        cluster,
        day.person_on(cluster, person),
        "create",
        "pods",
        ip=_attacker("sso-hana"),
        agent="kubectl/v1.30.3 (linux/amd64) kubernetes/6fc0a69",
        namespace="airflow",
        name="airflow-scheduler-0",
        subresource="exec",
        query="command=%2Fbin%2Fsh&command=-c&command=env&container=scheduler&stdout=true&stderr=true",
    )


ATTACKS: tuple[AttackTechnique[_Day], ...] = (
    AttackTechnique(
        "refused-privilege-escalation",
        "Refused privilege escalation and a sweep of refused secret reads",
        ("T1098.001", "T1555.006"),
        (
            "aws.iam-access-key-for-other-user",
            "aws.iam-admin-granted",
            "aws.iam-trust-opened",
            "aws.iam-login-profile-for-other-user",
            "behav.access-denied-burst",
        ),
        8,
        14.5,
        _refused_escalation,
    ),
    AttackTechnique(
        "ssm-run-command",
        "Shell commands sent to instances with SSM Run Command",
        ("T1651",),
        ("aws.instance-command-execution",),
        9,
        22.4,
        _ssm_send_command,
    ),
    AttackTechnique(
        "ec2-instance-connect-key",
        "SSH keys pushed to instances with EC2 Instance Connect",
        ("T1098.004", "T1021.004"),
        ("aws.instance-command-execution",),
        10,
        13.1,
        _instance_connect,
    ),
    AttackTechnique(
        "instance-credentials-off-instance",
        "A broker's instance credentials used from a VPS",
        ("T1552.005",),
        (
            "aws.instance-credentials-off-instance",
            "behav.instance-credentials-elsewhere",
            "aws.instance-credentials-on-workstation",
        ),
        11,
        2.7,
        _instance_credentials_elsewhere,
    ),
    AttackTechnique(
        "userdata-read-burst",
        "User data of two dozen instances read in a minute",
        ("T1552.005", "T1580"),
        ("aws.userdata-read-burst", "aws.instance-userdata-read"),
        12,
        16.2,
        _userdata_burst,
    ),
    AttackTechnique(
        "gpu-instances-launched",
        "GPU instances launched in an unused region after quota refusals",
        ("T1496", "T1535"),
        ("aws.unusual-instance-type-launched", "behav.new-region-account"),
        13,
        3.3,
        _gpu_launch,
    ),
    AttackTechnique(
        "bedrock-model-access-enabled",
        "Model access granted to Bedrock models with a leaked key",
        ("T1496",),
        ("aws.model-access-changed",),
        14,
        23.0,
        _bedrock_access,
    ),
    AttackTechnique(
        "bedrock-invocation-logging-deleted",
        "Bedrock model invocation logging deleted",
        ("T1562.008",),
        ("aws.model-invocation-logging-disabled", "aws.protection-removed"),
        14,
        23.2,
        _bedrock_logging_deleted,
    ),
    AttackTechnique(
        "bedrock-first-invocations",
        "A principal that never used Bedrock invokes models",
        ("T1496",),
        ("behav.first-model-invocation",),
        14,
        23.3,
        _bedrock_invocations,
    ),
    AttackTechnique(
        "roles-anywhere-trust-anchor",
        "IAM Roles Anywhere trust anchor and profile for the deployer role",
        ("T1098", "T1556"),
        ("aws.roles-anywhere-changed",),
        15,
        19.5,
        _roles_anywhere,
    ),
    AttackTechnique(
        "federation-token-from-user-key",
        "Federation token minted from a user's key and taken to the console",
        ("T1550.001",),
        ("aws.federation-token", "aws.console-federation-token"),
        16,
        4.4,
        _federation_token,
    ),
    AttackTechnique(
        "secrets-read-by-new-principal",
        "A function that never read secrets reads three",
        ("T1555.006",),
        ("behav.new-sensitive-category",),
        17,
        13.8,
        _secrets_by_new_principal,
    ),
    AttackTechnique(
        "security-group-all-open-ipv6",
        "All ports opened to the IPv6 internet",
        ("T1562.007",),
        ("aws.network-opened-to-internet",),
        18,
        11.0,
        _security_group_all_open,
    ),
    AttackTechnique(
        "k8s-exec-from-stolen-session",
        "Environment dumped from a pod with a stolen SSO session",
        ("T1609",),
        ("k8s.pod-exec",),
        19,
        21.7,
        _k8s_exec,
    ),
)


# --- generation -------------------------------------------------------------------------------

_ACTORS: tuple[Callable[[_Day, float], None], ...] = (
    _people,
    _gitlab,
    _github,
    _services,
    _aws_services,
    _karpenter,
    _scanner,
    _reporting,
    _clusters,
    _novelty,
)


def generate(
    org: CheckOrg | None = None,
    *,
    seed: int = 2027,
    days: int = DEFAULT_DAYS,
    start: datetime = DEFAULT_START,
    scale: float = 1.0,
    attacks: bool | Iterable[AttackTechnique[_Day]] = True,
) -> Iterator[OrgRecord]:
    """Records of ``days`` days from ``start``, in time order; the same seed, the same records."""
    org = org or default_org(seed)
    chosen = ATTACKS if attacks is True else () if attacks is False else tuple(attacks)
    # What a day starts can end the next day (a node removed hours later, a long exec):
    # such records wait for their own day, so the stream stays in time order.
    carried: list[OrgRecord] = []
    for index in range(days):
        day = _Day(org, _rand(f"check:{seed}:day:{index}"), start + timedelta(days=index), index)
        for actor in _ACTORS:
            actor(day, scale)
        for attack in chosen:
            if attack.day == index:
                day.technique = attack.id
                attack.inject(day, day.start + timedelta(hours=attack.hour))
                day.technique = None
        end = day.start + timedelta(days=1)
        records = sorted([*carried, *day.out], key=lambda r: r.time)
        carried = [r for r in records if r.time >= end]
        yield from (r for r in records if r.time < end)
    # Records past the last day are outside the window, as in logs cut at a date.
