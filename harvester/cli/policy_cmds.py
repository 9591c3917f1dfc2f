"""``harvester policy``: print the IAM policies the setup needs, as valid JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from harvester.cli.output import print_json
from harvester.inventory import validation as v
from harvester.policy_docs import bucket_policy, harvester_role_policy, trust_policy

policy_app = typer.Typer(
    help="Print the bucket, trust and identity policies that harvesting needs.",
    no_args_is_help=True,
)


@policy_app.command("bucket")
def policy_bucket(
    bucket: Annotated[str, typer.Option(help="The bucket that receives the logs.")],
    role_arn: Annotated[str, typer.Option(help="The harvesting role that reads it.")],
) -> None:
    """The S3 bucket policy granting the role s3:GetObject and s3:ListBucket."""
    v.bucket_name(bucket)
    v.role_arn(role_arn, expected_partition=v.arn_partition(role_arn))
    print_json(bucket_policy(bucket=bucket, role_arn=role_arn), sort_keys=False)


@policy_app.command("trust")
def policy_trust(
    primary_role_arn: Annotated[str, typer.Option(help="The primary harvesting role.")],
    external_id: Annotated[str | None, typer.Option(help="Required as sts:ExternalId.")] = None,
) -> None:
    """The trust policy of a bucket role: lets the primary harvesting role assume it."""
    v.role_arn(primary_role_arn, expected_partition=v.arn_partition(primary_role_arn))
    if external_id is not None:
        v.external_id(external_id)
    print_json(
        trust_policy(primary_role_arn=primary_role_arn, external_id=external_id), sort_keys=False
    )


@policy_app.command("harvester-role")
def policy_harvester_role(
    bucket: Annotated[str, typer.Option(help="The bucket to read.")],
    kms_key: Annotated[
        str | None, typer.Option(help="The KMS key ARN of an SSE-KMS bucket.")
    ] = None,
    partition: Annotated[str, typer.Option(help="aws, aws-us-gov or aws-cn.")] = "aws",
) -> None:
    """The identity policy the harvesting role needs (S3 read, KMS decrypt, doctor's reads)."""
    v.bucket_name(bucket)
    v.partition(partition)
    print_json(
        harvester_role_policy(bucket=bucket, kms_key_arn=kms_key, partition=partition),
        sort_keys=False,
    )
