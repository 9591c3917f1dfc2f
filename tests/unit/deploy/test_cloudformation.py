"""deploy/aws: cfn-lint passes, and the templates grant what the harvester and its docs expect."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harvester.policy_docs import harvester_role_policy
from tests.unit.deploy.helpers import DEPLOY, load_cfn

AWS = DEPLOY / "aws"
TEMPLATES = sorted(AWS.glob("*.yaml"))


def _cfn_lint() -> str:
    beside_python = Path(sys.executable).with_name("cfn-lint")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("cfn-lint")
    if found is None:
        pytest.fail("cfn-lint is missing: pip install cfn-lint (it is in the dev extras)")
    return found


def test_the_three_templates_exist() -> None:
    assert {t.name for t in TEMPLATES} == {
        "cloudtrail-harvest-role.yaml",
        "cloudtrail-bucket-policy.yaml",
        "eks-audit-firehose.yaml",
    }


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [_cfn_lint(), *map(str, TEMPLATES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for statement in document["Statement"]:
        found.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_harvest_role_trusts_the_primary_role_with_the_external_id() -> None:
    template = load_cfn(AWS / "cloudtrail-harvest-role.yaml")
    assert {"BucketName", "PrimaryRoleArn", "ExternalId", "KmsKeyArn"} <= set(
        template["Parameters"]
    )
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    role = template["Resources"]["HarvestRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "PrimaryRoleArn"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}


def test_harvest_role_grants_what_harvester_policy_prints() -> None:
    template = load_cfn(AWS / "cloudtrail-harvest-role.yaml")
    (policy,) = template["Resources"]["HarvestRole"]["Properties"]["Policies"]
    granted = {s["Sid"]: s for s in _statements(policy["PolicyDocument"])}
    expected = {
        s["Sid"]: s
        for s in harvester_role_policy(
            bucket="log-bucket", kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/k"
        )["Statement"]  # type: ignore[attr-defined]
        if s["Sid"] != "DoctorDescribeClusters"  # EKS clusters live in other stacks
    }
    assert set(granted) == set(expected)
    for sid, statement in expected.items():
        assert _actions(granted[sid]) == _actions(statement), sid
    assert granted["HarvestReadObjects"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/*"
    }
    assert granted["HarvestListBucket"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"
    }
    # kms:Decrypt only when a key is given, and only through S3.
    (kms,) = [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    condition, statement, otherwise = kms["Fn::If"]
    assert condition == "HasKmsKey"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert "kms:ViaService" in statement["Condition"]["StringLike"]


def test_bucket_policy_lets_cloudtrail_write_and_the_harvester_read() -> None:
    template = load_cfn(AWS / "cloudtrail-bucket-policy.yaml")
    policy = template["Resources"]["CloudTrailBucketPolicy"]["Properties"]["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    write = by_sid["AWSCloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == {"Ref": "TrailArn"}
    assert by_sid["HarvesterReadObjects"]["Principal"] == {"AWS": {"Ref": "HarvesterRoleArn"}}
    assert _actions(by_sid["HarvesterListBucket"]) == {"s3:ListBucket", "s3:GetBucketLocation"}
    assert by_sid["DenyInsecureTransport"]["Effect"] == "Deny"


def test_eks_pipeline_writes_hourly_folders_under_the_cluster() -> None:
    template = load_cfn(AWS / "eks-audit-firehose.yaml")
    assert {"BucketName", "AccountNumber", "ClusterName", "CreateBucket"} <= set(
        template["Parameters"]
    )
    resources = template["Resources"]
    assert resources["AuditLogBucket"]["Condition"] == "MakeBucket"
    s3 = resources["AuditLogDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"] == {
        "Fn::Sub": "EKSLogs/${AccountNumber}/${ClusterName}/!{timestamp:yyyy/MM/dd/HH}/"
    }
    # Stored as CloudWatch Logs sends them: each payload gzipped, the object a multi-member gzip.
    assert s3["CompressionFormat"] == "UNCOMPRESSED"
    assert s3["RoleARN"] == {"Fn::GetAtt": ["FirehoseDeliveryRole", "Arn"]}
    subscription = resources["AuditLogSubscription"]["Properties"]
    assert subscription["LogGroupName"] == {"Fn::Sub": "/aws/eks/${ClusterName}/cluster"}
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["AuditLogDeliveryStream", "Arn"]}
    assert subscription["RoleArn"] == {"Fn::GetAtt": ["LogsToFirehoseRole", "Arn"]}
    logs_role = resources["LogsToFirehoseRole"]["Properties"]
    assert logs_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "logs.amazonaws.com"
    }
    (put,) = logs_role["Policies"][0]["PolicyDocument"]["Statement"]
    assert _actions(put) == {"firehose:PutRecord", "firehose:PutRecordBatch"}
    firehose_role = resources["FirehoseDeliveryRole"]["Properties"]
    assert firehose_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "firehose.amazonaws.com"
    }
    write = firehose_role["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert "s3:PutObject" in _actions(write)
