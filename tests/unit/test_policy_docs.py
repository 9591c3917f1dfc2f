"""The policy documents we hand to operators, checked statement by statement and against the
evaluator that ``harvester doctor`` uses on them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harvester.aws.policy_eval import (
    PolicyKind,
    PrincipalContext,
    Verdict,
    evaluate_bucket_policy,
    evaluate_identity_policy,
    harvest_requests,
    parse_policy,
)
from harvester.policy_docs import bucket_policy, harvester_role_policy, trust_policy

ROLE = "arn:aws:iam::111111111111:role/audit/harvester"
GOV_ROLE = "arn:aws-us-gov:iam::111111111111:role/harvester"
KEY = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET = "org-trail-logs"


def round_trip(doc: dict[str, object]) -> dict[str, Any]:
    """What AWS (and the operator's clipboard) sees: the JSON text, parsed back."""
    parsed: dict[str, Any] = json.loads(json.dumps(doc))
    return parsed


def by_sid(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = doc["Statement"]
    sids = [s["Sid"] for s in statements]
    assert len(set(sids)) == len(sids), "Sids must be unique"
    return {s["Sid"]: s for s in statements}


# --- bucket policy -----------------------------------------------------------------------------


def test_bucket_policy_statements() -> None:
    doc = round_trip(bucket_policy(bucket=BUCKET, role_arn=ROLE))
    assert doc["Version"] == "2012-10-17"
    assert by_sid(doc) == {
        "HarvesterListBucket": {
            "Sid": "HarvesterListBucket",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": "arn:aws:s3:::org-trail-logs",
        },
        "HarvesterReadObjects": {
            "Sid": "HarvesterReadObjects",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::org-trail-logs/*",
        },
    }


def test_bucket_policy_takes_the_partition_from_the_role() -> None:
    doc = round_trip(bucket_policy(bucket=BUCKET, role_arn=GOV_ROLE))
    resources = {s["Sid"]: s["Resource"] for s in doc["Statement"]}
    assert resources == {
        "HarvesterListBucket": "arn:aws-us-gov:s3:::org-trail-logs",
        "HarvesterReadObjects": "arn:aws-us-gov:s3:::org-trail-logs/*",
    }
    explicit = bucket_policy(bucket=BUCKET, role_arn=GOV_ROLE, partition="aws-us-gov")
    assert round_trip(explicit) == doc


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"role_arn": GOV_ROLE, "partition": "aws"},
            "cannot read a bucket",
            id="partition-mismatch",
        ),
        pytest.param({"role_arn": ROLE, "bucket": "Org_Logs"}, "bucket name", id="bad-bucket"),
        pytest.param({"role_arn": ROLE, "bucket": "a..b"}, "bucket name", id="double-dot"),
        pytest.param(
            {"role_arn": "arn:aws:sts::111111111111:assumed-role/harvester/s1"},
            "expected an IAM role ARN",
            id="session-arn",
        ),
        pytest.param(
            {"role_arn": "arn:aws:iam::111111111111:user/bob"},
            "expected an IAM role ARN",
            id="user",
        ),
        pytest.param({"role_arn": "harvester"}, "expected an IAM role ARN", id="not-an-arn"),
        pytest.param(
            {"role_arn": ROLE, "partition": "gov"}, "not an AWS partition", id="bad-partition"
        ),
    ],
)
def test_bucket_policy_rejects_bad_input(kwargs: dict[str, str], message: str) -> None:
    args = {"bucket": BUCKET} | kwargs
    with pytest.raises(ValueError, match=message):
        bucket_policy(**args)


@pytest.mark.parametrize(
    ("role_arn", "session"),
    [
        pytest.param(ROLE, "audit-harvester", id="commercial"),
        pytest.param(GOV_ROLE, "gov-harvester", id="govcloud"),
    ],
)
def test_bucket_policy_is_allowed_by_our_own_evaluator(role_arn: str, session: str) -> None:
    doc = json.dumps(bucket_policy(bucket=BUCKET, role_arn=role_arn))
    principal = PrincipalContext.from_arn(role_arn, session_name=session)
    partition = principal.partition
    results = [
        evaluate_bucket_policy(
            doc,
            principal=principal,
            action=request.action,
            resource=request.resource,
            bucket_owner_account="222222222222",
            request_context=request.context_mapping(),
        )
        for request in harvest_requests(bucket=BUCKET, prefix="AWSLogs/", partition=partition)
    ]
    assert [r.verdict for r in results] == [Verdict.ALLOWED, Verdict.ALLOWED]
    assert [[f.statement for f in r.allows] for r in results] == [
        ["HarvesterReadObjects"],
        ["HarvesterListBucket"],
    ]
    location = evaluate_bucket_policy(
        doc,
        principal=principal,
        action="s3:GetBucketLocation",
        resource=f"arn:{partition}:s3:::{BUCKET}",
        bucket_owner_account="222222222222",
    )
    assert location.verdict is Verdict.ALLOWED
    # The grant is read-only.
    put = evaluate_bucket_policy(
        doc,
        principal=principal,
        action="s3:PutObject",
        resource=f"arn:{partition}:s3:::{BUCKET}/AWSLogs/x",
        bucket_owner_account="222222222222",
    )
    assert put.verdict is Verdict.NOT_GRANTED


# --- trust policy ------------------------------------------------------------------------------


def test_trust_policy_without_external_id() -> None:
    doc = round_trip(trust_policy(primary_role_arn=ROLE))
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowHarvesterAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def test_trust_policy_with_external_id() -> None:
    doc = round_trip(trust_policy(primary_role_arn=ROLE, external_id="harvester-7f3a"))
    [statement] = doc["Statement"]
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "harvester-7f3a"}}
    assert (statement["Effect"], statement["Action"], statement["Principal"]) == (
        "Allow",
        "sts:AssumeRole",
        {"AWS": ROLE},
    )
    # Trust policies have no Resource, which the bucket-policy parser requires; with one added,
    # the parser confirms the Principal and Condition grammar is what IAM accepts.
    parsed = parse_policy(
        {**doc, "Statement": [{**statement, "Resource": "*"}]}, kind=PolicyKind.BUCKET
    )
    assert parsed.statements[0].conditions[0].key == "sts:ExternalId"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"primary_role_arn": "arn:aws:iam::111111111111:root"},
            "expected an IAM role",
            id="root",
        ),
        pytest.param(
            {"primary_role_arn": ROLE, "external_id": ""},
            "must not be empty",
            id="empty-external-id",
        ),
    ],
)
def test_trust_policy_rejects_bad_input(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trust_policy(**kwargs)


# --- harvester role policy ---------------------------------------------------------------------


def test_harvester_role_policy_statements() -> None:
    doc = round_trip(harvester_role_policy(bucket=BUCKET, kms_key_arn=KEY))
    assert doc["Version"] == "2012-10-17"
    statements = by_sid(doc)
    assert list(statements) == [
        "HarvestReadObjects",
        "HarvestListBucket",
        "DecryptLogObjects",
        "VerifyDigests",
        "DoctorReadOnly",
        "DoctorDescribeClusters",
    ]
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert all("Principal" not in s and "Condition" not in s for s in statements.values())
    assert statements["HarvestReadObjects"]["Action"] == "s3:GetObject"
    assert statements["HarvestReadObjects"]["Resource"] == "arn:aws:s3:::org-trail-logs/*"
    assert statements["HarvestListBucket"]["Action"] == ["s3:ListBucket", "s3:GetBucketLocation"]
    assert statements["HarvestListBucket"]["Resource"] == "arn:aws:s3:::org-trail-logs"
    assert statements["DecryptLogObjects"] == {
        "Sid": "DecryptLogObjects",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": KEY,
    }
    assert statements["VerifyDigests"]["Action"] == "cloudtrail:ListPublicKeys"
    assert statements["VerifyDigests"]["Resource"] == "*"
    assert statements["DoctorReadOnly"]["Action"] == [
        "s3:GetBucketPolicy",
        "s3:GetEncryptionConfiguration",
    ]
    assert statements["DoctorReadOnly"]["Resource"] == "arn:aws:s3:::org-trail-logs"
    assert statements["DoctorDescribeClusters"]["Action"] == "eks:DescribeCluster"
    assert statements["DoctorDescribeClusters"]["Resource"] == "arn:aws:eks:*:*:cluster/*"


def test_harvester_role_policy_without_key_and_doctor() -> None:
    doc = round_trip(harvester_role_policy(bucket=BUCKET, include_doctor=False))
    assert list(by_sid(doc)) == ["HarvestReadObjects", "HarvestListBucket", "VerifyDigests"]


def test_harvester_role_policy_in_govcloud() -> None:
    gov_key = "arn:aws-us-gov:kms:us-gov-west-1:222222222222:key/abcd"
    statements = by_sid(
        round_trip(
            harvester_role_policy(bucket=BUCKET, kms_key_arn=gov_key, partition="aws-us-gov")
        )
    )
    assert statements["HarvestReadObjects"]["Resource"] == "arn:aws-us-gov:s3:::org-trail-logs/*"
    assert statements["DoctorDescribeClusters"]["Resource"] == "arn:aws-us-gov:eks:*:*:cluster/*"
    assert statements["DecryptLogObjects"]["Resource"] == gov_key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"kms_key_arn": "arn:aws:kms:us-east-1:222222222222:alias/trail"}, "key ARN", id="alias"
        ),
        pytest.param({"kms_key_arn": "1234abcd"}, "key ARN", id="bare-key-id"),
        pytest.param(
            {"kms_key_arn": KEY, "partition": "aws-cn"},
            "not in partition aws-cn",
            id="key-partition",
        ),
        pytest.param({"bucket": "x"}, "bucket name", id="short-bucket"),
    ],
)
def test_harvester_role_policy_rejects_bad_input(kwargs: dict[str, str], message: str) -> None:
    args = {"bucket": BUCKET} | kwargs
    with pytest.raises(ValueError, match=message):
        harvester_role_policy(**args)  # type: ignore[arg-type]


def test_harvester_role_policy_is_allowed_by_our_own_evaluator() -> None:
    doc = harvester_role_policy(bucket=BUCKET, kms_key_arn=KEY)
    principal = PrincipalContext.from_arn(ROLE, session_name="audit-harvester")
    cases = {
        (
            "s3:GetObject",
            f"arn:aws:s3:::{BUCKET}/AWSLogs/o-abc/111111111111/CloudTrail/x.json.gz",
        ): (Verdict.ALLOWED),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"): Verdict.ALLOWED,
        ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"): Verdict.ALLOWED,
        ("s3:GetBucketPolicy", f"arn:aws:s3:::{BUCKET}"): Verdict.ALLOWED,
        ("kms:Decrypt", KEY): Verdict.ALLOWED,
        (
            "cloudtrail:ListPublicKeys",
            "arn:aws:cloudtrail:us-east-1:111111111111:trail/x",
        ): Verdict.ALLOWED,
        ("eks:DescribeCluster", "arn:aws:eks:eu-west-1:111111111111:cluster/prod"): Verdict.ALLOWED,
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/AWSLogs/x"): Verdict.NOT_GRANTED,
        ("s3:GetObject", "arn:aws:s3:::another-bucket/x"): Verdict.NOT_GRANTED,
        ("kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/other"): Verdict.NOT_GRANTED,
    }
    got = {
        (action, resource): evaluate_identity_policy(
            doc, principal=principal, action=action, resource=resource
        ).verdict
        for action, resource in cases
    }
    assert got == cases
