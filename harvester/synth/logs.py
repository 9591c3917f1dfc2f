"""Realistic, deterministic CloudTrail records and EKS audit events, and object writers.

Everything is driven by a seeded ``random.Random`` so a test or a benchmark can regenerate
the same bytes. Writers stream: a 200 MB object never exists in memory, only one record at
a time and the compressor's window.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson

try:
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps the generator usable
    import zlib as _zlib  # type: ignore[no-redef]

__all__ = [
    "WriteSummary",
    "cloudtrail_record",
    "k8s_audit_event",
    "write_cloudtrail_object",
    "write_eks_firehose_object",
    "write_eks_ndjson_object",
]

Json = dict[str, Any]
Destination = str | os.PathLike[str] | IO[bytes]

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"
DEFAULT_CLUSTER = "prod-eks"
DEFAULT_START = datetime(2024, 3, 4, 5, 0, 0, tzinfo=UTC)
_GZIP_WBITS = 31
# isal levels stop at 3; zlib's 1 is as fast as generation needs.
_COMPRESS_LEVEL = 1


@dataclass(frozen=True, slots=True)
class WriteSummary:
    """What a writer produced; ``max_record_bytes`` lets memory tests set a fair bound."""

    records: int
    uncompressed_bytes: int
    compressed_bytes: int
    max_record_bytes: int
    gzip_members: int


# --- small deterministic helpers -------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _stable_id(prefix: str, *parts: str, length: int = 16) -> str:
    """An AWS-looking id that is the same for the same name in every run."""
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=16).hexdigest().upper()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    body = "".join(alphabet[int(c, 16) * 2 % 32] for c in digest)
    return prefix + body[: length - len(prefix)] if length > len(prefix) else prefix


def _random_key(rng: random.Random, prefix: str = "ASIA") -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(rng.choice(alphabet) for _ in range(16))


def _ct_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _k8s_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_USER_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 "
    "prompt/off command/{cmd}",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0-1016-aws md/arch#x86_64 "
    "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 os/linux "
    "lang/go#1.22.0 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go-v2/1.24.1 os/linux lang/go#1.21.6 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.142.0",
    "console.amazonaws.com",
    "aws-internal/3 aws-sdk-java/1.12.655 Linux/5.10.210-178.855.amzn2int.x86_64 "
    "OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation "
    "cfg/retry-mode/standard",
)
_USERS = ("alice", "bob", "carol", "dave", "terraform", "backup-svc", "ci-legacy")
_ROLES = (
    ("Admin", "human"),
    ("ReadOnly", "human"),
    ("AWSReservedSSO_AdministratorAccess_5f2c9a6e1b7d3c40", "sso"),
    ("AWSReservedSSO_ViewOnlyAccess_0a9b8c7d6e5f4a3b", "sso"),
    ("ci-deployer", "ci"),
    ("eks-node-role", "ec2"),
    ("karpenter-controller", "irsa"),
    ("orders-api-lambda", "lambda"),
)
_SSO_EMAILS = ("alice@example.com", "bob@example.com", "erin@example.com", "frank@example.com")
_SERVICES = (
    "cloudtrail.amazonaws.com",
    "config.amazonaws.com",
    "autoscaling.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "lambda.amazonaws.com",
    "eks.amazonaws.com",
)
_BUCKETS = ("prod-orders-data", "analytics-lake", "tf-state-shared", "app-assets-public")
_TLS = (
    {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"},
    {"tlsVersion": "TLSv1.2", "cipherSuite": "ECDHE-RSA-AES128-GCM-SHA256"},
)


def _instance_id(number: int) -> str:
    return "i-0" + hashlib.blake2b(str(number).encode(), digest_size=8).hexdigest()


def _public_ip(rng: random.Random) -> str:
    net = rng.choice(("203.0.113", "198.51.100", "192.0.2", "100.24.17"))
    return f"{net}.{rng.randrange(1, 255)}"


def _private_ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(0, 4)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


# --- identities --------------------------------------------------------------------------------


def _role_identity(rng: random.Random, account_id: str, when: datetime) -> tuple[Json, str]:
    role, flavour = rng.choice(_ROLES)
    # Sessions come from small pools: real sessions make many calls with one key.
    if flavour == "sso":
        session = rng.choice(_SSO_EMAILS)
    elif flavour == "ci":
        session = f"gha-{7_400_000_000 + rng.randrange(40)}"
    elif flavour == "ec2":
        session = _instance_id(rng.randrange(30))
    elif flavour == "lambda":
        session = "orders-api"
    elif flavour == "irsa":
        session = f"{1_709_500_000_000_000_000 + rng.randrange(12)}"
    else:
        session = rng.choice(_USERS)
    role_id = _stable_id("AROA", account_id, role, length=21)
    context: Json = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": role_id,
            "arn": f"arn:aws:iam::{account_id}:role/"
            + ("aws-reserved/sso.amazonaws.com/" if flavour == "sso" else "")
            + role,
            "accountId": account_id,
            "userName": role,
        },
        "webIdFederationData": {},
        "attributes": {
            "creationDate": _ct_time(when.replace(minute=0, second=0, microsecond=0)),
            "mfaAuthenticated": "true" if flavour in ("human", "sso") else "false",
        },
    }
    if flavour == "irsa":
        context["webIdFederationData"] = {
            "federatedProvider": f"arn:aws:iam::{account_id}:oidc-provider/oidc.eks."
            "us-east-1.amazonaws.com/id/5C2B8A7F1D3E4F60A9B8C7D6E5F4A3B2",
            "attributes": {},
        }
    if flavour == "ec2":
        context["ec2RoleDelivery"] = "2.0"
    identity: Json = {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{account_id}:assumed-role/{role}/{session}",
        "accountId": account_id,
        "accessKeyId": _stable_id("ASIA", account_id, role, session, length=20),
        "sessionContext": context,
    }
    return identity, flavour


def _user_identity(rng: random.Random, account_id: str, when: datetime) -> Json:
    user = rng.choice(_USERS)
    identity: Json = {
        "type": "IAMUser",
        "principalId": _stable_id("AIDA", account_id, user, length=21),
        "arn": f"arn:aws:iam::{account_id}:user/{user}",
        "accountId": account_id,
        "accessKeyId": _stable_id("AKIA", account_id, user, "key", length=20),
        "userName": user,
    }
    if rng.random() < 0.3:
        # A console session: temporary key, MFA as the user signed in.
        identity["accessKeyId"] = _stable_id("ASIA", account_id, user, "console", length=20)
        identity["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {
                "creationDate": _ct_time(when.replace(minute=0, second=0, microsecond=0)),
                "mfaAuthenticated": "true" if user in ("alice", "carol") else "false",
            },
        }
    return identity


# --- the event catalogue ---------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    source: str
    name: str
    read_only: bool
    request: Json | None
    response: Json | None = None
    resources: list[Json] | None = None
    category: str = "Management"
    event_type: str = "AwsApiCall"
    additional: Json | None = None


def _tags(rng: random.Random, n: int) -> list[Json]:
    keys = ("team", "env", "cost-center", "owner", "service", "data-classification")
    return [
        {"key": rng.choice(keys), "value": _uuid(rng)[: rng.randrange(4, 30)]} for _ in range(n)
    ]


def _describe_instances(rng: random.Random, account_id: str, region: str) -> _Call:
    filters = [
        {"name": "tag:env", "valueSet": {"items": [{"value": rng.choice(("prod", "staging"))}]}}
        for _ in range(rng.randrange(0, 3))
    ]
    return _Call(
        "ec2.amazonaws.com",
        "DescribeInstances",
        True,
        {"instancesSet": {}, "filterSet": {"items": filters} if filters else {}},
    )


def _instance(rng: random.Random, account_id: str, region: str) -> Json:
    iid = "i-" + "".join(rng.choice("0123456789abcdef") for _ in range(17))
    return {
        "instanceId": iid,
        "imageId": "ami-0" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
        "instanceState": {"code": 0, "name": "pending"},
        "privateDnsName": f"ip-{_private_ip(rng).replace('.', '-')}.ec2.internal",
        "amiLaunchIndex": 0,
        "productCodes": {},
        "instanceType": rng.choice(("m6i.large", "c7g.xlarge", "t3.medium")),
        "launchTime": rng.randrange(1_700_000_000_000, 1_710_000_000_000),
        "placement": {"availabilityZone": f"{region}{rng.choice('abc')}", "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": "subnet-0" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
        "vpcId": "vpc-0" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
        "privateIpAddress": _private_ip(rng),
        "groupSet": {"items": [{"groupId": "sg-0123456789abcdef0", "groupName": "nodes"}]},
        "tagSet": {"items": _tags(rng, rng.randrange(2, 8))},
        "networkInterfaceSet": {
            "items": [
                {
                    "networkInterfaceId": "eni-0" + _uuid(rng).replace("-", "")[:16],
                    "macAddress": "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5)),
                    "privateIpAddressesSet": {"item": [{"privateIpAddress": _private_ip(rng)}]},
                }
            ]
        },
    }


def _run_instances(rng: random.Random, account_id: str, region: str, count: int) -> _Call:
    items = [_instance(rng, account_id, region) for _ in range(count)]
    return _Call(
        "ec2.amazonaws.com",
        "RunInstances",
        False,
        {
            "instancesSet": {"items": [{"imageId": items[0]["imageId"], "minCount": count}]},
            "instanceType": items[0]["instanceType"],
            "blockDeviceMapping": {},
            "monitoring": {"enabled": False},
            "disableApiTermination": False,
        },
        {
            "requestId": _uuid(rng),
            "reservationId": "r-0" + _uuid(rng).replace("-", "")[:16],
            "ownerId": account_id,
            "groupSet": {},
            "instancesSet": {"items": items},
        },
    )


def _s3_object(rng: random.Random, account_id: str, region: str) -> _Call:
    bucket = rng.choice(_BUCKETS)
    key = "/".join(_uuid(rng)[:8] for _ in range(rng.randrange(1, 4))) + ".parquet"
    name = rng.choice(("GetObject", "GetObject", "PutObject", "HeadObject", "DeleteObject"))
    return _Call(
        "s3.amazonaws.com",
        name,
        name in ("GetObject", "HeadObject"),
        {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key},
        None,
        [
            {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
            {"accountId": account_id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
        ],
        category="Data",
        additional={
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": _uuid(rng).replace("-", "") * 2,
            "bytesTransferredOut": rng.randrange(0, 10**7),
        },
    )


def _iam_call(rng: random.Random, account_id: str, region: str) -> _Call:
    user = rng.choice(_USERS)
    choice = rng.randrange(6)
    if choice == 0:
        return _Call("iam.amazonaws.com", "ListRoles", True, {"maxItems": 100})
    if choice == 1:
        return _Call("iam.amazonaws.com", "GetUser", True, {"userName": user})
    if choice == 2:
        doc = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [f"s3:{a}" for a in ("GetObject", "PutObject", "ListBucket")],
                    "Resource": f"arn:aws:s3:::{rng.choice(_BUCKETS)}/*",
                }
            ],
        }
        return _Call(
            "iam.amazonaws.com",
            "PutUserPolicy",
            False,
            {
                "userName": user,
                "policyName": "inline-s3",
                "policyDocument": orjson.dumps(doc).decode(),
            },
        )
    if choice == 3:
        return _Call(
            "iam.amazonaws.com",
            "CreateAccessKey",
            False,
            {"userName": user},
            {
                "accessKey": {
                    "userName": user,
                    "accessKeyId": _random_key(rng, "AKIA"),
                    "status": "Active",
                    "createDate": "Mar 4, 2024 5:00:00 AM",
                }
            },
        )
    if choice == 4:
        return _Call(
            "iam.amazonaws.com",
            "AttachRolePolicy",
            False,
            {"roleName": "ci-deployer", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        )
    return _Call(
        "iam.amazonaws.com", "GetAccountAuthorizationDetails", True, {"filter": ["Role", "User"]}
    )


def _sts_assume_role(rng: random.Random, account_id: str, region: str) -> _Call:
    role, _ = rng.choice(_ROLES)
    session = f"session-{rng.randrange(10**6)}"
    return _Call(
        "sts.amazonaws.com",
        "AssumeRole",
        False,
        {
            "roleArn": f"arn:aws:iam::{account_id}:role/{role}",
            "roleSessionName": session,
            "durationSeconds": 3600,
        },
        {
            "credentials": {
                "accessKeyId": _random_key(rng),
                "sessionToken": "IQoJb3JpZ2luX2VjE" + _uuid(rng).replace("-", "") * 4,
                "expiration": "Mar 4, 2024, 6:00:00 AM",
            },
            "assumedRoleUser": {
                "assumedRoleId": f"{_stable_id('AROA', account_id, role, length=21)}:{session}",
                "arn": f"arn:aws:sts::{account_id}:assumed-role/{role}/{session}",
            },
        },
        [
            {
                "accountId": account_id,
                "type": "AWS::IAM::Role",
                "ARN": f"arn:aws:iam::{account_id}:role/{role}",
            }
        ],
    )


def _kms_call(rng: random.Random, account_id: str, region: str) -> _Call:
    key_arn = f"arn:aws:kms:{region}:{account_id}:key/{_uuid(rng)}"
    return _Call(
        "kms.amazonaws.com",
        rng.choice(("Decrypt", "GenerateDataKey", "Encrypt")),
        True,
        {
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{rng.choice(_BUCKETS)}"},
            "keyId": key_arn,
        },
        None,
        [{"accountId": account_id, "type": "AWS::KMS::Key", "ARN": key_arn}],
    )


def _misc_read(rng: random.Random, account_id: str, region: str) -> _Call:
    source, name, params = rng.choice(
        (
            ("eks.amazonaws.com", "DescribeCluster", {"name": DEFAULT_CLUSTER}),
            ("eks.amazonaws.com", "ListClusters", {"maxResults": 100}),
            ("lambda.amazonaws.com", "ListFunctions20150331", {"maxItems": 50}),
            ("cloudtrail.amazonaws.com", "LookupEvents", {"maxResults": 50}),
            ("dynamodb.amazonaws.com", "DescribeTable", {"tableName": "orders"}),
            ("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "prod/db/password"}),
            ("logs.amazonaws.com", "DescribeLogGroups", {"limit": 50}),
            (
                "ssm.amazonaws.com",
                "GetParameters",
                {"names": ["/app/flag"], "withDecryption": True},
            ),
        )
    )
    return _Call(source, name, True, params)


def _misc_write(rng: random.Random, account_id: str, region: str) -> _Call:
    choice = rng.randrange(4)
    if choice == 0:
        group = f"/aws/lambda/{rng.choice(('orders', 'billing', 'auth'))}"
        return _Call(
            "logs.amazonaws.com",
            "CreateLogStream",
            False,
            {"logGroupName": group, "logStreamName": f"2024/03/04/[$LATEST]{_uuid(rng)}"},
        )
    if choice == 1:
        return _Call(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            False,
            {
                "groupId": "sg-0123456789abcdef0",
                "ipPermissions": {
                    "items": [
                        {
                            "ipProtocol": "tcp",
                            "fromPort": rng.choice((22, 443, 5432)),
                            "toPort": 443,
                            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                        }
                    ]
                },
            },
            {"requestId": _uuid(rng), "_return": True},
        )
    if choice == 2:
        return _Call(
            "dynamodb.amazonaws.com",
            "UpdateTable",
            False,
            {"tableName": "orders", "billingMode": "PAY_PER_REQUEST"},
            {
                "tableDescription": {
                    "tableName": "orders",
                    "tableStatus": "UPDATING",
                    "tags": _tags(rng, 4),
                }
            },
        )
    return _Call(
        "cloudtrail.amazonaws.com",
        "StopLogging",
        False,
        {"name": f"arn:aws:cloudtrail:{DEFAULT_REGION}:{account_id}:trail/org-trail"},
    )


_CATALOGUE: tuple[tuple[Callable[[random.Random, str, str], _Call], int], ...] = (
    (_describe_instances, 12),
    (_s3_object, 30),
    (_iam_call, 10),
    (_sts_assume_role, 8),
    (_kms_call, 12),
    (_misc_read, 20),
    (_misc_write, 8),
)
_CATALOGUE_FUNCS = tuple(f for f, _ in _CATALOGUE)
_CATALOGUE_WEIGHTS = tuple(w for _, w in _CATALOGUE)


def _special_identity(
    rng: random.Random, kind: str, account_id: str, region: str
) -> tuple[Json, _Call]:
    if kind == "Root":
        identity: Json = {
            "type": "Root",
            "principalId": account_id,
            "arn": f"arn:aws:iam::{account_id}:root",
            "accountId": account_id,
            "accessKeyId": "",
        }
        call = _Call(
            "signin.amazonaws.com",
            "ConsoleLogin",
            False,
            None,
            {"ConsoleLogin": "Success"},
            event_type="AwsConsoleSignIn",
            additional={
                "LoginTo": "https://console.aws.amazon.com/console/home",
                "MobileVersion": "No",
                "MFAUsed": rng.choice(("Yes", "No")),
            },
        )
        return identity, call
    if kind == "AWSService":
        service = rng.choice(_SERVICES)
        return {"type": "AWSService", "invokedBy": service}, _kms_call(rng, account_id, region)
    if kind == "FederatedUser":
        name = rng.choice(_USERS)
        identity = {
            "type": "FederatedUser",
            "principalId": f"{account_id}:{name}",
            "arn": f"arn:aws:sts::{account_id}:federated-user/{name}",
            "accountId": account_id,
            "accessKeyId": _random_key(rng),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "IAMUser",
                    "principalId": _stable_id("AIDA", account_id, "broker", length=21),
                    "arn": f"arn:aws:iam::{account_id}:user/token-broker",
                    "accountId": account_id,
                    "userName": "token-broker",
                },
                "attributes": {"creationDate": "2024-03-04T04:00:00Z", "mfaAuthenticated": "false"},
            },
        }
        return identity, _s3_object(rng, account_id, region)
    if kind == "SAMLUser":
        email = rng.choice(_SSO_EMAILS)
        identity = {
            "type": "SAMLUser",
            "principalId": f"Ukh1i4ExamplexLjEvs=:{email}",
            "userName": email,
            "identityProvider": "Ukh1i4ExamplexLjEvs=",
        }
        call = _sts_assume_role(rng, account_id, region)
        call.name = "AssumeRoleWithSAML"
        return identity, call
    if kind == "WebIdentityUser":
        subject = f"system:serviceaccount:kube-system:{rng.choice(('karpenter', 'ebs-csi'))}"
        issuer = "oidc.eks.us-east-1.amazonaws.com/id/5C2B8A7F1D3E4F60A9B8C7D6E5F4A3B2"
        identity = {
            "type": "WebIdentityUser",
            "principalId": f"{issuer}:sts.amazonaws.com:{subject}",
            "userName": subject,
            "identityProvider": issuer,
        }
        call = _sts_assume_role(rng, account_id, region)
        call.name = "AssumeRoleWithWebIdentity"
        return identity, call
    if kind == "IdentityCenterUser":
        identity = {
            "type": "IdentityCenterUser",
            "accountId": account_id,
            "onBehalfOf": {
                "userId": _uuid(rng),
                "identityStoreArn": (
                    f"arn:aws:identitystore::{account_id}:identitystore/d-9067642ac7"
                ),
            },
            "credentialId": _uuid(rng).replace("-", "") * 2,
        }
        call = _Call("sso.amazonaws.com", "ListAccounts", True, {"maxResults": 100})
        return identity, call
    other = "444455556666"
    identity = {
        "type": "AWSAccount",
        "principalId": f"{_stable_id('AROA', other, 'x', length=21)}:partner-sync",
        "accountId": other,
    }
    return identity, _s3_object(rng, account_id, region)


_SPECIAL_KINDS = (
    "Root",
    "AWSService",
    "FederatedUser",
    "SAMLUser",
    "WebIdentityUser",
    "IdentityCenterUser",
    "AWSAccount",
)


def cloudtrail_record(
    rng: random.Random,
    *,
    account_id: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    when: datetime = DEFAULT_START,
    large: bool = False,
    identity_type: str | None = None,
) -> Json:
    """One CloudTrail record as a dict, usually 1–2 KB; ``large`` makes one of 100–500 KB.

    ``identity_type`` forces a ``userIdentity.type`` (e.g. ``"Root"``); otherwise the mix
    is roughly that of a busy account: mostly assumed roles, then IAM users and services.
    """
    kind = identity_type
    if kind is None:
        roll = rng.random()
        kind = "AssumedRole" if roll < 0.62 or large else "IAMUser" if roll < 0.82 else None
        if kind is None:
            kind = rng.choices(_SPECIAL_KINDS, weights=(1, 10, 1, 1, 1, 1, 2))[0]
    source_ip = _public_ip(rng)
    if kind in ("AssumedRole", "IAMUser"):
        if kind == "AssumedRole":
            identity, flavour = _role_identity(rng, account_id, when)
            if flavour in ("ec2", "lambda", "irsa"):
                source_ip = _private_ip(rng)
        else:
            identity = _user_identity(rng, account_id, when)
        if large:
            call = _run_instances(rng, account_id, region, rng.randrange(90, 400))
        else:
            func = rng.choices(_CATALOGUE_FUNCS, weights=_CATALOGUE_WEIGHTS)[0]
            call = func(rng, account_id, region)
    else:
        identity, call = _special_identity(rng, kind, account_id, region)
        if kind == "AWSService":
            source_ip = identity["invokedBy"]
    service = call.source.split(".", 1)[0]
    agent = rng.choice(_USER_AGENTS).format(cmd=f"{service}.{call.name.lower()}")
    if kind == "AWSService":
        agent = identity["invokedBy"]
    record: Json = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": _ct_time(when),
        "eventSource": call.source,
        "eventName": call.name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": agent,
    }
    # A large record keeps its big response: failed calls have none.
    roll = 1.0 if large else rng.random()
    if roll < 0.05 and kind != "Root":
        record["errorCode"] = "AccessDenied"
        arn = identity.get("arn", "anonymous")
        record["errorMessage"] = (
            f"User: {arn} is not authorized to perform: {service}:{call.name} because no "
            "identity-based policy allows the action"
        )
        call.response = None
    elif roll < 0.06:
        record["errorCode"] = "ThrottlingException"
        record["errorMessage"] = "Rate exceeded"
        call.response = None
    record["requestParameters"] = call.request
    record["responseElements"] = call.response
    if call.additional is not None:
        record["additionalEventData"] = call.additional
    record["requestID"] = _uuid(rng)
    record["eventID"] = _uuid(rng)
    record["readOnly"] = call.read_only
    if call.resources:
        record["resources"] = call.resources
    record["eventType"] = call.event_type
    record["managementEvent"] = call.category == "Management"
    record["recipientAccountId"] = account_id
    if kind == "AWSAccount":
        record["sharedEventID"] = _uuid(rng)
    if rng.random() < 0.1:
        record["vpcEndpointId"] = "vpce-0" + _uuid(rng).replace("-", "")[:16]
    record["eventCategory"] = call.category
    if call.event_type == "AwsApiCall" and kind != "AWSService":
        tls = dict(rng.choice(_TLS))
        tls["clientProvidedHostHeader"] = f"{service}.{region}.amazonaws.com"
        record["tlsDetails"] = tls
    if agent == "console.amazonaws.com":
        record["sessionCredentialFromConsole"] = "true"
    return record


# --- Kubernetes audit events --------------------------------------------------------------------

_K8S_RESOURCES = (
    # (resource, api group, namespaced, subresource)
    ("pods", "", True, ""),
    ("pods", "", True, "log"),
    ("pods", "", True, "exec"),
    ("configmaps", "", True, ""),
    ("secrets", "", True, ""),
    ("leases", "coordination.k8s.io", True, ""),
    ("deployments", "apps", True, ""),
    ("nodes", "", False, ""),
    ("events", "", True, ""),
    ("serviceaccounts", "", True, "token"),
    ("clusterrolebindings", "rbac.authorization.k8s.io", False, ""),
)
_K8S_RESOURCE_WEIGHTS = (30, 3, 1, 12, 6, 20, 8, 8, 6, 4, 1)
_NAMESPACES = ("default", "kube-system", "orders", "payments", "monitoring", "karpenter")
_K8S_AGENTS = (
    "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
    "kube-controller-manager/v1.29.1 (linux/amd64) kubernetes/bc401b9/leader-election",
    "kubelet/v1.29.0 (linux/amd64) kubernetes/3f7a50f",
    "karpenter/v0.35.0",
    "Go-http-client/2.0",
    "argocd-application-controller/v2.10.1 (linux/amd64)",
)


def _pod_suffix(namespace: str, service_account: str) -> str:
    return hashlib.blake2b(f"{namespace}/{service_account}".encode(), digest_size=3).hexdigest()


def _k8s_user(rng: random.Random, account_id: str) -> Json:
    roll = rng.random()
    if roll < 0.35:
        ns, sa = rng.choice(
            (
                ("kube-system", "coredns"),
                ("kube-system", "aws-node"),
                ("karpenter", "karpenter"),
                ("argocd", "argocd-application-controller"),
                ("orders", "default"),
            )
        )
        pod = _pod_suffix(ns, sa)
        return {
            "username": f"system:serviceaccount:{ns}:{sa}",
            "uid": f"{pod}-service-account-uid",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ],
            "extra": {
                "authentication.kubernetes.io/credential-id": [f"JTI={pod}-token"],
                "authentication.kubernetes.io/pod-name": [f"{sa}-7d9f8b6c5-{pod[:5]}"],
                "authentication.kubernetes.io/pod-uid": [f"{pod}-pod-uid"],
            },
        }
    if roll < 0.6:
        number = rng.randrange(30)
        node = f"ip-10-0-{number}-{number * 7 % 250 + 1}.ec2.internal"
        session = _instance_id(number)
        return _iam_mapped(
            account_id,
            f"system:node:{node}",
            "eks-node-role",
            session,
            ["system:nodes", "system:authenticated"],
        )
    if roll < 0.75:
        return {
            "username": rng.choice(
                (
                    "system:kube-controller-manager",
                    "system:kube-scheduler",
                    "eks:addon-manager",
                    "eks:certificate-controller",
                )
            ),
            "groups": ["system:authenticated"],
        }
    if roll < 0.88:
        session = rng.choice(_SSO_EMAILS)
        return _iam_mapped(
            account_id,
            "kubernetes-admin",
            "Admin",
            session,
            ["system:masters", "system:authenticated"],
        )
    if roll < 0.985:
        session = f"gha-{7_400_000_000 + rng.randrange(40)}"
        username = f"arn:aws:sts::{account_id}:assumed-role/ci-deployer/{session}"
        return _iam_mapped(account_id, username, "ci-deployer", session, ["system:authenticated"])
    return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


def _iam_mapped(account_id: str, username: str, role: str, session: str, groups: list[str]) -> Json:
    role_id = _stable_id("AROA", account_id, role, length=21)
    return {
        "username": username,
        "uid": f"aws-iam-authenticator:{account_id}:{role_id}",
        "groups": groups,
        "extra": {
            "accessKeyId": [_stable_id("ASIA", account_id, role, session, length=20)],
            "arn": [f"arn:aws:sts::{account_id}:assumed-role/{role}/{session}"],
            "canonicalArn": [f"arn:aws:iam::{account_id}:role/{role}"],
            "principalId": [role_id],
            "sessionName": [session],
        },
    }


def k8s_audit_event(
    rng: random.Random,
    *,
    when: datetime = DEFAULT_START,
    account_id: str = DEFAULT_ACCOUNT,
) -> Json:
    """One ``audit.k8s.io/v1`` Event as EKS writes it, about 1–1.5 KB."""
    resource, group, namespaced, sub = rng.choices(_K8S_RESOURCES, weights=_K8S_RESOURCE_WEIGHTS)[0]
    if sub in ("exec", "token"):
        verb = "create"
    else:
        verb = rng.choices(
            ("get", "list", "watch", "update", "patch", "create", "delete"),
            weights=(40, 15, 10, 15, 8, 8, 4),
        )[0]
    namespace = rng.choice(_NAMESPACES) if namespaced else ""
    name = "" if verb in ("list", "watch") else f"{resource[:-1]}-{_uuid(rng)[:8]}"
    version = "v1"
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    uri = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
    if name:
        uri += f"/{name}"
    if sub:
        uri += f"/{sub}"
    if verb == "watch":
        uri += "?allowWatchBookmarks=true&resourceVersion=123456&watch=true"
    user = _k8s_user(rng, account_id)
    denied = user["username"] == "system:anonymous" or rng.random() < 0.03
    code = 403 if denied else 201 if verb == "create" else 200
    object_ref: Json = {"resource": resource, "apiVersion": version}
    if namespace:
        object_ref["namespace"] = namespace
    if name:
        object_ref["name"] = name
    if group:
        object_ref["apiGroup"] = group
    if sub:
        object_ref["subresource"] = sub
    status: Json = {"metadata": {}, "code": code}
    if denied:
        status.update(
            status="Failure",
            reason="Forbidden",
            message=f'{resource} is forbidden: User "{user["username"]}" cannot {verb}',
        )
    stage_time = when + timedelta(microseconds=rng.randrange(500, 90_000))
    event: Json = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": _uuid(rng),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": [_private_ip(rng)],
        "userAgent": rng.choice(_K8S_AGENTS),
        "objectRef": object_ref,
        "responseStatus": status,
        "requestReceivedTimestamp": _k8s_time(when),
        "stageTimestamp": _k8s_time(stage_time),
        "annotations": {
            "authorization.k8s.io/decision": "forbid" if denied else "allow",
            "authorization.k8s.io/reason": ""
            if denied
            else f'RBAC: allowed by ClusterRoleBinding "system:{resource}" of ClusterRole '
            f'"system:{resource}" to Group "system:authenticated"',
        },
    }
    if verb in ("create", "patch") and not denied and rng.random() < 0.3:
        event["level"] = "RequestResponse"
        event["requestObject"] = {
            "kind": "Status" if sub else resource[:-1].capitalize(),
            "apiVersion": version,
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "orders"}},
        }
        event["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
    if namespace == "kube-system" and resource == "pods" and not sub:
        event["annotations"]["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
    return event


# --- writers ------------------------------------------------------------------------------


class _Sink:
    """Counts and optionally gzips what is written; one gzip member per ``member()``."""

    def __init__(self, out: IO[bytes], *, compress: bool) -> None:
        self._out = out
        self._compress = compress
        self._obj: Any = None
        self.raw = 0
        self.written = 0
        self.members = 0

    def write(self, data: bytes) -> None:
        self.raw += len(data)
        if not self._compress:
            self._emit(data)
            return
        if self._obj is None:
            self._obj = _zlib.compressobj(_COMPRESS_LEVEL, _zlib.DEFLATED, _GZIP_WBITS)
            self.members += 1
        self._emit(self._obj.compress(data))

    def end_member(self) -> None:
        if self._obj is not None:
            self._emit(self._obj.flush())
            self._obj = None

    def _emit(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self.written += len(data)


def _open(destination: Destination) -> tuple[IO[bytes], bool]:
    if isinstance(destination, str | os.PathLike):
        return open(destination, "wb"), True  # closed by the writer's finally
    return destination, False


def _times(start: datetime, rng: random.Random) -> Iterator[datetime]:
    when = start
    while True:
        yield when
        when += timedelta(milliseconds=rng.randrange(0, 40))


def write_cloudtrail_object(
    destination: Destination,
    *,
    target_bytes: int,
    seed: int = 0,
    account_id: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    start: datetime = DEFAULT_START,
    compress: bool = True,
    pretty: bool = False,
    large_every: int = 4000,
) -> WriteSummary:
    """Write ``{"Records": [...]}`` of at least ``target_bytes`` uncompressed bytes.

    About one record in ``large_every`` is 100–500 KB (0 turns them off). ``pretty``
    indents the output the way ``jq`` would, to exercise tolerant parsing.
    """
    rng = random.Random(seed)  # noqa: S311  synthetic data, not security
    out, owned = _open(destination)
    sink = _Sink(out, compress=compress)
    option = orjson.OPT_INDENT_2 if pretty else 0
    records = 0
    largest = 0
    try:
        sink.write(b'{\n  "Records": [\n' if pretty else b'{"Records":[')
        for when in _times(start, rng):
            if sink.raw >= target_bytes:
                break
            large = large_every > 0 and rng.randrange(large_every) == 0
            record = cloudtrail_record(
                rng, account_id=account_id, region=region, when=when, large=large
            )
            data = orjson.dumps(record, option=option)
            largest = max(largest, len(data))
            if records:
                sink.write(b",\n" if pretty else b",")
            sink.write(data)
            records += 1
        sink.write(b"\n  ]\n}\n" if pretty else b"]}")
        sink.end_member()
    finally:
        if owned:
            out.close()
    return WriteSummary(records, sink.raw, sink.written, largest, sink.members)


_NON_AUDIT_STREAMS = (
    "authenticator",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "cloud-controller-manager",
)


def _stream_suffix(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


def _control_message() -> bytes:
    return orjson.dumps(
        {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": 1709528400000,
                    "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
                }
            ],
        }
    )


def write_eks_firehose_object(
    destination: Destination,
    *,
    target_bytes: int,
    seed: int = 0,
    cluster: str = DEFAULT_CLUSTER,
    account_id: str = DEFAULT_ACCOUNT,
    start: datetime = DEFAULT_START,
    compress: bool = True,
    control_message: bool = True,
    non_audit_every: int = 8,
    newline_between: bool = False,
    max_events_per_envelope: int = 60,
) -> WriteSummary:
    """Write a Firehose object as CloudWatch Logs subscriptions deliver EKS logs.

    Each envelope is its own gzip member (when ``compress``), a CONTROL_MESSAGE comes first
    (``control_message``), and about one envelope in ``non_audit_every`` carries another
    control-plane stream (authenticator, scheduler…) whose events are not audit Events.
    ``records`` in the summary counts audit Events only.
    """
    rng = random.Random(seed)  # noqa: S311  synthetic data, not security
    out, owned = _open(destination)
    sink = _Sink(out, compress=compress)
    group = f"/aws/eks/{cluster}/cluster"
    audit_stream = f"kube-apiserver-audit-{_stream_suffix(rng)}"
    times = _times(start, rng)
    separator = b"\n" if newline_between else b""
    records = 0
    largest = 0
    try:
        if control_message:
            sink.write(_control_message() + separator)
            sink.end_member()
        while sink.raw < target_bytes:
            count = rng.randrange(1, max_events_per_envelope + 1)
            events: list[Json] = []
            non_audit = non_audit_every > 0 and rng.randrange(non_audit_every) == 0
            stream = audit_stream
            if non_audit:
                stream = f"{rng.choice(_NON_AUDIT_STREAMS)}-{_stream_suffix(rng)}"
            for _ in range(count):
                when = next(times)
                if non_audit:
                    message = (
                        f'time="{_ct_time(when)}" level=info msg="access granted" '
                        f'arn="arn:aws:iam::{account_id}:role/eks-node-role" '
                        'client="127.0.0.1:45678"'
                    )
                else:
                    data = orjson.dumps(k8s_audit_event(rng, when=when, account_id=account_id))
                    largest = max(largest, len(data))
                    message = data.decode()
                    records += 1
                events.append(
                    {
                        "id": str(rng.randrange(10**55, 10**56)),
                        "timestamp": int(when.timestamp() * 1000),
                        "message": message,
                    }
                )
            envelope = {
                "messageType": "DATA_MESSAGE",
                "owner": account_id,
                "logGroup": group,
                "logStream": stream,
                "subscriptionFilters": ["eks-audit-to-firehose"],
                "logEvents": events,
            }
            sink.write(orjson.dumps(envelope) + separator)
            sink.end_member()
    finally:
        if owned:
            out.close()
    return WriteSummary(records, sink.raw, sink.written, largest, sink.members)


def write_eks_ndjson_object(
    destination: Destination,
    *,
    target_bytes: int,
    seed: int = 0,
    account_id: str = DEFAULT_ACCOUNT,
    start: datetime = DEFAULT_START,
    compress: bool = True,
) -> WriteSummary:
    """Write newline-delimited audit Events: Firehose with message extraction turned on."""
    rng = random.Random(seed)  # noqa: S311  synthetic data, not security
    out, owned = _open(destination)
    sink = _Sink(out, compress=compress)
    records = 0
    largest = 0
    try:
        for when in _times(start, rng):
            if sink.raw >= target_bytes:
                break
            data = orjson.dumps(k8s_audit_event(rng, when=when, account_id=account_id))
            largest = max(largest, len(data))
            sink.write(data + b"\n")
            records += 1
        sink.end_member()
    finally:
        if owned:
            out.close()
    return WriteSummary(records, sink.raw, sink.written, largest, sink.members)
