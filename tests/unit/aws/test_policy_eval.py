"""Table-driven tests for the static bucket / identity policy evaluator.

Each row is a policy seen in the wild (or in AWS's documentation) with what the harvester's
role gets for the two calls harvesting makes: GetObject on a CloudTrail object and ListBucket
on the bucket. The expected statement ids per category are asserted, not just the verdict, so
a row that reaches the right verdict for the wrong reason fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from harvester.aws.policy_eval import (
    AccessRequest,
    Effect,
    Evaluation,
    InvalidArnError,
    Outcome,
    PolicyKind,
    PolicyParseError,
    PrincipalContext,
    PrincipalKind,
    Verdict,
    evaluate_bucket_policy,
    evaluate_identity_policies,
    evaluate_identity_policy,
    harvest_requests,
    parse_policy,
)

ACCOUNT = "111111111111"
OWNER = "222222222222"
OTHER = "333333333333"
ORG = "o-abc123"
BUCKET = "org-trail-logs"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/audit/harvester"
SESSION_NAME = "audit-harvester"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/harvester/{SESSION_NAME}"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
KEY = (
    f"AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-east-1/2024/05/01/"
    f"{ACCOUNT}_CloudTrail_us-east-1_20240501T0000Z_abc123.json.gz"
)
OBJECT_ARN = f"{BUCKET_ARN}/{KEY}"
BOTH = [BUCKET_ARN, f"{BUCKET_ARN}/*"]

HARVESTER = PrincipalContext.from_arn(ROLE, session_name=SESSION_NAME, org_id=ORG)
NO_SESSION = PrincipalContext.from_arn(ROLE, org_id=ORG)
NO_ORG = PrincipalContext.from_arn(ROLE, session_name=SESSION_NAME)
OTHER_ORG = PrincipalContext.from_arn(ROLE, session_name=SESSION_NAME, org_id="o-zzz999")
GOV = PrincipalContext.from_arn(
    f"arn:aws-us-gov:iam::{ACCOUNT}:role/harvester", session_name=SESSION_NAME
)
GOV_BUCKET = "arn:aws-us-gov:s3:::gov-trail-logs"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_GET = {
    "Sid": "HarvesterReadObjects",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE},
    "Action": "s3:GetObject",
    "Resource": f"{BUCKET_ARN}/*",
}
ALLOW_LIST = {
    "Sid": "HarvesterListBucket",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE},
    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
    "Resource": BUCKET_ARN,
}
SETUP_GUIDE = policy(ALLOW_GET, ALLOW_LIST)
GET_ID, LIST_ID = "HarvesterReadObjects", "HarvesterListBucket"


def deny_all(sid: str, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": BOTH,
    } | extra


def not_principal_deny(*arns: str) -> dict[str, Any]:
    return {
        "Sid": "DenyAllButHarvester",
        "Effect": "Deny",
        "NotPrincipal": {"AWS": list(arns)},
        "Action": "s3:*",
        "Resource": BOTH,
    }


ORG_POLICY = policy(
    deny_all("DenyOutsideOrg", Condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}}),
    {
        "Sid": "AllowOrgRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": BOTH,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    },
)

PREFIX_ONLY = policy(
    {
        "Sid": "ReadOwnLogs",
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET_ARN}/AWSLogs/{OTHER}/*",
    }
)

LIST_PREFIX_POLICY = policy(
    ALLOW_GET,
    {
        "Sid": "ListOnlyAWSLogs",
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": "s3:ListBucket",
        "Resource": BUCKET_ARN,
        "Condition": {"StringLike": {"s3:prefix": ["AWSLogs/*"]}},
    },
    {
        "Sid": "DenyListOutsideAWSLogs",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:ListBucket",
        "Resource": BUCKET_ARN,
        "Condition": {"StringNotLike": {"s3:prefix": ["AWSLogs/*"]}},
    },
)

VPCE_POLICY = policy(
    ALLOW_GET,
    ALLOW_LIST,
    deny_all("DenyUnlessVpce", Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}}),
)

CLOUDTRAIL_DOCUMENTED = policy(
    {
        "Sid": "AWSCloudTrailAclCheck20150319",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:GetBucketAcl",
        "Resource": BUCKET_ARN,
        "Condition": {
            "StringEquals": {
                "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{OWNER}:trail/org-trail"
            }
        },
    },
    {
        "Sid": "AWSCloudTrailWrite20150319",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET_ARN}/AWSLogs/{OWNER}/*",
        "Condition": {
            "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{OWNER}:trail/org-trail",
            }
        },
    },
    {
        "Sid": "AWSCloudTrailOrganizationWrite20150319",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET_ARN}/AWSLogs/{ORG}/*",
        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
    },
)

TRAIL_PATTERN = f"arn:aws:cloudtrail:*:{OWNER}:trail/*"
CANONICAL_ID = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"

KMS_KEY_POLICY = {
    "Version": "2012-10-17",
    "Id": "Key policy created by CloudTrail",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Allow CloudTrail to encrypt logs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": TRAIL_PATTERN}
            },
        },
        {
            "Sid": "Enable CloudTrail log decrypt permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}},
        },
    ],
}


@dataclass(frozen=True)
class Expect:
    verdict: Verdict
    denies: tuple[str, ...] = ()
    may_deny: tuple[str, ...] = ()
    allows: tuple[str, ...] = ()
    may_allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    policy: Any
    get: Expect
    list: Expect
    principal: PrincipalContext = HARVESTER
    owner: str = OWNER
    get_resource: str = OBJECT_ARN
    list_resource: str = BUCKET_ARN
    context: dict[str, str | None] = field(default_factory=dict)


ALLOWED_BOTH = (
    Expect(Verdict.ALLOWED, allows=(GET_ID,)),
    Expect(Verdict.ALLOWED, allows=(LIST_ID,)),
)
NOTHING = Expect(Verdict.NOT_GRANTED)

ROWS: dict[str, Row] = {
    "cloudtrail-documented-bucket-policy": Row(CLOUDTRAIL_DOCUMENTED, NOTHING, NOTHING),
    "setup-guide-allow": Row(SETUP_GUIDE, *ALLOWED_BOTH),
    "deny-unless-vpc-endpoint": Row(
        VPCE_POLICY,
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyUnlessVpce",), allows=(GET_ID,)),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyUnlessVpce",), allows=(LIST_ID,)),
    ),
    "deny-unless-vpc-endpoint-known-endpoint": Row(
        VPCE_POLICY, *ALLOWED_BOTH, context={"aws:SourceVpce": "vpce-0a1b2c3d"}
    ),
    "deny-unless-vpc-endpoint-wrong-endpoint": Row(
        VPCE_POLICY,
        Expect(Verdict.DENIED, denies=("DenyUnlessVpce",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyUnlessVpce",), allows=(LIST_ID,)),
        context={"aws:SourceVpce": "vpce-ffffffff"},
    ),
    "deny-unless-tls": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all("DenyInsecureTransport", Condition={"Bool": {"aws:SecureTransport": "false"}}),
        ),
        *ALLOWED_BOTH,
    ),
    "deny-notprincipal-role-arn-only": Row(
        policy(ALLOW_GET, ALLOW_LIST, not_principal_deny(ROLE)),
        Expect(Verdict.DENIED, denies=("DenyAllButHarvester",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyAllButHarvester",), allows=(LIST_ID,)),
    ),
    "deny-notprincipal-session-and-account": Row(
        policy(ALLOW_GET, ALLOW_LIST, not_principal_deny(SESSION, ROOT)), *ALLOWED_BOTH
    ),
    "deny-notprincipal-session-role-and-account": Row(
        policy(ALLOW_GET, ALLOW_LIST, not_principal_deny(SESSION, ROLE, ROOT)), *ALLOWED_BOTH
    ),
    "deny-notprincipal-account-only": Row(
        policy(ALLOW_GET, ALLOW_LIST, not_principal_deny(ROOT)),
        Expect(Verdict.DENIED, denies=("DenyAllButHarvester",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyAllButHarvester",), allows=(LIST_ID,)),
    ),
    "deny-notprincipal-session-name-unknown": Row(
        policy(ALLOW_GET, ALLOW_LIST, not_principal_deny(SESSION, ROLE, ROOT)),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyAllButHarvester",), allows=(GET_ID,)),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyAllButHarvester",), allows=(LIST_ID,)),
        principal=NO_SESSION,
    ),
    "deny-notaction": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            {
                "Sid": "DenyAllButRead",
                "Effect": "Deny",
                "Principal": "*",
                "NotAction": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": BOTH,
            },
        ),
        Expect(Verdict.ALLOWED, allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyAllButRead",), allows=(LIST_ID,)),
    ),
    "wildcard-resource-bucket-star": Row(
        policy(
            {
                "Sid": "ReadLogBuckets",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": ["s3:Get*", "s3:List*"],
                "Resource": f"{BUCKET_ARN}*",
            }
        ),
        Expect(Verdict.ALLOWED, allows=("ReadLogBuckets",)),
        Expect(Verdict.ALLOWED, allows=("ReadLogBuckets",)),
    ),
    "wildcard-resource-any-bucket-awslogs": Row(
        policy(
            {
                "Sid": "ReadAWSLogs",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::*/AWSLogs/*",
            }
        ),
        Expect(Verdict.ALLOWED, allows=("ReadAWSLogs",)),
        NOTHING,
    ),
    "notresource-deny-outside-awslogs": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            {
                "Sid": "DenyOutsideAWSLogs",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "NotResource": [BUCKET_ARN, f"{BUCKET_ARN}/AWSLogs/*"],
            },
        ),
        *ALLOWED_BOTH,
    ),
    "notresource-deny-key-under-other-prefix": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            {
                "Sid": "DenyOutsideAWSLogs",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "NotResource": [BUCKET_ARN, f"{BUCKET_ARN}/AWSLogs/*"],
            },
        ),
        Expect(Verdict.DENIED, denies=("DenyOutsideAWSLogs",), allows=(GET_ID,)),
        Expect(Verdict.ALLOWED, allows=(LIST_ID,)),
        get_resource=f"{BUCKET_ARN}/exports/2024/report.csv",
    ),
    "mixed-allow-and-deny": Row(
        policy(
            {
                "Sid": "AccountRead",
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT},
                "Action": "s3:*",
                "Resource": BOTH,
            },
            {
                "Sid": "NoListForHarvester",
                "Effect": "Deny",
                "Principal": {"AWS": ROLE},
                "Action": "s3:ListBucket",
                "Resource": BUCKET_ARN,
            },
            deny_all("NoDeletes", Action=["s3:DeleteObject", "s3:DeleteBucket"]),
        ),
        Expect(Verdict.ALLOWED, allows=("AccountRead",)),
        Expect(Verdict.DENIED, denies=("NoListForHarvester",), allows=("AccountRead",)),
    ),
    "org-condition-known-org": Row(
        ORG_POLICY,
        Expect(Verdict.ALLOWED, allows=("AllowOrgRead",)),
        Expect(Verdict.ALLOWED, allows=("AllowOrgRead",)),
    ),
    "org-condition-unknown-org": Row(
        ORG_POLICY,
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyOutsideOrg",), may_allow=("AllowOrgRead",)),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("DenyOutsideOrg",), may_allow=("AllowOrgRead",)),
        principal=NO_ORG,
    ),
    "org-condition-other-org": Row(
        ORG_POLICY,
        Expect(Verdict.DENIED, denies=("DenyOutsideOrg",)),
        Expect(Verdict.DENIED, denies=("DenyOutsideOrg",)),
        principal=OTHER_ORG,
    ),
    "principal-account-condition": Row(
        policy(
            {
                "Sid": "AllowHarvesterAccounts",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
                "Condition": {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT, OTHER]}},
            }
        ),
        Expect(Verdict.ALLOWED, allows=("AllowHarvesterAccounts",)),
        Expect(Verdict.ALLOWED, allows=("AllowHarvesterAccounts",)),
    ),
    "allow-other-accounts-root": Row(
        policy(
            {
                "Sid": "AllowAuditAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                "Action": "s3:*",
                "Resource": BOTH,
            }
        ),
        NOTHING,
        NOTHING,
    ),
    "allow-own-accounts-root": Row(
        policy(
            {
                "Sid": "AllowHarvesterAccount",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        Expect(Verdict.ALLOWED, allows=("AllowHarvesterAccount",)),
        Expect(Verdict.ALLOWED, allows=("AllowHarvesterAccount",)),
    ),
    "allow-star-with-ip-condition": Row(
        policy(
            {
                "Sid": "AllowFromOffice",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET_ARN}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}},
            }
        ),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("AllowFromOffice",)),
        NOTHING,
    ),
    "allow-star-with-ip-condition-known-ip": Row(
        policy(
            {
                "Sid": "AllowFromOffice",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET_ARN}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}},
            }
        ),
        Expect(Verdict.ALLOWED, allows=("AllowFromOffice",)),
        NOTHING,
        context={"aws:SourceIp": "203.0.113.77"},
    ),
    "deny-arnnotlike-exceptions-include-role": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenyExceptApproved",
                Condition={
                    "ArnNotLike": {
                        "aws:PrincipalArn": [
                            f"arn:aws:iam::{OWNER}:role/Admin",
                            f"arn:aws:iam::{ACCOUNT}:role/audit/*",
                        ]
                    }
                },
            ),
        ),
        *ALLOWED_BOTH,
    ),
    "deny-arnnotlike-exceptions-exclude-role": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenyExceptApproved",
                Condition={
                    "ArnNotLike": {
                        "aws:PrincipalArn": [
                            f"arn:aws:iam::{OWNER}:role/Admin",
                            f"arn:aws:iam::{ACCOUNT}:role/other-*",
                        ]
                    }
                },
            ),
        ),
        Expect(Verdict.DENIED, denies=("DenyExceptApproved",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyExceptApproved",), allows=(LIST_ID,)),
    ),
    "deny-principalarn-lists-session-not-role": Row(
        # aws:PrincipalArn of a session is the role ARN, so this exception never matches.
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenyExceptSession", Condition={"ArnNotEquals": {"aws:PrincipalArn": SESSION}}
            ),
        ),
        Expect(Verdict.DENIED, denies=("DenyExceptSession",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyExceptSession",), allows=(LIST_ID,)),
    ),
    "case-insensitive-actions": Row(
        policy(
            {
                "Sid": "MixedCase",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": ["S3:getobject", "s3:LISTBUCKET"],
                "Resource": BOTH,
            }
        ),
        Expect(Verdict.ALLOWED, allows=("MixedCase",)),
        Expect(Verdict.ALLOWED, allows=("MixedCase",)),
    ),
    "policy-as-json-string": Row(json.dumps(SETUP_GUIDE), *ALLOWED_BOTH),
    "statement-single-dict": Row(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Sid": "Only",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            },
        },
        Expect(Verdict.ALLOWED, allows=("Only",)),
        Expect(Verdict.ALLOWED, allows=("Only",)),
    ),
    "principal-list-of-arns": Row(
        policy(
            {
                "Sid": "Readers",
                "Effect": "Allow",
                "Principal": {
                    "AWS": [
                        f"arn:aws:iam::{ACCOUNT}:role/other",
                        f"arn:aws:iam::{OTHER}:role/harvester",
                        ROLE,
                    ]
                },
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        Expect(Verdict.ALLOWED, allows=("Readers",)),
        Expect(Verdict.ALLOWED, allows=("Readers",)),
    ),
    "principal-list-same-name-other-account": Row(
        policy(
            {
                "Sid": "Readers",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{OTHER}:role/audit/harvester"]},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        NOTHING,
        NOTHING,
    ),
    "deny-deleteobject-only": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all("DenyDeletes", Action="s3:DeleteObject", Resource=f"{BUCKET_ARN}/*"),
        ),
        *ALLOWED_BOTH,
    ),
    "prefix-restricted-allow-other-prefix": Row(PREFIX_ONLY, NOTHING, NOTHING),
    "prefix-restricted-allow-whole-prefix-request": Row(
        PREFIX_ONLY,
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("ReadOwnLogs",)),
        NOTHING,
        get_resource=f"{BUCKET_ARN}/AWSLogs/*",
    ),
    "prefix-restricted-allow-matching-key": Row(
        PREFIX_ONLY,
        Expect(Verdict.ALLOWED, allows=("ReadOwnLogs",)),
        NOTHING,
        get_resource=f"{BUCKET_ARN}/AWSLogs/{OTHER}/CloudTrail/us-east-1/2024/05/01/x.json.gz",
    ),
    "listbucket-prefix-condition-unknown-prefix": Row(
        LIST_PREFIX_POLICY,
        Expect(Verdict.ALLOWED, allows=(GET_ID,)),
        Expect(
            Verdict.MAY_BE_DENIED,
            may_deny=("DenyListOutsideAWSLogs",),
            may_allow=("ListOnlyAWSLogs",),
        ),
    ),
    "listbucket-prefix-condition-known-prefix": Row(
        LIST_PREFIX_POLICY,
        Expect(Verdict.ALLOWED, allows=(GET_ID,)),
        Expect(Verdict.ALLOWED, allows=("ListOnlyAWSLogs",)),
        context={"s3:prefix": f"AWSLogs/{ORG}/"},
    ),
    "kms-key-policy-shape": Row(KMS_KEY_POLICY, NOTHING, NOTHING),
    "govcloud-partition": Row(
        policy(
            {
                "Sid": "GovRead",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws-us-gov:iam::{ACCOUNT}:role/harvester"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [GOV_BUCKET, f"{GOV_BUCKET}/*"],
            },
            {
                "Sid": "GovDenyInsecure",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [GOV_BUCKET, f"{GOV_BUCKET}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            },
        ),
        Expect(Verdict.ALLOWED, allows=("GovRead",)),
        Expect(Verdict.ALLOWED, allows=("GovRead",)),
        principal=GOV,
        get_resource=f"{GOV_BUCKET}/{KEY}",
        list_resource=GOV_BUCKET,
    ),
    "govcloud-commercial-principal-arn": Row(
        policy(
            {
                "Sid": "WrongPartition",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/harvester"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [GOV_BUCKET, f"{GOV_BUCKET}/*"],
            }
        ),
        NOTHING,
        NOTHING,
        principal=GOV,
        get_resource=f"{GOV_BUCKET}/{KEY}",
        list_resource=GOV_BUCKET,
    ),
    "policy-variable-unknown-in-resource": Row(
        policy(
            {
                "Sid": "PerPrincipalPrefix",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET_ARN}/${{aws:userid}}/*",
            }
        ),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("PerPrincipalPrefix",)),
        NOTHING,
    ),
    "policy-variable-known-in-resource": Row(
        policy(
            {
                "Sid": "OwnAccountLogs",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET_ARN}/AWSLogs/{ORG}/${{aws:PrincipalAccount}}/*",
            }
        ),
        Expect(Verdict.ALLOWED, allows=("OwnAccountLogs",)),
        NOTHING,
    ),
    "policy-variable-literal-in-2008-version": Row(
        {
            "Version": "2008-10-17",
            "Statement": [
                {
                    "Sid": "OldVersion",
                    "Effect": "Allow",
                    "Principal": {"AWS": ROLE},
                    "Action": "s3:GetObject",
                    "Resource": f"{BUCKET_ARN}/AWSLogs/{ORG}/${{aws:PrincipalAccount}}/*",
                }
            ],
        },
        NOTHING,
        NOTHING,
    ),
    "same-account-no-grant": Row(
        policy(
            deny_all("DenyInsecureTransport", Condition={"Bool": {"aws:SecureTransport": "false"}})
        ),
        NOTHING,
        NOTHING,
        owner=ACCOUNT,
    ),
    "deny-service-principal-only": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            {
                "Sid": "DenyConfig",
                "Effect": "Deny",
                "Principal": {"Service": "config.amazonaws.com"},
                "Action": "s3:*",
                "Resource": BOTH,
            },
        ),
        *ALLOWED_BOTH,
    ),
    "canonical-user-allow": Row(
        policy(
            {
                "Sid": "LegacyCanonical",
                "Effect": "Allow",
                "Principal": {"CanonicalUser": CANONICAL_ID},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("LegacyCanonical",)),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("LegacyCanonical",)),
    ),
    "deleted-role-unique-id": Row(
        policy(
            {
                "Sid": "FormerHarvester",
                "Effect": "Allow",
                "Principal": {"AWS": "AROA3XFRBF535PLBIFPI4"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        NOTHING,
        NOTHING,
    ),
    "deny-unless-sigv4": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenySigV2",
                Condition={"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}},
            ),
        ),
        *ALLOWED_BOTH,
    ),
    "confused-deputy-deny-ifexists": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "ConfusedDeputy",
                Condition={
                    "StringNotEqualsIfExists": {"aws:SourceAccount": OWNER},
                    "Bool": {"aws:PrincipalIsAWSService": "true"},
                },
            ),
        ),
        *ALLOWED_BOTH,
    ),
    "deny-ifexists-absent-key-applies": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenyForeignSource",
                Condition={"StringNotEqualsIfExists": {"aws:SourceAccount": OWNER}},
            ),
        ),
        Expect(Verdict.DENIED, denies=("DenyForeignSource",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyForeignSource",), allows=(LIST_ID,)),
    ),
    "deny-negated-operator-absent-key-applies": Row(
        # Without IfExists a negated operator is true when the key is absent: this confused-deputy
        # guard, meant for services, denies every direct caller.
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "DenyOtherSources", Condition={"StringNotEquals": {"aws:SourceAccount": OWNER}}
            ),
        ),
        Expect(Verdict.DENIED, denies=("DenyOtherSources",), allows=(GET_ID,)),
        Expect(Verdict.DENIED, denies=("DenyOtherSources",), allows=(LIST_ID,)),
    ),
    "allow-other-role-same-account": Row(
        policy(
            {
                "Sid": "OtherReader",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/audit/reader"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
            }
        ),
        NOTHING,
        NOTHING,
    ),
    "deny-principal-tag": Row(
        policy(
            ALLOW_GET,
            ALLOW_LIST,
            deny_all(
                "RequireTeamTag",
                Condition={"StringNotEquals": {"aws:PrincipalTag/team": "security"}},
            ),
        ),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("RequireTeamTag",), allows=(GET_ID,)),
        Expect(Verdict.MAY_BE_DENIED, may_deny=("RequireTeamTag",), allows=(LIST_ID,)),
    ),
    "foranyvalue-org-paths": Row(
        policy(
            {
                "Sid": "AllowSecurityOU",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": BOTH,
                "Condition": {
                    "ForAnyValue:StringLike": {
                        "aws:PrincipalOrgPaths": [f"{ORG}/r-ab12/ou-ab12-sec/*"]
                    }
                },
            }
        ),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("AllowSecurityOU",)),
        Expect(Verdict.MAY_BE_ALLOWED, may_allow=("AllowSecurityOU",)),
    ),
    "statements-without-sid": Row(
        policy(
            {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:*", "Resource": BOTH},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket", "Resource": BUCKET_ARN},
        ),
        Expect(Verdict.ALLOWED, allows=("Statement[0]",)),
        Expect(Verdict.DENIED, denies=("Statement[1]",), allows=("Statement[0]",)),
    ),
}


def _ids(findings: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(f.statement for f in findings)


def _assert_expected(result: Evaluation, expected: Expect) -> None:
    assert (
        result.verdict,
        _ids(result.denies),
        _ids(result.conditional_denies),
        _ids(result.allows),
        _ids(result.conditional_allows),
    ) == (
        expected.verdict,
        expected.denies,
        expected.may_deny,
        expected.allows,
        expected.may_allow,
    ), result.explanation


@pytest.mark.parametrize("row", [pytest.param(r, id=name) for name, r in ROWS.items()])
def test_policy_table(row: Row) -> None:
    get = evaluate_bucket_policy(
        row.policy,
        principal=row.principal,
        action="s3:GetObject",
        resource=row.get_resource,
        bucket_owner_account=row.owner,
        request_context=row.context,
    )
    listing = evaluate_bucket_policy(
        row.policy,
        principal=row.principal,
        action="s3:ListBucket",
        resource=row.list_resource,
        bucket_owner_account=row.owner,
        request_context=row.context,
    )
    _assert_expected(get, row.get)
    _assert_expected(listing, row.list)
    statements = len(parse_policy(row.policy, kind=PolicyKind.BUCKET).statements)
    for result in (get, listing):
        every = (
            result.denies
            + result.conditional_denies
            + result.allows
            + result.conditional_allows
            + result.not_applying
        )
        assert sorted(f.index for f in every) == list(range(statements))
        # Every finding that is not "does not apply" carries its reasons, and a Deny or a "may"
        # finding always says what to do, in one sentence.
        for finding in result.denies + result.conditional_denies + result.conditional_allows:
            assert finding.reasons
            assert finding.remedy is not None
            assert finding.remedy.endswith(".")
            assert ". " not in finding.remedy
        for finding in result.conditional_denies + result.conditional_allows:
            assert finding.depends_on
        if result.verdict is not Verdict.ALLOWED:
            assert result.remedy is not None


def test_table_has_at_least_thirty_rows() -> None:
    assert len(ROWS) >= 30


# --- details the table does not show -------------------------------------------------------


def _get(doc: Any, **kwargs: Any) -> Evaluation:
    args: dict[str, Any] = {
        "principal": HARVESTER,
        "action": "s3:GetObject",
        "resource": OBJECT_ARN,
        "bucket_owner_account": OWNER,
    }
    return evaluate_bucket_policy(doc, **(args | kwargs))


def test_tls_deny_is_reported_as_not_applying_with_reason() -> None:
    result = _get(
        policy(
            ALLOW_GET,
            deny_all("DenyInsecure", Condition={"Bool": {"aws:SecureTransport": "false"}}),
        )
    )
    [finding] = [f for f in result.not_applying if f.statement == "DenyInsecure"]
    assert finding.outcome is Outcome.DOES_NOT_APPLY
    assert any("always uses TLS" in r for r in finding.reasons)


def test_vpce_deny_depends_on_source_vpce_and_names_the_endpoint() -> None:
    result = _get(VPCE_POLICY)
    [finding] = result.conditional_denies
    assert finding.depends_on == ("aws:SourceVpce",)
    assert finding.remedy is not None
    assert "vpce-0a1b2c3d" in finding.remedy
    assert ROLE in finding.remedy
    assert "aws:SourceVpce" in result.explanation


def test_notprincipal_role_only_explains_the_session_subtlety() -> None:
    result = _get(policy(ALLOW_GET, not_principal_deny(ROLE)))
    [finding] = result.denies
    assert any("role ARN alone does not exempt" in r for r in finding.reasons)
    assert finding.remedy is not None
    # The role is already listed; the remedy asks for what is missing.
    assert SESSION in finding.remedy
    assert ROOT in finding.remedy
    assert "NotPrincipal of statement 'DenyAllButHarvester'" in finding.remedy
    assert result.remedy == finding.remedy


def test_notprincipal_session_without_account_may_deny() -> None:
    result = _get(policy(ALLOW_GET, not_principal_deny(SESSION, ROLE)))
    assert result.verdict is Verdict.MAY_BE_DENIED
    [finding] = result.conditional_denies
    assert finding.remedy is not None
    assert ROOT in finding.remedy


def test_notprincipal_session_and_account_without_role_carries_a_caveat() -> None:
    result = _get(policy(ALLOW_GET, not_principal_deny(SESSION, ROOT)))
    [finding] = [f for f in result.not_applying if f.statement == "DenyAllButHarvester"]
    assert any("recommends listing the role ARN" in r for r in finding.reasons)


def test_arnnotlike_exception_remedy_names_the_role() -> None:
    result = _get(
        policy(
            deny_all(
                "DenyExceptApproved",
                Condition={"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/Admin"}},
            )
        )
    )
    assert result.remedy == (
        f"Add {ROLE} to the ArnNotLike aws:PrincipalArn exceptions of "
        "statement 'DenyExceptApproved'."
    )


def test_org_deny_with_other_org_remedy_mentions_both_orgs() -> None:
    result = _get(ORG_POLICY, principal=OTHER_ORG)
    assert result.remedy is not None
    assert "o-zzz999" in result.remedy
    assert "aws:PrincipalOrgID" in result.remedy


def test_notaction_deny_remedy_offers_adding_the_action() -> None:
    doc = policy(
        {
            "Sid": "DenyWrites",
            "Effect": "Deny",
            "Principal": "*",
            "NotAction": "s3:Get*",
            "Resource": BOTH,
        }
    )
    result = _get(doc, action="s3:ListBucket", resource=BUCKET_ARN)
    assert result.verdict is Verdict.DENIED
    assert result.remedy == "Add s3:ListBucket to the NotAction list of statement 'DenyWrites'."


def test_cross_account_not_granted_says_a_bucket_policy_allow_is_required() -> None:
    result = _get(CLOUDTRAIL_DOCUMENTED)
    assert result.cross_account
    assert "needs a bucket-policy Allow" in result.explanation
    assert result.remedy is not None
    assert ROLE in result.remedy
    assert "s3:GetObject" in result.remedy


def test_same_account_not_granted_points_at_the_identity_policy() -> None:
    result = _get(
        policy(deny_all("DenyDeletes", Action="s3:DeleteObject")), bucket_owner_account=ACCOUNT
    )
    assert result.verdict is Verdict.NOT_GRANTED
    assert not result.cross_account
    assert "No grant in this policy" in result.explanation
    assert "identity policy" in result.explanation


def test_cross_account_allow_reminds_that_identity_policy_must_allow_too() -> None:
    result = _get(SETUP_GUIDE)
    assert result.verdict is Verdict.ALLOWED
    assert "identity policy" in result.explanation
    assert result.remedy is None


def test_partial_prefix_allow_reports_the_object_key_as_the_unknown() -> None:
    result = _get(PREFIX_ONLY, resource=f"{BUCKET_ARN}/AWSLogs/*")
    [finding] = result.conditional_allows
    assert finding.depends_on == ("object key",)
    assert any("covers only some keys" in r for r in finding.reasons)


def test_policy_variable_is_named_in_the_reason() -> None:
    doc = policy(
        {
            "Sid": "PerUser",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET_ARN}/${{aws:userid}}/*",
        }
    )
    [finding] = _get(doc).conditional_allows
    assert "${aws:userid}" in finding.depends_on
    assert any("policy variable" in r for r in finding.reasons)


def test_principal_arn_from_session_arn_assumes_no_path_and_says_so() -> None:
    principal = PrincipalContext.from_arn(SESSION)
    doc = policy(
        ALLOW_GET,
        deny_all(
            "DenyExceptApproved",
            Condition={
                "ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/harvester"}
            },
        ),
    )
    result = _get(doc, principal=principal)
    assert result.verdict is Verdict.ALLOWED
    [finding] = [f for f in result.not_applying if f.statement == "DenyExceptApproved"]
    assert any("assuming the role has no path" in r for r in finding.reasons)
    # With the real role ARN (it has a path) the exception no longer matches.
    exact = PrincipalContext.from_arn(SESSION, role_arn=ROLE)
    assert _get(doc, principal=exact).verdict is Verdict.DENIED


def test_forallvalues_and_null_operators() -> None:
    doc = policy(
        {
            "Sid": "AllowWithoutTags",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET_ARN}/*",
            "Condition": {
                # An absent multi-valued key satisfies ForAllValues; SourceArn is absent for us.
                "ForAllValues:StringEquals": {"aws:SourceArn": ["arn:aws:cloudtrail:x"]},
                "Null": {"aws:SourceAccount": "true"},
            },
        }
    )
    assert _get(doc).verdict is Verdict.ALLOWED
    doc["Statement"][0]["Condition"]["Null"] = {"aws:SourceAccount": "false"}
    assert _get(doc).verdict is Verdict.NOT_GRANTED


def test_numeric_and_date_operators_use_the_request_context() -> None:
    doc = policy(
        {
            "Sid": "SmallPagesBeforeCutoff",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:ListBucket",
            "Resource": BUCKET_ARN,
            "Condition": {
                "NumericLessThanEquals": {"s3:max-keys": "1000"},
                "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
            },
        }
    )
    args = {"action": "s3:ListBucket", "resource": BUCKET_ARN}
    known = {"s3:max-keys": "1000", "aws:CurrentTime": "2026-01-15T12:00:00Z"}
    assert _get(doc, **args, request_context=known).verdict is Verdict.ALLOWED
    late = known | {"aws:CurrentTime": "2031-01-01T00:00:00Z"}
    assert _get(doc, **args, request_context=late).verdict is Verdict.NOT_GRANTED
    unknown = _get(doc, **args)
    assert unknown.verdict is Verdict.MAY_BE_ALLOWED
    assert set(unknown.conditional_allows[0].depends_on) == {"s3:max-keys", "aws:CurrentTime"}


def test_unknown_condition_operator_is_unknown_not_a_crash() -> None:
    doc = policy(
        deny_all("Future", Condition={"StringFancyMatch": {"aws:PrincipalAccount": ACCOUNT}})
    )
    result = _get(doc)
    assert result.verdict is Verdict.MAY_BE_DENIED


def test_parse_policy_returns_typed_statements() -> None:
    parsed = parse_policy(VPCE_POLICY, kind=PolicyKind.BUCKET)
    assert [s.label for s in parsed.statements] == [GET_ID, LIST_ID, "DenyUnlessVpce"]
    deny = parsed.statements[2]
    assert deny.effect is Effect.DENY
    assert deny.principals == (("AWS", ("*",)),)
    assert deny.conditions[0].operator == "StringNotEquals"
    assert deny.conditions[0].values == ("vpce-0a1b2c3d",)
    assert parsed.supports_variables


def test_evaluation_accepts_a_parsed_policy() -> None:
    parsed = parse_policy(SETUP_GUIDE, kind=PolicyKind.BUCKET)
    assert _get(parsed).verdict is Verdict.ALLOWED


# --- malformed input ---------------------------------------------------------------------------

MALFORMED: dict[str, tuple[Any, PolicyKind, str]] = {
    "missing-effect": (
        policy({"Sid": "NoEffect", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}),
        PolicyKind.BUCKET,
        "statement 'NoEffect': missing Effect",
    ),
    "lowercase-effect": (
        policy({"Effect": "allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}),
        PolicyKind.BUCKET,
        "case-sensitive",
    ),
    "action-is-a-number": (
        policy({"Effect": "Allow", "Principal": "*", "Action": 42, "Resource": "*"}),
        PolicyKind.BUCKET,
        "Action must be a string or a list of strings, got a number",
    ),
    "action-list-with-object": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", {"x": 1}],
                "Resource": "*",
            }
        ),
        PolicyKind.BUCKET,
        "item 1 is an object",
    ),
    "action-without-service": (
        policy({"Effect": "Allow", "Principal": "*", "Action": "GetObject", "Resource": "*"}),
        PolicyKind.BUCKET,
        "service:Action",
    ),
    "missing-resource": (
        policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}),
        PolicyKind.BUCKET,
        "needs Resource or NotResource",
    ),
    "missing-statement": ({"Version": "2012-10-17"}, PolicyKind.BUCKET, "no Statement"),
    "statement-is-a-string": (
        {"Version": "2012-10-17", "Statement": "allow all"},
        PolicyKind.BUCKET,
        "Statement must be an object or a list",
    ),
    "statement-item-is-a-string": (
        {"Version": "2012-10-17", "Statement": ["allow all"]},
        PolicyKind.BUCKET,
        "Statement[0]: must be an object",
    ),
    "not-json": ('{"Version": "2012-10-17", "Statement": [', PolicyKind.BUCKET, "not valid JSON"),
    "top-level-list": ([ALLOW_GET], PolicyKind.BUCKET, "must be a JSON object"),
    "bucket-policy-without-principal": (
        policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
        PolicyKind.BUCKET,
        "need Principal or NotPrincipal",
    ),
    "identity-policy-with-principal": (
        SETUP_GUIDE,
        PolicyKind.IDENTITY,
        "identity policies cannot have Principal",
    ),
    "principal-and-notprincipal": (
        policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "NotPrincipal": {"AWS": ROLE},
                "Action": "s3:*",
                "Resource": "*",
            }
        ),
        PolicyKind.BUCKET,
        "both Principal and NotPrincipal",
    ),
    "wildcard-in-principal-arn": (
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
                "Action": "s3:GetObject",
                "Resource": "*",
            }
        ),
        PolicyKind.BUCKET,
        "contains a wildcard",
    ),
    "principal-bare-string-arn": (
        policy({"Effect": "Allow", "Principal": ROLE, "Action": "s3:GetObject", "Resource": "*"}),
        PolicyKind.BUCKET,
        "Principal must be",
    ),
    "condition-value-object": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": {"a": 1}}},
            }
        ),
        PolicyKind.BUCKET,
        "values must be strings, numbers or booleans",
    ),
    "condition-block-not-object": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": ["aws:PrincipalAccount"]},
            }
        ),
        PolicyKind.BUCKET,
        "must map keys to values",
    ),
}


@pytest.mark.parametrize(
    ("document", "kind", "message"), [pytest.param(*v, id=k) for k, v in MALFORMED.items()]
)
def test_malformed_policies_raise_policy_parse_error(
    document: Any, kind: PolicyKind, message: str
) -> None:
    with pytest.raises(PolicyParseError) as excinfo:
        parse_policy(document, kind=kind)
    assert message in str(excinfo.value)


def test_parse_error_names_the_statement() -> None:
    doc = policy(ALLOW_GET, {"Sid": "Broken", "Effect": "Allow", "Principal": "*", "Resource": "*"})
    with pytest.raises(PolicyParseError, match="needs Action or NotAction") as excinfo:
        _get(doc)
    assert excinfo.value.statement == "statement 'Broken'"
    assert isinstance(excinfo.value, ValueError)


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="concrete"):
        _get(SETUP_GUIDE, action="s3:Get*")
    with pytest.raises(InvalidArnError, match="must be an ARN"):
        _get(SETUP_GUIDE, resource="org-trail-logs/key")
    with pytest.raises(ValueError, match="12-digit"):
        _get(SETUP_GUIDE, bucket_owner_account="owner")


# --- principal context -------------------------------------------------------------------------


def test_principal_from_role_arn() -> None:
    p = PrincipalContext.from_arn(ROLE, session_name=SESSION_NAME, org_id=ORG)
    assert (p.partition, p.account_id, p.kind, p.name) == (
        "aws",
        ACCOUNT,
        PrincipalKind.ASSUMED_ROLE,
        "harvester",
    )
    assert p.principal_arn == ROLE
    assert p.session_arn == SESSION
    assert p.caller_arn == SESSION
    assert p.account_root_arn == ROOT
    assert p.role_path_known


def test_principal_from_session_arn() -> None:
    p = PrincipalContext.from_arn(SESSION)
    assert p.session_name == SESSION_NAME
    assert p.principal_arn == f"arn:aws:iam::{ACCOUNT}:role/harvester"
    assert not p.role_path_known
    assert PrincipalContext.from_arn(SESSION, role_arn=ROLE).principal_arn == ROLE


def test_principal_without_session_name_has_a_placeholder_caller() -> None:
    p = PrincipalContext.from_arn(ROLE)
    assert p.session_arn is None
    assert p.caller_arn.endswith("assumed-role/harvester/<session name>")


def test_principal_from_user_arn() -> None:
    p = PrincipalContext.from_arn(f"arn:aws:iam::{ACCOUNT}:user/ops/harvest-bot")
    assert (p.kind, p.name, p.session_arn) == (PrincipalKind.USER, "harvest-bot", None)
    doc = policy(
        not_principal_deny(p.principal_arn, ROOT),
        {**ALLOW_GET, "Principal": {"AWS": p.principal_arn}},
    )
    assert _get(doc, principal=p).verdict is Verdict.ALLOWED


@pytest.mark.parametrize(
    ("arn", "kwargs", "message"),
    [
        pytest.param("harvester", {}, "not an ARN", id="not-an-arn"),
        pytest.param("arn:aws:iam::1234:role/x", {}, "12-digit", id="short-account"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:group/admins", {}, "not an IAM role", id="group"),
        pytest.param(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/harvester",
            {},
            "assumed-role/<role>",
            id="no-session",
        ),
        pytest.param(SESSION, {"session_name": "other"}, "contradicts", id="session-mismatch"),
        pytest.param(
            SESSION,
            {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/other"},
            "is not the role",
            id="role-mismatch",
        ),
    ],
)
def test_principal_rejects_bad_arns(arn: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArnError, match=message):
        PrincipalContext.from_arn(arn, **kwargs)


# --- identity policies -------------------------------------------------------------------------


def test_harvest_requests_shapes() -> None:
    get, listing = harvest_requests(bucket=BUCKET, prefix=f"AWSLogs/{ORG}/")
    assert get == AccessRequest(action="s3:GetObject", resource=f"{BUCKET_ARN}/AWSLogs/{ORG}/*")
    assert listing.action == "s3:ListBucket"
    assert listing.resource == BUCKET_ARN
    assert listing.context_mapping() == {"s3:prefix": f"AWSLogs/{ORG}/"}
    gov_get, gov_list = harvest_requests(bucket="b-1", key="k.json.gz", partition="aws-us-gov")
    assert gov_get.resource == "arn:aws-us-gov:s3:::b-1/k.json.gz"
    assert gov_list.context == ()


IDENTITY_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET_ARN}/AWSLogs/*",
        },
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN},
    ],
}


def test_identity_policy_allow_and_partial_prefix() -> None:
    get, _ = harvest_requests(bucket=BUCKET, prefix="AWSLogs/")
    result = evaluate_identity_policy(
        IDENTITY_READ, principal=HARVESTER, action=get.action, resource=get.resource
    )
    assert result.kind is PolicyKind.IDENTITY
    assert (result.verdict, _ids(result.allows)) == (Verdict.ALLOWED, ("Read",))
    whole = evaluate_identity_policy(
        IDENTITY_READ, principal=HARVESTER, action="s3:GetObject", resource=f"{BUCKET_ARN}/*"
    )
    assert (whole.verdict, _ids(whole.conditional_allows)) == (Verdict.MAY_BE_ALLOWED, ("Read",))
    none = evaluate_identity_policy(
        IDENTITY_READ,
        principal=HARVESTER,
        action="s3:GetObject",
        resource="arn:aws:s3:::elsewhere/x",
    )
    assert none.verdict is Verdict.NOT_GRANTED
    assert none.remedy == (
        "Allow s3:GetObject on arn:aws:s3:::elsewhere/x in the harvesting role's identity policy."
    )


def test_identity_policies_inline_and_attached_together() -> None:
    guardrail = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyListOutsideVpce",
                "Effect": "Deny",
                "Action": "s3:List*",
                "NotResource": "arn:aws:s3:::scratch-*",
                "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
            }
        ],
    }
    broad = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
        }
    )
    get, listing = evaluate_identity_policies(
        {
            "inline-read": IDENTITY_READ,
            "arn:aws:iam::aws:policy/Guardrail": guardrail,
            "PowerUser": broad,
        },
        principal=HARVESTER,
        requests=harvest_requests(bucket=BUCKET, prefix="AWSLogs/"),
    )
    assert get.verdict is Verdict.ALLOWED
    assert [(f.policy, f.statement) for f in get.allows] == [
        ("inline-read", "Read"),
        ("PowerUser", "Statement[0]"),
    ]
    assert listing.verdict is Verdict.MAY_BE_DENIED
    [deny] = listing.conditional_denies
    assert (deny.policy, deny.statement, deny.depends_on) == (
        "arn:aws:iam::aws:policy/Guardrail",
        "DenyListOutsideVpce",
        ("aws:SourceVpce",),
    )
    assert "arn:aws:iam::aws:policy/Guardrail" in listing.explanation


def test_identity_policies_parse_error_names_the_policy() -> None:
    with pytest.raises(PolicyParseError, match="policy 'broken'"):
        evaluate_identity_policies(
            {
                "ok": IDENTITY_READ,
                "broken": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]},
            },
            principal=HARVESTER,
            requests=harvest_requests(bucket=BUCKET),
        )


def test_deny_with_a_known_wrong_endpoint_names_the_required_endpoint() -> None:
    result = _get(VPCE_POLICY, request_context={"aws:SourceVpce": "vpce-ffffffff"})
    assert result.verdict is Verdict.DENIED
    assert result.remedy is not None
    assert result.remedy.startswith(
        "Send the harvester's S3 traffic through VPC endpoint vpce-0a1b2c3d"
    )


def test_deny_on_a_service_only_key_suggests_scoping_it_to_services() -> None:
    doc = policy(
        deny_all("DenyOtherSources", Condition={"StringNotEquals": {"aws:SourceAccount": OWNER}})
    )
    result = _get(doc)
    assert result.remedy is not None
    assert "aws:PrincipalIsAWSService" in result.remedy
    assert "aws:SourceAccount is absent" in result.remedy


def test_explanations_name_statements_without_sid_by_position() -> None:
    doc = policy(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:*", "Resource": BOTH},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET_ARN}/*",
        },
    )
    assert _get(doc).explanation.startswith("Statement[1] in the bucket policy explicitly denies ")


def test_may_deny_without_any_grant_says_so_for_cross_account() -> None:
    doc = policy(
        deny_all("DenyUnlessVpce", Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})
    )
    result = _get(doc)
    assert result.verdict is Verdict.MAY_BE_DENIED
    assert "nothing in it grants the access either" in result.explanation


def test_unknown_org_remedy_asks_for_the_organization_id() -> None:
    result = _get(ORG_POLICY, principal=NO_ORG)
    assert result.remedy is not None
    assert "organization o-abc123" in result.remedy
    assert "organization id" in result.remedy


@pytest.mark.parametrize(
    ("operator", "tag_keys", "verdict"),
    [
        pytest.param(
            "ForAllValues:StringEquals", ["team", "env"], Verdict.ALLOWED, id="all-inside"
        ),
        pytest.param(
            "ForAllValues:StringEquals", ["team", "cost"], Verdict.NOT_GRANTED, id="one-outside"
        ),
        pytest.param(
            "ForAnyValue:StringEquals", ["team", "cost"], Verdict.ALLOWED, id="any-inside"
        ),
        pytest.param("ForAnyValue:StringEquals", ["cost"], Verdict.NOT_GRANTED, id="none-inside"),
        pytest.param("ForAnyValue:StringEquals", None, Verdict.NOT_GRANTED, id="any-absent"),
        pytest.param("ForAllValues:StringEquals", None, Verdict.ALLOWED, id="all-absent"),
    ],
)
def test_set_operators_on_multivalued_keys(
    operator: str, tag_keys: list[str] | None, verdict: Verdict
) -> None:
    doc = policy(
        {
            "Sid": "TaggedOnly",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET_ARN}/*",
            "Condition": {operator: {"aws:TagKeys": ["team", "env"]}},
        }
    )
    assert _get(doc, request_context={"aws:TagKeys": tag_keys}).verdict is verdict
