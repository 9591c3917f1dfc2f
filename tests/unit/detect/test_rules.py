"""Every rule detector fires on its positive example and stays quiet on a near miss."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from harvester.detect.model import Severity
from harvester.detect.rules import ALL_RULES
from harvester.events import Event
from tests.unit.detect import (
    test_rules_compute_exec as compute_exec,
)
from tests.unit.detect import (
    test_rules_identity_federation as identity_federation,
)
from tests.unit.detect import (
    test_rules_model_abuse as model_abuse,
)
from tests.unit.detect.builders import (
    ACCOUNT,
    OTHER,
    ct,
    detect,
    detectors,
    instance,
    k8s,
    k8s_user,
    role,
    root,
    sa,
    scorer,
    sso,
    user,
)

Make = Callable[[], Event]


def _policy(principal: object, condition: dict[str, object] | None = None) -> str:
    statement: dict[str, object] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return orjson.dumps({"Version": "2012-10-17", "Statement": [statement]}).decode()


def _pod(**spec: object) -> dict[str, object]:
    return {"kind": "Pod", "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec}}


_SIGNIN_OK = {"ConsoleLogin": "Success"}
_SIGNIN_FAIL = {"ConsoleLogin": "Failure"}

# detector id: (positive, negative)
CASES: dict[str, tuple[Make, Make]] = {
    "aws.root-activity": (
        lambda: ct("DescribeInstances", "ec2", identity=root()),
        lambda: ct("DescribeInstances", "ec2", identity=user()),
    ),
    "aws.root-console-login-failed": (
        lambda: ct("ConsoleLogin", "signin", identity=root(), response=_SIGNIN_FAIL),
        lambda: ct("ConsoleLogin", "signin", identity=user(), response=_SIGNIN_FAIL),
    ),
    "aws.root-access-key-created": (
        lambda: ct("CreateAccessKey", identity=root()),
        lambda: ct("CreateAccessKey", identity=root(), params={"userName": "bob"}),
    ),
    "aws.console-login-without-mfa": (
        lambda: ct(
            "ConsoleLogin",
            "signin",
            identity=user(),
            response=_SIGNIN_OK,
            additional={"MFAUsed": "No"},
        ),
        lambda: ct(
            "ConsoleLogin",
            "signin",
            identity=user(),
            response=_SIGNIN_OK,
            additional={"MFAUsed": "No", "SamlProviderArn": "arn:aws:iam::1:saml-provider/x"},
        ),
    ),
    "aws.console-mfa-failed": (
        lambda: ct(
            "ConsoleLogin",
            "signin",
            identity=user(),
            response=_SIGNIN_FAIL,
            additional={"MFAUsed": "Yes"},
        ),
        lambda: ct(
            "ConsoleLogin",
            "signin",
            identity=user(),
            response=_SIGNIN_FAIL,
            additional={"MFAUsed": "No"},
        ),
    ),
    "aws.console-federation-token": (
        lambda: ct("GetSigninToken", "signin", identity=role(), agent="python-requests/2.31"),
        lambda: ct("GetSigninToken", "signin", identity=sso(), agent="Mozilla/5.0 (X11)"),
    ),
    "aws.session-token-by-iam-user": (
        lambda: ct("GetSessionToken", "sts", identity=user()),
        lambda: ct("GetSessionToken", "sts", identity=role()),
    ),
    "aws.cloudtrail-logging-impaired": (
        lambda: ct(
            "PutEventSelectors",
            "cloudtrail",
            params={"trailName": "t", "eventSelectors": [{"includeManagementEvents": False}]},
        ),
        lambda: ct("UpdateTrail", "cloudtrail", params={"name": "t", "isMultiRegionTrail": True}),
    ),
    "aws.log-bucket-short-lifecycle": (
        lambda: ct(
            "PutBucketLifecycle",
            "s3",
            params={
                "bucketName": "org-cloudtrail-logs",
                "LifecycleConfiguration": {
                    "Rule": {"Expiration": {"Days": 1}, "Status": "Enabled"}
                },
            },
        ),
        lambda: ct(
            "PutBucketLifecycle",
            "s3",
            params={
                "bucketName": "thumbnails",
                "LifecycleConfiguration": {
                    "Rule": {"Expiration": {"Days": 1}, "Status": "Enabled"}
                },
            },
        ),
    ),
    "aws.guardduty-disabled": (
        lambda: ct("DeleteDetector", "guardduty", params={"detectorId": "d"}),
        lambda: ct("UpdateDetector", "guardduty", params={"detectorId": "d", "enable": True}),
    ),
    "aws.config-recording-stopped": (
        lambda: ct("StopConfigurationRecorder", "config"),
        lambda: ct("PutConfigurationRecorder", "config"),
    ),
    "aws.security-findings-suppressed": (
        lambda: ct("DisableSecurityHub", "securityhub"),
        lambda: ct("GetFindings", "securityhub"),
    ),
    "aws.network-logging-deleted": (
        lambda: ct("DeleteFlowLogs", "ec2"),
        lambda: ct("CreateFlowLogs", "ec2"),
    ),
    "aws.protection-removed": (
        lambda: ct("DisassociateWebACL", "wafv2", params={"resourceArn": "arn"}),
        lambda: ct("AssociateWebACL", "wafv2", params={"resourceArn": "arn"}),
    ),
    "aws.s3-protection-weakened": (
        lambda: ct(
            "PutBucketVersioning",
            "s3",
            params={"bucketName": "b", "VersioningConfiguration": {"Status": "Suspended"}},
        ),
        lambda: ct(
            "PutBucketVersioning",
            "s3",
            params={"bucketName": "b", "VersioningConfiguration": {"Status": "Enabled"}},
        ),
    ),
    "aws.database-protection-weakened": (
        lambda: ct(
            "ModifyDBInstance",
            "rds",
            params={"dBInstanceIdentifier": "db", "deletionProtection": False},
        ),
        lambda: ct(
            "ModifyDBInstance",
            "rds",
            params={"dBInstanceIdentifier": "db", "deletionProtection": True},
        ),
    ),
    "aws.database-access-changed": (
        lambda: ct("ModifyDBInstance", "rds", params={"masterUserPassword": "****"}),
        lambda: ct("ModifyDBInstance", "rds", params={"allocatedStorage": 100}),
    ),
    "aws.database-disruption": (
        lambda: ct("RebootDBInstance", "rds"),
        lambda: ct("StartDBInstance", "rds"),
    ),
    "aws.database-export": (
        lambda: ct("StartExportTask", "rds"),
        lambda: ct("CopyDBSnapshot", "rds", params={"sourceDBSnapshotIdentifier": "s"}),
    ),
    "aws.database-log-download": (
        lambda: ct("DownloadDBLogFilePortion", "rds"),
        lambda: ct("DescribeDBLogFiles", "rds"),
    ),
    "aws.snapshot-discovery": (
        lambda: ct("DescribeDBSnapshots", "rds", params={"includePublic": True}),
        lambda: ct("DescribeDBSnapshots", "rds", params={"maxRecords": 20}),
    ),
    "aws.kms-key-disabled": (
        lambda: ct("ScheduleKeyDeletion", "kms", params={"keyId": "k", "pendingWindowInDays": 7}),
        lambda: ct("CreateKey", "kms"),
    ),
    "aws.leave-organization": (
        lambda: ct("LeaveOrganization", "organizations"),
        lambda: ct("ListAccounts", "organizations"),
    ),
    "aws.opt-in-region-enabled": (
        lambda: ct("EnableRegion", "account", params={"RegionName": "af-south-1"}),
        lambda: ct("ListRegions", "account"),
    ),
    "aws.iam-access-key-for-other-user": (
        lambda: ct("CreateAccessKey", identity=user("pat"), params={"userName": "bob"}),
        lambda: ct("CreateAccessKey", identity=user("pat"), params={"userName": "pat"}),
    ),
    "aws.iam-login-profile-for-other-user": (
        lambda: ct(
            "UpdateLoginProfile",
            identity=sso(),
            params={"userName": "bob", "passwordResetRequired": False},
        ),
        lambda: ct(
            "UpdateLoginProfile",
            identity=sso(),
            params={"userName": "bob", "passwordResetRequired": True},
        ),
    ),
    "aws.iam-trust-opened": (
        lambda: ct(
            "UpdateAssumeRolePolicy",
            params={
                "roleName": "r",
                "policyDocument": _policy({"AWS": f"arn:aws:iam::{OTHER}:root"}),
            },
        ),
        lambda: ct(
            "UpdateAssumeRolePolicy",
            params={
                "roleName": "r",
                "policyDocument": _policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
            },
        ),
    ),
    "aws.iam-admin-granted": (
        lambda: ct(
            "AttachRolePolicy",
            params={"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        lambda: ct(
            "AttachRolePolicy",
            params={"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        ),
    ),
    "aws.iam-credentials-quarantined": (
        lambda: ct(
            "AttachUserPolicy",
            params={
                "userName": "u",
                "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
            },
        ),
        lambda: ct(
            "AttachUserPolicy",
            params={"userName": "u", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        ),
    ),
    "aws.iam-user-created-by-hand": (
        lambda: ct("CreateUser", params={"userName": "x"}, agent="console.amazonaws.com"),
        lambda: ct(
            "CreateUser",
            params={"userName": "x"},
            agent="APN/1.0 HashiCorp/1.0 Terraform/1.7.4 aws-sdk-go-v2/1.25",
        ),
    ),
    "aws.identity-provider-changed": (
        lambda: ct("CreateSAMLProvider", identity=role("ops")),
        lambda: ct("CreateSAMLProvider", identity=role("AWSServiceRoleForSSO", "AWS-SSO")),
    ),
    "aws.eks-cluster-admin-granted": (
        lambda: ct(
            "AssociateAccessPolicy",
            "eks",
            params={
                "name": "prod",
                "principalArn": "arn:aws:iam::1:role/x",
                "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            },
        ),
        lambda: ct(
            "AssociateAccessPolicy",
            "eks",
            params={
                "name": "prod",
                "principalArn": "arn:aws:iam::1:role/x",
                "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
            },
        ),
    ),
    "aws.lambda-changed-by-person": (
        lambda: ct(
            "UpdateFunctionCode20150331v2", "lambda", identity=user(), params={"functionName": "f"}
        ),
        lambda: ct(
            "UpdateFunctionCode20150331v2",
            "lambda",
            identity=role("ci"),
            params={"functionName": "f"},
        ),
    ),
    "aws.lambda-permission-opened": (
        lambda: ct(
            "AddPermission20150331v2",
            "lambda",
            params={"functionName": "f", "principal": "*", "action": "lambda:InvokeFunction"},
        ),
        lambda: ct(
            "AddPermission20150331v2",
            "lambda",
            params={
                "functionName": "f",
                "principal": "s3.amazonaws.com",
                "sourceArn": "arn:aws:s3:::b",
            },
        ),
    ),
    "aws.snapshot-shared": (
        lambda: ct(
            "ModifySnapshotAttribute",
            "ec2",
            params={
                "snapshotId": "snap-1",
                "createVolumePermission": {"add": {"items": [{"userId": OTHER}]}},
            },
        ),
        lambda: ct(
            "ModifySnapshotAttribute",
            "ec2",
            params={
                "snapshotId": "snap-1",
                "createVolumePermission": {"remove": {"items": [{"userId": OTHER}]}},
            },
        ),
    ),
    "aws.resource-policy-opened": (
        lambda: ct(
            "PutBucketPolicy",
            "s3",
            params={
                "bucketName": "b",
                "bucketPolicy": {
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]
                },
            },
        ),
        lambda: ct(
            "PutBucketPolicy",
            "s3",
            params={
                "bucketName": "b",
                "bucketPolicy": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
                        }
                    ]
                },
            },
        ),
    ),
    "aws.s3-public-access-block-removed": (
        lambda: ct("DeleteBucketPublicAccessBlock", "s3", params={"bucketName": "b"}),
        lambda: ct(
            "PutBucketPublicAccessBlock",
            "s3",
            params={
                "bucketName": "b",
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            },
        ),
    ),
    "aws.resource-made-public": (
        lambda: ct("ModifyDBInstance", "rds", params={"publiclyAccessible": True}),
        lambda: ct("ModifyDBInstance", "rds", params={"publiclyAccessible": False}),
    ),
    "aws.s3-ransom-note": (
        lambda: ct(
            "PutObject", "s3", params={"bucketName": "b", "key": "a/HOW_TO_DECRYPT_FILES.txt"}
        ),
        lambda: ct("PutObject", "s3", params={"bucketName": "b", "key": "a/quarterly-report.pdf"}),
    ),
    "aws.s3-encrypted-with-outside-key": (
        lambda: ct(
            "CopyObject",
            "s3",
            params={
                "bucketName": "b",
                "x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:us-east-1:{OTHER}:key/k",
            },
        ),
        lambda: ct(
            "CopyObject",
            "s3",
            params={
                "bucketName": "b",
                "x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",
            },
        ),
    ),
    "aws.bulk-secret-retrieval": (
        lambda: ct(
            "GetParameters", "ssm", params={"names": ["a", "b", "c", "d"], "withDecryption": True}
        ),
        lambda: ct(
            "GetParameters", "ssm", params={"names": ["a", "b", "c", "d"], "withDecryption": False}
        ),
    ),
    "aws.network-opened-to-internet": (
        lambda: ct(
            "AuthorizeSecurityGroupIngress",
            "ec2",
            params={
                "groupId": "sg-1",
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
        ),
        lambda: ct(
            "AuthorizeSecurityGroupIngress",
            "ec2",
            params={
                "groupId": "sg-1",
                "ipPermissions": {
                    "items": [
                        {
                            "ipProtocol": "tcp",
                            "fromPort": 22,
                            "toPort": 22,
                            "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]},
                        }
                    ]
                },
            },
        ),
    ),
    "aws.instance-userdata-read": (
        lambda: ct("DescribeInstanceAttribute", "ec2", params={"attribute": "userData"}),
        lambda: ct("DescribeInstanceAttribute", "ec2", params={"attribute": "instanceType"}),
    ),
    "aws.instance-userdata-modified": (
        lambda: ct("ModifyInstanceAttribute", "ec2", params={"instanceId": "i-1", "userData": "x"}),
        lambda: ct(
            "ModifyInstanceAttribute", "ec2", params={"instanceId": "i-1", "instanceType": "m5"}
        ),
    ),
    "aws.traffic-mirroring": (
        lambda: ct("CreateTrafficMirrorSession", "ec2"),
        lambda: ct("DescribeTrafficMirrorSessions", "ec2"),
    ),
    "aws.instance-credentials-on-workstation": (
        lambda: ct(
            "ListBuckets", "s3", identity=instance(), agent="aws-cli/2.13 Python/3.11 Darwin/23.1.0"
        ),
        lambda: ct(
            "ListBuckets",
            "s3",
            identity=instance(),
            agent="aws-cli/2.13 Python/3.11 Linux/6.1.79-99.amzn2023",
        ),
    ),
    "aws.offensive-tool-user-agent": (
        lambda: ct("ListUsers", agent="aws-cli/1.29 Python/3.11 Linux/6.5.0-kali3-amd64"),
        lambda: ct("ListUsers", agent="aws-cli/1.29 Python/3.11 Linux/6.5.0-kalibrate-amd64"),
    ),
    "aws.vpc-endpoint-denied": (
        lambda: ct("GetObject", "s3", error="VpceAccessDenied"),
        lambda: ct("GetObject", "s3", error="AccessDenied"),
    ),
    "aws.vpc-endpoint-anomaly": (
        lambda: ct(
            "GetObject",
            "s3",
            vpce="vpce-1",
            identity={"type": "AWSAccount", "principalId": "AROAX:s", "accountId": OTHER},
        ),
        lambda: ct(
            "GetObject",
            "s3",
            vpce="vpce-1",
            identity={"type": "AWSAccount", "principalId": "AROAX:s", "accountId": ACCOUNT},
        ),
    ),
    # --- Kubernetes ---
    "k8s.privileged-container": (
        lambda: k8s(
            "create",
            "pods",
            name="p",
            obj={
                "kind": "Pod",
                "spec": {"containers": [{"securityContext": {"privileged": True}}]},
            },
        ),
        lambda: k8s("create", "pods", name="p", obj=_pod()),
    ),
    "k8s.host-namespace-or-path": (
        lambda: k8s("create", "pods", name="p", obj=_pod(hostPID=True)),
        lambda: k8s("create", "pods", name="p", obj=_pod(hostPID=False)),
    ),
    "k8s.workload-in-system-namespace": (
        lambda: k8s("create", "deployments", namespace="kube-system", name="d", obj={}),
        lambda: k8s("create", "deployments", namespace="default", name="d", obj={}),
    ),
    "k8s.pod-exec": (
        lambda: k8s("create", "pods", name="web-1", subresource="exec", code=101),
        lambda: k8s("get", "pods", name="web-1"),
    ),
    "k8s.cluster-admin-binding": (
        lambda: k8s(
            "create",
            "clusterrolebindings",
            namespace=None,
            name="b",
            obj={"roleRef": {"name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "x"}]},
        ),
        lambda: k8s(
            "create",
            "clusterrolebindings",
            namespace=None,
            name="b",
            obj={"roleRef": {"name": "view"}, "subjects": [{"kind": "User", "name": "x"}]},
        ),
    ),
    "k8s.risky-role-created": (
        lambda: k8s(
            "create",
            "clusterroles",
            namespace=None,
            name="r",
            obj={"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        ),
        lambda: k8s(
            "create",
            "clusterroles",
            namespace=None,
            name="r",
            obj={"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        ),
    ),
    "k8s.system-role-modified": (
        lambda: k8s("patch", "clusterroles", namespace=None, name="system:node"),
        lambda: k8s("patch", "clusterroles", namespace=None, name="team-reader"),
    ),
    "k8s.aws-auth-changed": (
        lambda: k8s("patch", "configmaps", namespace="kube-system", name="aws-auth"),
        lambda: k8s("patch", "configmaps", namespace="kube-system", name="coredns"),
    ),
    "k8s.configmap-with-credentials": (
        lambda: k8s(
            "create",
            "configmaps",
            name="c",
            obj={"data": {"app.ini": "aws_secret_access_key = abc\n"}},
        ),
        lambda: k8s("create", "configmaps", name="c", obj={"data": {"app.ini": "color = blue\n"}}),
    ),
    "k8s.secrets-listed-cluster-wide": (
        lambda: k8s("list", "secrets", namespace=None),
        lambda: k8s(
            "list", "secrets", namespace=None, user=sa("kube-system", "kube-state-metrics")
        ),
    ),
    "k8s.secret-read-by-person": (
        lambda: k8s("get", "secrets", name="db"),
        lambda: k8s("get", "secrets", name="db", user=sa("default", "app")),
    ),
    "k8s.secret-access-denied": (
        lambda: k8s("get", "secrets", name="db", code=403, user=sa("default", "app")),
        lambda: k8s("get", "configmaps", name="db", code=403, user=sa("default", "app")),
    ),
    "k8s.service-account-token-created": (
        lambda: k8s("create", "serviceaccounts", name="ci", subresource="token"),
        lambda: k8s(
            "create",
            "serviceaccounts",
            name="ci",
            subresource="token",
            user=k8s_user("system:node:ip-10-0-0-1.ec2.internal", ["system:nodes"]),
        ),
    ),
    "k8s.certificate-signing-request": (
        lambda: k8s(
            "create",
            "certificatesigningrequests",
            namespace=None,
            name="c",
            obj={"spec": {"usages": ["client auth"]}},
        ),
        lambda: k8s(
            "create",
            "certificatesigningrequests",
            namespace=None,
            name="c",
            obj={"spec": {"usages": ["server auth"]}},
        ),
    ),
    "k8s.service-account-in-system-namespace": (
        lambda: k8s("create", "serviceaccounts", namespace="kube-system", name="helper"),
        lambda: k8s("create", "serviceaccounts", namespace="default", name="helper"),
    ),
    "k8s.anonymous-request": (
        lambda: k8s(
            "get",
            "pods",
            user={"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        ),
        lambda: k8s("get", "pods"),
    ),
    "k8s.nodes-proxy-access": (
        lambda: k8s("get", "nodes", namespace=None, name="n1", subresource="proxy"),
        lambda: k8s("get", "nodes", namespace=None, name="n1"),
    ),
    "k8s.system-identity-from-internet": (
        lambda: k8s("get", "secrets", user=sa("kube-system", "coredns"), ip="81.2.69.142"),
        lambda: k8s("get", "secrets", user=sa("kube-system", "coredns"), ip="10.0.3.4"),
    ),
    "k8s.admission-webhook-created": (
        lambda: k8s("create", "mutatingwebhookconfigurations", namespace=None, name="w"),
        lambda: k8s(
            "create",
            "mutatingwebhookconfigurations",
            namespace=None,
            name="w",
            user=k8s_user("system:kube-controller-manager"),
        ),
    ),
    "k8s.nodeport-service": (
        lambda: k8s("create", "services", name="s", obj={"spec": {"type": "NodePort"}}),
        lambda: k8s("create", "services", name="s", obj={"spec": {"type": "ClusterIP"}}),
    ),
    "k8s.ingress-without-tls": (
        lambda: k8s("create", "ingresses", name="i", obj={"spec": {"rules": []}}),
        lambda: k8s(
            "create", "ingresses", name="i", obj={"spec": {"rules": [], "tls": [{"hosts": ["a"]}]}}
        ),
    ),
}


# Rules of the themed modules keep their cases beside their own tests.
EVERY_CASE = {**CASES, **compute_exec.CASES, **identity_federation.CASES, **model_abuse.CASES}


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    assert {r.spec.id for r in ALL_RULES} == set(EVERY_CASE)


@pytest.mark.parametrize("detector", sorted(EVERY_CASE))
def test_rule_fires_on_positive(detector: str) -> None:
    positive, _ = EVERY_CASE[detector]
    assert detector in detectors(positive())


@pytest.mark.parametrize("detector", sorted(EVERY_CASE))
def test_rule_quiet_on_negative(detector: str) -> None:
    _, negative = EVERY_CASE[detector]
    assert detector not in detectors(negative())


def test_failures_that_say_nothing_of_intent_are_not_reported() -> None:
    # Throttling is AWS's answer to load, not to what was asked (attempts: test_attempts.py).
    event = ct(
        "DeleteDetector", "guardduty", params={"detectorId": "d"}, error="ThrottlingException"
    )
    assert "aws.guardduty-disabled" not in detectors(event)


def test_known_accounts_are_not_outside() -> None:
    event = ct(
        "ModifySnapshotAttribute",
        "ec2",
        params={
            "snapshotId": "s",
            "createVolumePermission": {"add": {"items": [{"userId": OTHER}]}},
        },
    )
    found = scorer(known=frozenset((OTHER,))).score_and_commit([event]).anomalies
    assert "aws.snapshot-shared" not in {a.detector for a in found}


@pytest.mark.parametrize(
    ("event", "detector", "severity"),
    [
        (
            lambda: k8s(
                "create",
                "pods",
                namespace="kube-system",
                name="aws-node-1",
                subresource="exec",
                code=101,
            ),
            "k8s.pod-exec",
            Severity.high,
        ),
        (
            lambda: ct(
                "ModifySnapshotAttribute",
                "ec2",
                params={"createVolumePermission": {"add": {"items": [{"group": "all"}]}}},
            ),
            "aws.snapshot-shared",
            Severity.critical,
        ),
        (
            lambda: ct(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                params={
                    "ipPermissions": {
                        "items": [
                            {
                                "ipProtocol": "tcp",
                                "fromPort": 443,
                                "toPort": 443,
                                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                            }
                        ]
                    }
                },
            ),
            "aws.network-opened-to-internet",
            Severity.low,
        ),
        (
            lambda: ct("StopLogging", "cloudtrail", params={"name": "trail"}),
            "aws.cloudtrail-logging-impaired",
            Severity.critical,
        ),
    ],
)
def test_severity_reflects_what_was_done(event: Make, detector: str, severity: Severity) -> None:
    found = {a.detector: a for a in detect(event())}
    assert found[detector].severity is severity


def test_kubectl_cp_out_of_a_pod_is_reported_as_copying_out() -> None:
    event = k8s(
        "create",
        "pods",
        namespace="payments",
        name="api-1",
        subresource="exec",
        code=101,
        uri="/api/v1/namespaces/payments/pods/api-1/exec?command=tar&command=cf&command=-"
        "&command=/app/secrets",
    )
    (anomaly,) = [a for a in detect(event) if a.detector == "k8s.pod-exec"]
    assert anomaly.title.startswith("Files copied out")
    assert "TA0010" in anomaly.mitre_tactics


def test_pods_stamped_out_by_controllers_in_kube_system_are_not_judged_again() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "aws-node"}]},
        "spec": {"hostNetwork": True, "containers": [{"securityContext": {"privileged": True}}]},
    }
    event = k8s(
        "create",
        "pods",
        namespace="kube-system",
        obj=pod,
        user=sa("kube-system", "daemon-set-controller"),
    )
    assert detectors(event) == set()


def test_a_record_of_unexpected_shape_does_not_stop_the_batch() -> None:
    odd = ct("PutBucketPolicy", "s3", params={"bucketPolicy": ["not", "a", "policy"]})
    good = ct("StopLogging", "cloudtrail", params={"name": "t"})
    result = scorer().score_and_commit([odd, good])
    assert "aws.cloudtrail-logging-impaired" in {a.detector for a in result.anomalies}
