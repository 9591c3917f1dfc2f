"""The IAM documents an operator pastes into AWS to let the harvester read a log bucket.

Pure functions returning plain dicts; the CLI prints them as JSON. They are the documents
``harvester doctor`` evaluates against (see :mod:`harvester.aws.policy_eval`), so a test checks
that what we hand out is what we expect to find.
"""

from __future__ import annotations

import re
from typing import Final

from harvester.aws.policy_eval import InvalidArnError, PrincipalContext, PrincipalKind

__all__ = ["bucket_policy", "harvester_role_policy", "trust_policy"]

VERSION: Final = "2012-10-17"

# S3's naming rules for general purpose buckets; dots are allowed but not next to each other.
_BUCKET_RE: Final = re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PARTITION_RE: Final = re.compile(r"^aws(-[a-z]+)*$")
_KMS_KEY_RE: Final = re.compile(
    r"^arn:(?P<partition>aws(-[a-z]+)*):kms:[a-z0-9-]+:[0-9]{12}:key/\S+$"
)


def bucket_policy(*, bucket: str, role_arn: str, partition: str | None = None) -> dict[str, object]:
    """Bucket policy statements granting the harvesting role read access to the log bucket.

    Needed when the bucket is in another account than the role: cross-account reads need an
    Allow on both sides. The principal is the role ARN, which covers every session of the role.
    """
    _check_bucket(bucket)
    role_partition = _role(role_arn).partition
    partition = partition or role_partition
    _check_partition(partition)
    if partition != role_partition:
        raise ValueError(
            f"role {role_arn} is in partition {role_partition}; it cannot read a bucket in "
            f"partition {partition}"
        )
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "HarvesterListBucket",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "HarvesterReadObjects",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/*",
            },
        ],
    }


def trust_policy(*, primary_role_arn: str, external_id: str | None = None) -> dict[str, object]:
    """Trust policy for a per-account role that the primary harvesting role assumes."""
    _role(primary_role_arn)
    statement: dict[str, object] = {
        "Sid": "AllowHarvesterAssumeRole",
        "Effect": "Allow",
        "Principal": {"AWS": primary_role_arn},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        if not external_id:
            raise ValueError("external_id must not be empty; pass None to omit it")
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": VERSION, "Statement": [statement]}


def harvester_role_policy(
    *,
    bucket: str,
    kms_key_arn: str | None = None,
    partition: str = "aws",
    include_doctor: bool = True,
) -> dict[str, object]:
    """Identity policy for the harvesting role.

    Statements with a ``Doctor`` Sid only serve ``harvester doctor`` and can be dropped
    (``include_doctor=False``) where read access to bucket policies is not wanted.
    """
    _check_bucket(bucket)
    _check_partition(partition)
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    statements: list[dict[str, object]] = [
        {
            "Sid": "HarvestReadObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/*",
        },
        {
            "Sid": "HarvestListBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
        },
    ]
    if kms_key_arn is not None:
        match = _KMS_KEY_RE.match(kms_key_arn)
        if match is None:
            # Decrypt is authorised against the key itself; an alias ARN in Resource never matches.
            raise ValueError(
                f"kms_key_arn must be a key ARN (arn:<partition>:kms:<region>:<account>:key/<id>), "
                f"got {kms_key_arn!r}"
            )
        if match["partition"] != partition:
            raise ValueError(f"KMS key {kms_key_arn} is not in partition {partition}")
        statements.append(
            {
                "Sid": "DecryptLogObjects",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
            }
        )
    # ListPublicKeys has no resource-level permissions, so "*" is the only valid Resource.
    statements.append(
        {
            "Sid": "VerifyDigests",
            "Effect": "Allow",
            "Action": "cloudtrail:ListPublicKeys",
            "Resource": "*",
        }
    )
    if include_doctor:
        statements.extend(
            [
                {
                    "Sid": "DoctorReadOnly",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketPolicy", "s3:GetEncryptionConfiguration"],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "DoctorDescribeClusters",
                    "Effect": "Allow",
                    "Action": "eks:DescribeCluster",
                    "Resource": f"arn:{partition}:eks:*:*:cluster/*",
                },
            ]
        )
    return {"Version": VERSION, "Statement": statements}


def _role(role_arn: str) -> PrincipalContext:
    try:
        principal = PrincipalContext.from_arn(role_arn)
    except InvalidArnError as exc:
        raise ValueError(f"expected an IAM role ARN: {exc}") from exc
    if principal.kind is not PrincipalKind.ASSUMED_ROLE or ":assumed-role/" in role_arn:
        # A session ARN expires with the session; policies must name the role.
        raise ValueError(
            "expected an IAM role ARN (arn:<partition>:iam::<account>:role/<name>), "
            f"got {role_arn!r}"
        )
    return principal


def _check_bucket(bucket: str) -> None:
    if not _BUCKET_RE.match(bucket):
        raise ValueError(f"not a valid S3 bucket name: {bucket!r}")


def _check_partition(partition: str) -> None:
    if not _PARTITION_RE.match(partition):
        raise ValueError(f"not an AWS partition: {partition!r} (e.g. aws, aws-cn, aws-us-gov)")
