"""CloudTrail rule detectors: each a declaration and a pure check of one event.

The checks look at what a call does (its parameters), not at who made it by name: no account
numbers, ARNs or resource names of any particular estate appear here. The organization's own
accounts and trail buckets come in through ``RuleConfig``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from harvester.detect.features import (
    allows_everything,
    as_list,
    desktop_os,
    grants_outside,
    is_human,
    is_instance_session,
    load_json,
    network_of,
    offensive_tool,
    principal_account,
    ua_family,
)
from harvester.detect.model import Hit, Severity
from harvester.detect.rules.base import Call, Rule, RuleCatalog, RuleConfig, Subject, base_name
from harvester.detect.rules.params import (
    ALL_PORTS,
    Network,
    PortRange,
    broad_network,
    covers,
    dig,
    every_port,
    falsy,
    internet_network,
    items,
    network,
    pick,
    port_range,
    port_text,
    truthy,
)

__all__ = ["RULES"]


_CATALOG = RuleCatalog("cloudtrail")
RULES: list[Rule] = _CATALOG.rules
_spec = _CATALOG.spec
rule = _CATALOG.rule


table_rule = _CATALOG.table

# User-agent families of infrastructure-as-code pipelines.
_IAC = frozenset(("terraform", "cloudformation", "pulumi", "service:cloudformation"))


# --- root -----------------------------------------------------------------------------------

ROOT_ACTIVITY = _spec(
    "aws.root-activity",
    title="Root user credentials used",
    severity=Severity.high,
    tactics=["TA0004", "TA0001"],
    techniques=["T1078.004"],
    description=(
        "The account's root user signed in or called an API. Root is not bound by IAM policies; "
        "day-to-day work should never need it."
    ),
)


# Tasks that AWS lets only the root user do, or that the console does for it: the reasons
# to use root at all (https://docs.aws.amazon.com/IAM/latest/UserGuide/root-user-tasks.html).
_ROOT_TASK_SERVICES = frozenset(
    {
        "account",
        "billing",
        "billingconsole",
        "ce",
        "consolidatedbilling",
        "freetier",
        "invoicing",
        "payments",
        "support",
        "supportplans",
        "tax",
    }
)
_ROOT_TASK_NAMES = frozenset({"CreateServiceLinkedRole", "PasswordUpdated", "CheckMfa"})


@rule(ROOT_ACTIVITY, failures=True)
def _root_activity(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.event.principal
    if p.type != "root" or p.invoked_by:
        return None
    name = base_name(s.event.action.name)
    if name == "ConsoleLogin":
        if not s.event.outcome.success:
            return None  # aws.root-console-login-failed reports these
        mfa = "with MFA" if p.mfa else "without MFA" if p.mfa is False else ""
        return Hit(
            summary=f"the root user of {s.event.account} signed in {mfa}{s.where}",
            # A password alone opens an account with no policy to stop it.
            severity=Severity.high if p.mfa is False else Severity.medium,
        )
    if not s.event.outcome.success:
        return Hit(
            summary=s.called("and was refused"),
            context="An attempt: the call failed.",
            severity=Severity.low,
        )
    if s.event.action.service in _ROOT_TASK_SERVICES or name in _ROOT_TASK_NAMES:
        return Hit(
            summary=s.called(),
            context="An account task that needs the root user; its sign-in is reported on its own.",
            severity=Severity.low,
        )
    if s.event.read_only:
        return Hit(
            summary=s.called(),
            context="A read: the root user's writes and its sign-in are reported higher.",
            severity=Severity.low,
        )
    return Hit(summary=s.called())


ROOT_LOGIN_FAILED = _spec(
    "aws.root-console-login-failed",
    title="Failed root sign-in",
    severity=Severity.medium,
    tactics=["TA0006", "TA0001"],
    techniques=["T1110"],
    description=(
        "Someone tried the root user's password and failed: guessing, or a stolen password without"
        " the MFA device."
    ),
)


@rule(ROOT_LOGIN_FAILED, names=["ConsoleLogin"], failures=True, successes=False)
def _root_login_failed(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.principal.type != "root":
        return None
    return Hit(summary=f"a root sign-in to {s.event.account} failed{s.where}")


ROOT_ACCESS_KEY = _spec(
    "aws.root-access-key-created",
    title="Access key created for the root user",
    severity=Severity.critical,
    tactics=["TA0003"],
    techniques=["T1098.001"],
    description=(
        "Root created an access key for itself: long-lived, unrestricted programmatic access."
    ),
)


@rule(ROOT_ACCESS_KEY, names=["CreateAccessKey"])
def _root_access_key(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.principal.type != "root" or s.params.get("userName"):
        return None
    return Hit(summary=s.called("for itself"))


# --- sign-in ----------------------------------------------------------------------------------

LOGIN_NO_MFA = _spec(
    "aws.console-login-without-mfa",
    title="Console sign-in without MFA",
    severity=Severity.high,
    tactics=["TA0001"],
    techniques=["T1078.004"],
    description=(
        "An IAM user or root signed in to the console with a password alone. Federated (SAML/SSO) "
        "sign-ins are left out: their MFA happens at the identity provider."
    ),
)


@rule(LOGIN_NO_MFA, names=["ConsoleLogin"], attempts=False)
def _login_no_mfa(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.event.principal
    if p.type not in ("iam_user", "root") or p.mfa is not False:
        return None
    if s.additional.get("SamlProviderArn"):
        return None
    return Hit(summary=f"{s.who} signed in to the console without MFA{s.where}")


FEDERATION_TOKEN = _spec(
    "aws.console-federation-token",
    title="Console sign-in token minted by a script",
    severity=Severity.medium,
    tactics=["TA0008", "TA0001"],
    techniques=["T1550.001", "T1021.007"],
    description=(
        "GetSigninToken turns API credentials into a console session. Outside the SSO portal it is"
        " how stolen keys are taken to the console."
    ),
)


@rule(FEDERATION_TOKEN, names=["GetSigninToken"])
def _federation_token(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "signin" or is_human(s.event.principal):
        return None
    if ua_family(s.event.user_agent) in ("browser", "console", "aws-internal"):
        return None
    return Hit(
        summary=f"{s.who} minted a console sign-in token with "
        f"{s.event.user_agent or 'no user agent'}{s.where}"
    )


SESSION_TOKEN = _spec(
    "aws.session-token-by-iam-user",
    title="Temporary credentials minted from a user's access key",
    severity=Severity.low,
    tactics=["TA0005", "TA0008"],
    techniques=["T1550.001"],
    description=(
        "GetSessionToken from a long-lived key gives credentials that survive the key being "
        "disabled; attackers use it to keep access."
    ),
)


@rule(SESSION_TOKEN, names=["GetSessionToken"])
def _session_token(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.principal.type != "iam_user":
        return None
    return Hit(summary=s.called(), routine_key="GetSessionToken")


# --- logging and monitoring ---------------------------------------------------------------------

CLOUDTRAIL_IMPAIRED = _spec(
    "aws.cloudtrail-logging-impaired",
    title="CloudTrail logging stopped or reduced",
    severity=Severity.high,
    tactics=["TA0005"],
    techniques=["T1562.008"],
    description=(
        "A trail was stopped, deleted or changed to record less (single region, no global events, "
        "management events dropped): the audit record attackers most want gone."
    ),
)


def _trail(s: Subject) -> str:
    name = s.params.get("name") or s.params.get("trailName") or ""
    return str(name).rsplit("/", 1)[-1]


@rule(
    CLOUDTRAIL_IMPAIRED,
    names=[
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "PutEventSelectors",
        "DeleteEventDataStore",
        "StopEventDataStoreIngestion",
    ],
)
def _cloudtrail_impaired(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "cloudtrail":
        return None
    name = base_name(s.event.action.name)
    trail = _trail(s)
    if name == "StopLogging":
        return Hit(summary=s.called(f"on trail {trail}"), severity=Severity.critical)
    if name == "DeleteTrail":
        return Hit(summary=s.called(f"on trail {trail}"), severity=Severity.critical)
    if name in ("DeleteEventDataStore", "StopEventDataStoreIngestion"):
        return Hit(summary=s.called())
    if name == "UpdateTrail":
        changes = []
        p = s.params
        if falsy(p.get("isMultiRegionTrail")):
            changes.append("made it single-region")
        if falsy(p.get("includeGlobalServiceEvents")):
            changes.append("dropped global service events")
        if falsy(p.get("enableLogFileValidation")):
            changes.append("turned off log file validation")
        if p.get("s3BucketName"):
            changes.append(f"sent its logs to bucket {p['s3BucketName']}")
        if not changes:
            return None
        return Hit(summary=s.called(f"on trail {trail} and " + ", ".join(changes)))
    reduced = []
    for selector in as_list(s.params.get("eventSelectors")):
        if not isinstance(selector, dict):
            continue
        if falsy(selector.get("includeManagementEvents")):
            reduced.append("management events excluded")
        if str(selector.get("readWriteType", "All")) != "All":
            reduced.append(f"only {selector.get('readWriteType')} events kept")
        if selector.get("excludeManagementEventSources"):
            reduced.append(f"excluded {selector['excludeManagementEventSources']}")
    if not reduced:
        return None
    return Hit(summary=s.called(f"on trail {trail}: " + "; ".join(sorted(set(reduced)))))


SHORT_LIFECYCLE = _spec(
    "aws.log-bucket-short-lifecycle",
    title="Short expiry set on a log bucket",
    severity=Severity.high,
    tactics=["TA0005"],
    techniques=["T1562.008", "T1070"],
    description=(
        "A lifecycle rule deletes objects of a bucket holding CloudTrail or other logs within "
        "days: the logs are kept on paper and destroyed in practice."
    ),
    max_days=7,
)
_LOG_BUCKET = re.compile(r"cloudtrail|trail|audit|(?<![a-z])logs?(?![a-z])", re.I)


@rule(SHORT_LIFECYCLE, names=["PutBucketLifecycle", "PutBucketLifecycleConfiguration"])
def _short_lifecycle(s: Subject, cfg: RuleConfig) -> Hit | None:
    bucket = str(s.params.get("bucketName") or "")
    config = s.params.get("LifecycleConfiguration") or {}
    shortest: int | None = None
    for lifecycle_rule in as_list(dig(config, "Rule")):
        if not isinstance(lifecycle_rule, dict) or lifecycle_rule.get("Status") == "Disabled":
            continue
        for days in (
            dig(lifecycle_rule, "Expiration", "Days"),
            dig(lifecycle_rule, "NoncurrentVersionExpiration", "NoncurrentDays"),
        ):
            try:
                value = int(days) if days is not None else None
            except (TypeError, ValueError):
                value = None
            if value is not None and (shortest is None or value < shortest):
                shortest = value
    if shortest is None or shortest > cfg.short_lifecycle_days:
        return None
    if bucket in cfg.trail_buckets:
        severity = Severity.high
    elif _LOG_BUCKET.search(bucket):
        severity = Severity.medium
    else:
        return None
    return Hit(
        summary=s.called(f"making objects of log bucket {bucket} expire after {shortest} days"),
        severity=severity,
    )


def _detector_disabled(s: Subject) -> str | None:
    return "disabling the detector" if falsy(s.params.get("enable")) else None


def _archive_filter(s: Subject) -> str | None:
    action = str(s.params.get("action") or "").upper()
    return "with an auto-archive filter that hides findings" if action == "ARCHIVE" else None


def _trusted_ips(s: Subject) -> str | None:
    return (
        "activating a trusted IP list (no findings from it)"
        if truthy(s.params.get("activate"))
        else None
    )


table_rule(
    _spec(
        "aws.guardduty-disabled",
        title="GuardDuty disabled or blinded",
        severity=Severity.high,
        tactics=["TA0005"],
        techniques=["T1562.001"],
        description=(
            "A GuardDuty detector was deleted or disabled, members detached, or findings routed "
            "away or auto-archived."
        ),
    ),
    [
        Call(("guardduty",), "DeleteDetector", "deleting the detector", Severity.critical),
        Call(("guardduty",), "UpdateDetector", when=_detector_disabled),
        Call(("guardduty",), "DisassociateFromMasterAccount", severity=Severity.medium),
        Call(("guardduty",), "DisassociateFromAdministratorAccount", severity=Severity.medium),
        Call(("guardduty",), "DisassociateMembers", severity=Severity.medium),
        Call(("guardduty",), "DeleteMembers", severity=Severity.medium),
        Call(("guardduty",), "StopMonitoringMembers", severity=Severity.medium),
        Call(("guardduty",), "DeletePublishingDestination", severity=Severity.medium),
        Call(("guardduty",), "CreateFilter", severity=Severity.medium, when=_archive_filter),
        Call(("guardduty",), "UpdateFilter", severity=Severity.medium, when=_archive_filter),
        Call(("guardduty",), "CreateIPSet", severity=Severity.medium, when=_trusted_ips),
        Call(("guardduty",), "UpdateIPSet", severity=Severity.medium, when=_trusted_ips),
    ],
)

table_rule(
    _spec(
        "aws.config-recording-stopped",
        title="AWS Config recording stopped",
        severity=Severity.high,
        tactics=["TA0005"],
        techniques=["T1562.001"],
        description=(
            "The Config recorder or its delivery channel was stopped or deleted: resource changes "
            "stop being recorded."
        ),
    ),
    [
        Call(("config",), "StopConfigurationRecorder"),
        Call(("config",), "DeleteConfigurationRecorder"),
        Call(("config",), "DeleteDeliveryChannel"),
        Call(("config",), "DeleteConfigRule", severity=Severity.low, routine=True),
        Call(("config",), "DeleteConformancePack", severity=Severity.low, routine=True),
        Call(("config",), "DeleteConfigurationAggregator", severity=Severity.low, routine=True),
    ],
)


def _macie_session(s: Subject) -> str | None:
    status = str(s.params.get("status") or "").upper()
    if status == "PAUSED":
        return "pausing Macie"
    return "changing how Macie publishes findings"


def _workflow_suppressed(s: Subject) -> str | None:
    status = str(dig(s.params, "Workflow", "Status") or "").upper()
    return f"marking findings {status}" if status == "SUPPRESSED" else None


table_rule(
    _spec(
        "aws.security-findings-suppressed",
        title="Security findings service disabled or tampered with",
        severity=Severity.medium,
        tactics=["TA0005"],
        techniques=["T1562.001"],
        description=(
            "Security Hub, Macie, Inspector, Access Analyzer or Detective was disabled, lost its "
            "members, or had findings deleted or suppressed."
        ),
    ),
    [
        Call(("securityhub",), "DisableSecurityHub", severity=Severity.high),
        Call(("securityhub",), "DisableImportFindingsForProduct"),
        Call(("securityhub",), "BatchDisableStandards"),
        Call(("securityhub",), "DeleteInsight", severity=Severity.low),
        Call(("securityhub",), "UpdateFindings", severity=Severity.low),
        Call(("securityhub",), "BatchUpdateFindings", when=_workflow_suppressed, routine=True),
        Call(("securityhub",), "DisassociateFromMasterAccount"),
        Call(("securityhub",), "DisassociateFromAdministratorAccount"),
        Call(("securityhub",), "DisassociateMembers"),
        Call(("securityhub",), "DeleteMembers"),
        Call(("macie", "macie2"), "DisableMacie", severity=Severity.high),
        Call(("macie", "macie2"), "UpdateMacieSession", when=_macie_session),
        Call(("macie", "macie2"), "DisassociateFromMasterAccount"),
        Call(("macie", "macie2"), "DisassociateFromAdministratorAccount"),
        Call(("macie", "macie2"), "CreateFindingsFilter", when=_archive_filter),
        Call(("inspector2",), "Disable", severity=Severity.high),
        Call(("inspector2",), "DisableDelegatedAdminAccount"),
        Call(("access-analyzer",), "DeleteAnalyzer"),
        Call(("detective",), "DeleteGraph"),
        Call(("detective",), "DisassociateMembership"),
    ],
)

table_rule(
    _spec(
        "aws.network-logging-deleted",
        title="Network logging deleted",
        severity=Severity.high,
        tactics=["TA0005"],
        techniques=["T1562.008"],
        description=(
            "VPC flow logs or Route 53 Resolver query logging were deleted: the network record of "
            "exfiltration and command traffic goes dark."
        ),
    ),
    [
        Call(("ec2",), "DeleteFlowLogs", "deleting flow logs"),
        Call(("route53resolver",), "DeleteResolverQueryLogConfig"),
        Call(("route53resolver",), "DisassociateResolverQueryLogConfig"),
        Call(("route53",), "DeleteQueryLoggingConfig", severity=Severity.medium),
    ],
)


def _cluster_logging_off(s: Subject) -> str | None:
    off: list[str] = []
    for entry in as_list(dig(s.params, "logging", "clusterLogging")):
        if isinstance(entry, dict) and falsy(entry.get("enabled")):
            off.extend(str(t) for t in as_list(entry.get("types")))
    return f"turning off cluster logs {sorted(off)}" if off else None


table_rule(
    _spec(
        "aws.protection-removed",
        title="Protective control removed",
        severity=Severity.medium,
        tactics=["TA0005"],
        techniques=["T1562.001"],
        description=(
            "A web ACL was detached, default EBS encryption turned off, model guardrails deleted,"
            " EKS control plane logs turned off, alarms or log subscriptions"
            " removed."
        ),
    ),
    [
        Call(("wafv2", "waf-regional", "waf"), "DisassociateWebACL", severity=Severity.high),
        Call(("wafv2", "waf-regional", "waf"), "DeleteWebACL"),
        Call(("ec2",), "DisableEbsEncryptionByDefault"),
        Call(("bedrock",), "DeleteGuardrail"),
        Call(("bedrock",), "UpdateGuardrail", severity=Severity.low, routine=True),
        Call(("eks",), "UpdateClusterConfig", severity=Severity.high, when=_cluster_logging_off),
        Call(("monitoring",), "DeleteAlarms", severity=Severity.low, routine=True),
        Call(("monitoring",), "DisableAlarmActions", severity=Severity.low, routine=True),
        Call(("logs",), "DeleteLogGroup", severity=Severity.low, routine=True),
        Call(("logs",), "DeleteSubscriptionFilter", severity=Severity.low, routine=True),
        Call(("shield",), "DeleteProtection"),
    ],
)


def _versioning(s: Subject) -> str | None:
    config = s.params.get("VersioningConfiguration")
    if not isinstance(config, dict):
        return None
    found = []
    if str(config.get("Status", "")).lower() in ("suspended", "disabled"):
        found.append("suspending versioning")
    if str(config.get("MfaDelete", "")).lower() == "disabled":
        found.append("turning off MFA delete")
    bucket = s.params.get("bucketName", "?")
    return f"on bucket {bucket}, " + " and ".join(found) if found else None


def _logging_off(s: Subject) -> str | None:
    status = s.params.get("BucketLoggingStatus")
    if not isinstance(status, dict) or status.get("LoggingEnabled"):
        return None
    return f"turning off access logging of bucket {s.params.get('bucketName', '?')}"


def _bucket(s: Subject) -> str | None:
    return f"on bucket {s.params.get('bucketName', '?')}"


table_rule(
    _spec(
        "aws.s3-protection-weakened",
        title="S3 bucket protection weakened",
        severity=Severity.medium,
        tactics=["TA0005", "TA0040"],
        techniques=["T1562.001", "T1490"],
        description=(
            "Versioning suspended, MFA delete or default encryption removed, access logging or "
            "replication turned off: the steps before destroying or quietly taking data."
        ),
    ),
    [
        Call(("s3",), "PutBucketVersioning", when=_versioning),
        Call(("s3",), "PutBucketLogging", when=_logging_off),
        Call(("s3",), "DeleteBucketEncryption", when=_bucket),
        Call(("s3",), "DeleteBucketReplication", when=_bucket, routine=True),
    ],
)


def _deletion_protection(s: Subject) -> str | None:
    p = s.params
    found = []
    if falsy(p.get("deletionProtection")):
        found.append("turning off deletion protection")
    if str(p.get("backupRetentionPeriod", "")) == "0":
        found.append("turning off automated backups")
    target = p.get("dBInstanceIdentifier") or p.get("dBClusterIdentifier") or "?"
    return f"on {target}, " + " and ".join(found) if found else None


def _db_deleted(s: Subject) -> str | None:
    p = s.params
    target = p.get("dBInstanceIdentifier") or p.get("dBClusterIdentifier") or "?"
    if truthy(p.get("skipFinalSnapshot")):
        return f"deleting {target} without a final snapshot"
    return f"deleting {target}"


table_rule(
    _spec(
        "aws.database-protection-weakened",
        title="Database backups or deletion protection removed",
        severity=Severity.medium,
        tactics=["TA0040", "TA0005"],
        techniques=["T1490", "T1485"],
        description=(
            "RDS deletion protection or automated backups turned off, backups or snapshots "
            "deleted, activity streams stopped, databases deleted."
        ),
    ),
    [
        Call(("rds",), "ModifyDBInstance", when=_deletion_protection),
        Call(("rds",), "ModifyDBCluster", when=_deletion_protection),
        Call(("rds",), "DeleteDBInstanceAutomatedBackup", severity=Severity.high),
        Call(("rds",), "DeleteDBClusterAutomatedBackup", severity=Severity.high),
        Call(("rds",), "StopActivityStream", severity=Severity.high),
        Call(("rds",), "DeleteDBSnapshot", routine=True),
        Call(("rds",), "DeleteDBClusterSnapshot", routine=True),
        Call(("rds",), "DeleteDBInstance", when=_db_deleted, routine=True),
        Call(("rds",), "DeleteDBCluster", when=_db_deleted, routine=True),
        Call(
            ("dynamodb",),
            "UpdateContinuousBackups",
            when=lambda s: (
                "turning off point-in-time recovery"
                if falsy(
                    dig(s.params, "pointInTimeRecoverySpecification", "pointInTimeRecoveryEnabled")
                )
                else None
            ),
        ),
        Call(("backup",), "DeleteBackupVault", routine=True),
        Call(("backup",), "DeleteRecoveryPoint", severity=Severity.low, routine=True),
    ],
)


def _master_password(s: Subject) -> str | None:
    return "changing the master password" if "masterUserPassword" in s.params else None


table_rule(
    _spec(
        "aws.database-access-changed",
        title="Database credentials or roles changed",
        severity=Severity.low,
        tactics=["TA0003"],
        techniques=["T1098"],
        description=(
            "An RDS master password was reset or an IAM role attached to a database: both give "
            "someone new a way in."
        ),
    ),
    [
        Call(
            ("rds",),
            "ModifyDBInstance",
            severity=Severity.medium,
            when=_master_password,
            routine=True,
        ),
        Call(
            ("rds",),
            "ModifyDBCluster",
            severity=Severity.medium,
            when=_master_password,
            routine=True,
        ),
        Call(("rds",), "AddRoleToDBInstance", routine=True),
        Call(("rds",), "AddRoleToDBCluster", routine=True),
    ],
)

table_rule(
    _spec(
        "aws.database-disruption",
        title="Database rebooted, failed over or stopped",
        severity=Severity.low,
        tactics=["TA0040"],
        techniques=["T1529", "T1489"],
        description=(
            "Reboots, failovers and stops by hand interrupt service; routine for a DBA, notable "
            "from anyone else."
        ),
    ),
    [
        Call(("rds",), "RebootDBInstance", routine=True),
        Call(("rds",), "RebootDBCluster", routine=True),
        Call(("rds",), "FailoverDBCluster", routine=True),
        Call(("rds",), "FailoverGlobalCluster", routine=True),
        Call(("rds",), "StopDBInstance", routine=True),
        Call(("rds",), "StopDBCluster", routine=True),
    ],
)


def _by_hand(s: Subject) -> str | None:
    """A snapshot someone took, as opposed to AWS Backup or infrastructure-as-code."""
    p = s.event.principal
    if p.type == "aws_service" or p.invoked_by or ua_family(s.event.user_agent) in _IAC:
        return None
    source = pick(s.params, "dBInstanceIdentifier", "dBClusterIdentifier") or "?"
    name = pick(s.params, "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier") or "?"
    return f"snapshotting {source} as {name}"


def _cross_region(s: Subject) -> str | None:
    source = s.params.get("sourceRegion")
    if source and source != s.event.region:
        return f"from {source} to {s.event.region}"
    return None


table_rule(
    _spec(
        "aws.database-export",
        title="Database snapshot taken by hand, exported or copied out of region",
        severity=Severity.medium,
        tactics=["TA0010", "TA0009"],
        techniques=["T1537", "T1530"],
        description=(
            "An RDS snapshot export to S3 or a cross-region snapshot copy moves a whole database "
            "somewhere else; a snapshot taken by hand (not by AWS Backup or a pipeline) is the "
            "step before sharing or restoring it elsewhere (low)."
        ),
    ),
    [
        Call(("rds",), "StartExportTask", routine=True),
        Call(("rds",), "CreateDBSnapshot", when=_by_hand, severity=Severity.low, routine=True),
        Call(
            ("rds",), "CreateDBClusterSnapshot", when=_by_hand, severity=Severity.low, routine=True
        ),
        Call(("rds",), "CopyDBSnapshot", when=_cross_region, routine=True),
        Call(("rds",), "CopyDBClusterSnapshot", when=_cross_region, routine=True),
    ],
)

table_rule(
    _spec(
        "aws.database-log-download",
        title="Database log files downloaded",
        severity=Severity.low,
        tactics=["TA0009"],
        techniques=["T1005"],
        description=("Database logs can hold queries, user names and data."),
    ),
    [
        Call(("rds",), "DownloadDBLogFilePortion", routine=True),
        Call(("rds",), "DownloadCompleteDBLogFile", routine=True),
    ],
)


def _public_or_shared(s: Subject) -> str | None:
    found = [k for k in ("includePublic", "includeShared") if truthy(s.params.get(k))]
    return (
        "listing " + " and ".join(found).replace("include", "").lower() + " snapshots"
        if (found)
        else None
    )


table_rule(
    _spec(
        "aws.snapshot-discovery",
        title="Public or shared snapshots enumerated",
        severity=Severity.low,
        tactics=["TA0007"],
        techniques=["T1580"],
        description=(
            "Listing snapshots shared with the account or public ones is how data that was shared "
            "out is found again."
        ),
    ),
    [
        Call(("rds",), "DescribeDBSnapshots", when=_public_or_shared, routine=True),
        Call(("rds",), "DescribeDBClusterSnapshots", when=_public_or_shared, routine=True),
    ],
)


def _key_deletion(s: Subject) -> str | None:
    days = s.params.get("pendingWindowInDays")
    key = s.params.get("keyId", "?")
    return f"for key {key}" + (f" in {days} days" if days else "")


table_rule(
    _spec(
        "aws.kms-key-disabled",
        title="KMS key scheduled for deletion or disabled",
        severity=Severity.medium,
        tactics=["TA0040"],
        techniques=["T1485", "T1486"],
        description=(
            "Data encrypted under a deleted key is gone for good; disabling a key stops everything"
            " that depends on it."
        ),
    ),
    [
        Call(("kms",), "ScheduleKeyDeletion", when=_key_deletion),
        Call(("kms",), "DisableKey", when=_key_deletion, routine=True),
    ],
)

LEAVE_ORG = _spec(
    "aws.leave-organization",
    title="Account leaving its organization",
    severity=Severity.critical,
    tactics=["TA0005", "TA0040"],
    techniques=["T1666"],
    description=(
        "An account left or was removed from the organization: service control policies, "
        "organization trails and delegated security services no longer apply to it."
    ),
)


@rule(
    LEAVE_ORG,
    names=["LeaveOrganization", "RemoveAccountFromOrganization", "DeleteOrganization"],
)
def _leave_org(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "organizations":
        return None
    target = s.params.get("accountId")
    return Hit(summary=s.called(f"for account {target}" if target else ""))


ENABLE_REGION = _spec(
    "aws.opt-in-region-enabled",
    title="Opt-in region enabled",
    severity=Severity.medium,
    tactics=["TA0005"],
    techniques=["T1535"],
    description=(
        "A new region was enabled; regions nobody watches are where attackers run resources."
    ),
)


@rule(ENABLE_REGION, names=["EnableRegion"])
def _enable_region(s: Subject, cfg: RuleConfig) -> Hit | None:
    region = s.params.get("RegionName") or s.params.get("regionName") or "?"
    return Hit(summary=s.called(f"enabling {region}"), discriminator=str(region))


# --- IAM persistence and privilege ------------------------------------------------------------


def _own_names(s: Subject) -> set[str]:
    """The names a caller acts on itself by (IAM compares names without case)."""
    p = s.event.principal
    names = {n.casefold() for n in (p.session_name,) if n}
    if p.type == "iam_user" and p.name:
        names.add(p.name.casefold())
    return names


def _other_user(s: Subject) -> str | None:
    target = s.params.get("userName")
    if not target or str(target).casefold() in _own_names(s):
        return None
    return str(target)


KEY_FOR_OTHER = _spec(
    "aws.iam-access-key-for-other-user",
    title="Access key created for another user",
    severity=Severity.high,
    tactics=["TA0003"],
    techniques=["T1098.001"],
    description=(
        "A principal created an access key for a different IAM user: a classic backdoor that "
        "survives the original credentials being revoked."
    ),
)


@rule(KEY_FOR_OTHER, names=["CreateAccessKey"])
def _key_for_other(s: Subject, cfg: RuleConfig) -> Hit | None:
    target = _other_user(s)
    if target is None:
        return None
    return Hit(summary=s.called(f"for user {target}"), discriminator=target.casefold())


LOGIN_PROFILE_FOR_OTHER = _spec(
    "aws.iam-login-profile-for-other-user",
    title="Console password set for another user",
    severity=Severity.high,
    tactics=["TA0003"],
    techniques=["T1098"],
    description=(
        "A principal created or changed the console password of a different IAM user without "
        "forcing a reset: it can now sign in as them."
    ),
)


@rule(LOGIN_PROFILE_FOR_OTHER, names=["CreateLoginProfile", "UpdateLoginProfile"])
def _login_profile(s: Subject, cfg: RuleConfig) -> Hit | None:
    target = _other_user(s)
    if target is None or truthy(s.params.get("passwordResetRequired")):
        return None
    return Hit(summary=s.called(f"for user {target}"), discriminator=target.casefold())


TRUST_OPENED = _spec(
    "aws.iam-trust-opened",
    title="Role trust opened to another account or anyone",
    severity=Severity.high,
    tactics=["TA0003", "TA0004"],
    techniques=["T1098.003", "T1199"],
    description=(
        "A role's trust policy now lets a foreign account, or anyone, assume it (without an "
        "organization, account or source condition)."
    ),
)


@rule(TRUST_OPENED, names=["UpdateAssumeRolePolicy", "CreateRole"])
def _trust_opened(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "iam":
        return None
    document = s.params.get("policyDocument") or s.params.get("assumeRolePolicyDocument")
    public, foreign = grants_outside(document, own=s.event.account, known=cfg.known_accounts)
    role = s.params.get("roleName", "?")
    if public:
        return Hit(
            summary=s.called(f"letting anyone (*) assume role {role}"),
            severity=Severity.critical,
        )
    if foreign:
        return Hit(summary=s.called(f"letting account(s) {sorted(foreign)} assume role {role}"))
    return None


_ADMIN_POLICIES = frozenset(("administratoraccess", "iamfullaccess"))

ADMIN_GRANTED = _spec(
    "aws.iam-admin-granted",
    title="Administrator rights granted",
    severity=Severity.high,
    tactics=["TA0004", "TA0003"],
    techniques=["T1098.003"],
    description=(
        "AdministratorAccess (or IAMFullAccess, which reaches the same) was attached, or an inline"
        " policy allowing every action on every resource was written."
    ),
)


@rule(
    ADMIN_GRANTED,
    names=[
        "AttachUserPolicy",
        "AttachRolePolicy",
        "AttachGroupPolicy",
        "PutUserPolicy",
        "PutRolePolicy",
        "PutGroupPolicy",
        "CreatePolicyVersion",
        "CreatePolicy",
    ],
)
def _admin_granted(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "iam":
        return None
    p = s.params
    target = p.get("userName") or p.get("roleName") or p.get("groupName") or p.get("policyArn")
    name = base_name(s.event.action.name)
    if name.startswith("Attach"):
        policy = str(p.get("policyArn") or "").rsplit("/", 1)[-1]
        if policy.casefold() not in _ADMIN_POLICIES:
            return None
        return Hit(summary=s.called(f"attaching {policy} to {target}"), discriminator=str(target))
    if not allows_everything(p.get("policyDocument")):
        return None
    if name == "CreatePolicyVersion" and not truthy(p.get("setAsDefault")):
        return None
    severity = Severity.medium if name == "CreatePolicy" else None
    return Hit(
        summary=s.called(f"with a policy allowing every action on every resource ({target})"),
        severity=severity,
        discriminator=str(target),
    )


QUARANTINED = _spec(
    "aws.iam-credentials-quarantined",
    title="AWS quarantined exposed credentials",
    severity=Severity.high,
    tactics=["TA0006"],
    techniques=["T1552.001"],
    description=(
        "AWS attached its compromised-key quarantine policy to a user: the user's access key was "
        "found exposed in public. Assume it was used."
    ),
)


@rule(QUARANTINED, names=["AttachUserPolicy", "PutUserPolicy"])
def _quarantined(s: Subject, cfg: RuleConfig) -> Hit | None:
    marker = str(s.params.get("policyArn") or s.params.get("policyName") or "")
    if "CompromisedKeyQuarantine" not in marker and "ExposedCredential" not in marker:
        return None
    user = s.params.get("userName", "?")
    return Hit(summary=f"{marker.rsplit('/', 1)[-1]} was applied to user {user}")


USER_CREATED = _spec(
    "aws.iam-user-created-by-hand",
    title="IAM user created outside infrastructure-as-code",
    severity=Severity.low,
    tactics=["TA0003"],
    techniques=["T1136.003"],
    description=(
        "A new IAM user was created from the console or a script rather than the usual "
        "infrastructure pipeline."
    ),
)


@rule(USER_CREATED, names=["CreateUser"])
def _user_created(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "iam" or ua_family(s.event.user_agent) in _IAC:
        return None
    return Hit(
        summary=s.called(f"creating user {s.params.get('userName', '?')}"),
        routine_key="CreateUser",
    )


IDP_CHANGED = _spec(
    "aws.identity-provider-changed",
    title="SAML or OIDC identity provider changed",
    severity=Severity.medium,
    tactics=["TA0003", "TA0005"],
    techniques=["T1484.002", "T1556"],
    description=(
        "A federation trust was added, changed or removed: whoever controls the provider can mint "
        "sessions in the account."
    ),
)


@rule(
    IDP_CHANGED,
    names=[
        "CreateSAMLProvider",
        "UpdateSAMLProvider",
        "DeleteSAMLProvider",
        "CreateOpenIDConnectProvider",
        "DeleteOpenIDConnectProvider",
        "UpdateOpenIDConnectProviderThumbprint",
        "AddClientIDToOpenIDConnectProvider",
    ],
)
def _idp_changed(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.event.principal
    if p.type == "aws_service" or (p.iam_arn or "").endswith(":role/AWSServiceRoleForSSO"):
        return None
    return Hit(summary=s.called())


EKS_ADMIN = _spec(
    "aws.eks-cluster-admin-granted",
    title="EKS cluster administrator access granted",
    severity=Severity.high,
    tactics=["TA0004", "TA0003"],
    techniques=["T1098"],
    description=(
        "An EKS access entry or access policy now gives a principal cluster-admin (or "
        "system:masters) on a cluster."
    ),
)


@rule(EKS_ADMIN, names=["CreateAccessEntry", "AssociateAccessPolicy", "UpdateAccessEntry"])
def _eks_admin(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "eks":
        return None
    p = s.params
    who = p.get("principalArn", "?")
    cluster = p.get("name") or p.get("clusterName") or "?"
    policy = str(p.get("policyArn") or "")
    if policy.endswith(("/AmazonEKSClusterAdminPolicy", "/AmazonEKSAdminPolicy")):
        return Hit(
            summary=s.called(f"giving {who} {policy.rsplit('/', 1)[-1]} on cluster {cluster}"),
            discriminator=str(who),
        )
    if "system:masters" in [str(g) for g in as_list(p.get("kubernetesGroups"))]:
        return Hit(
            summary=s.called(f"putting {who} in system:masters on cluster {cluster}"),
            discriminator=str(who),
        )
    return None


LAMBDA_BY_PERSON = _spec(
    "aws.lambda-changed-by-person",
    title="Lambda code or layers changed by a person",
    severity=Severity.medium,
    tactics=["TA0003", "TA0002"],
    techniques=["T1525", "T1648"],
    description=(
        "A person (IAM user, SSO or federated session) replaced a function's code or added "
        "layers by hand instead of through the deployment pipeline (a way to plant code that "
        "runs with the function's role), or deleted a function."
    ),
)


@rule(
    LAMBDA_BY_PERSON,
    names=["UpdateFunctionCode", "UpdateFunctionConfiguration", "DeleteFunction"],
)
def _lambda_by_person(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.event.principal
    if s.event.action.service != "lambda":
        return None
    if not (p.type in ("iam_user", "federated_user", "root") or is_human(p)):
        return None
    function = s.params.get("functionName", "?")
    name = base_name(s.event.action.name)
    if name == "DeleteFunction":
        return Hit(
            summary=s.called(f"deleting {function}"),
            severity=Severity.low,
            routine_key=f"delete:{function}",
        )
    if name == "UpdateFunctionConfiguration":
        layers = s.params.get("layers") or s.response.get("layers")
        if not layers:
            return None
        return Hit(
            summary=s.called(f"adding layers to {function}"), routine_key=f"layers:{function}"
        )
    return Hit(summary=s.called(f"replacing the code of {function}"), routine_key=str(function))


LAMBDA_PERMISSION = _spec(
    "aws.lambda-permission-opened",
    title="Lambda function opened to anyone or another account",
    severity=Severity.high,
    tactics=["TA0003", "TA0010"],
    techniques=["T1098", "T1648"],
    description=(
        "A resource policy statement lets anyone, or a foreign account, invoke a function or use a"
        " layer."
    ),
)


@rule(
    LAMBDA_PERMISSION,
    names=[
        "AddPermission",
        "AddLayerVersionPermission",
        "CreateFunctionUrlConfig",
        "UpdateFunctionUrlConfig",
    ],
)
def _lambda_permission(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "lambda":
        return None
    p = s.params
    target = p.get("functionName") or p.get("layerName") or "?"
    if base_name(s.event.action.name).endswith("FunctionUrlConfig"):
        if str(p.get("authType", "")).upper() == "NONE":
            return Hit(
                summary=s.called(f"giving {target} a public URL without authentication"),
                severity=Severity.medium,
            )
        return None
    principal = str(p.get("principal") or "")
    if p.get("sourceArn") or p.get("sourceAccount") or p.get("principalOrgID"):
        return None
    if principal == "*":
        return Hit(summary=s.called(f"letting anyone invoke {target}"))
    account = principal_account(principal)
    if account and account != s.event.account and account not in cfg.known_accounts:
        return Hit(
            summary=s.called(f"letting account {account} invoke {target}"),
            severity=Severity.medium,
        )
    return None


# --- data exposure ----------------------------------------------------------------------------


def _is_account(value: str) -> bool:
    return len(value) == 12 and value.isascii() and value.isdigit()


SNAPSHOT_SHARED = _spec(
    "aws.snapshot-shared",
    title="Snapshot or image shared outside the organization",
    severity=Severity.high,
    tactics=["TA0010"],
    techniques=["T1537"],
    description=(
        "An EBS snapshot, AMI or RDS snapshot was shared with a foreign account or made public: "
        "the fastest way to copy a whole disk or database out."
    ),
)


@rule(
    SNAPSHOT_SHARED,
    names=[
        "ModifySnapshotAttribute",
        "ModifyImageAttribute",
        "ModifyDBSnapshotAttribute",
        "ModifyDBClusterSnapshotAttribute",
    ],
)
def _snapshot_shared(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.params
    name = base_name(s.event.action.name)
    added: list[str] = []
    if name in ("ModifySnapshotAttribute", "ModifyImageAttribute"):
        key = "createVolumePermission" if name == "ModifySnapshotAttribute" else "launchPermission"
        for item in items(dig(p, key, "add")):
            if not isinstance(item, dict):
                continue
            if str(item.get("group", "")).lower() == "all":
                added.append("all")
            elif item.get("userId"):
                added.append(str(item["userId"]))
        target = p.get("snapshotId") or p.get("imageId") or "?"
    else:
        if str(p.get("attributeName", "")).lower() != "restore":
            return None
        added = [str(v) for v in as_list(p.get("valuesToAdd"))]
        target = p.get("dBSnapshotIdentifier") or p.get("dBClusterSnapshotIdentifier") or "?"
    if "all" in (a.lower() for a in added):
        return Hit(summary=s.called(f"making {target} public"), severity=Severity.critical)
    foreign = sorted(
        a for a in added if _is_account(a) and a != s.event.account and a not in cfg.known_accounts
    )
    if not foreign:
        return None
    return Hit(summary=s.called(f"sharing {target} with account(s) {foreign}"))


_POLICY_CALLS = (
    "PutBucketPolicy",
    "PutBucketAcl",
    "SetRepositoryPolicy",
    "PutRegistryPolicy",
    "PutKeyPolicy",
    "CreateKey",
    "SetQueueAttributes",
    "CreateQueue",
    "SetTopicAttributes",
    "CreateTopic",
    "PutResourcePolicy",
    "CreateElasticsearchDomain",
    "UpdateElasticsearchDomainConfig",
    "CreateDomain",
    "UpdateDomainConfig",
    "SetVaultAccessPolicy",
    "PutRepositoryPermissionsPolicy",
    "PutFileSystemPolicy",
    "PutBackupVaultAccessPolicy",
    "PutAccessPointPolicy",
    "PutMultiRegionAccessPointPolicy",
)
_PUBLIC_GROUPS = ("global/AllUsers", "global/AuthenticatedUsers")
_PUBLIC_CANNED = frozenset(("public-read", "public-read-write", "authenticated-read"))


def _documents(value: Any, depth: int = 0) -> Iterator[Any]:
    """Policy documents anywhere in a request: as dicts, JSON text, or URL-encoded text."""
    if depth > 5:
        return
    if isinstance(value, str):
        if "Statement" in value:
            doc = load_json(value)
            if isinstance(doc, dict) and "Statement" in doc:
                yield doc
        return
    if isinstance(value, dict):
        if "Statement" in value:
            yield value
            return
        for item in value.values():
            yield from _documents(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _documents(item, depth + 1)


def _public_acl(params: dict[str, Any]) -> bool:
    for canned in as_list(params.get("x-amz-acl")):
        if str(canned).lower() in _PUBLIC_CANNED:
            return True
    for key, value in params.items():
        if key.startswith("x-amz-grant") and any(g in str(value) for g in _PUBLIC_GROUPS):
            return True
    grants = dig(params, "AccessControlPolicy", "AccessControlList", "Grant")
    for grant in as_list(grants):
        uri = str(dig(grant, "Grantee", "URI") or "")
        if any(group in uri for group in _PUBLIC_GROUPS):
            return True
    return False


POLICY_OPENED = _spec(
    "aws.resource-policy-opened",
    title="Resource policy opened to the public or another account",
    severity=Severity.high,
    tactics=["TA0010", "TA0003"],
    techniques=["T1537", "T1098"],
    description=(
        "A bucket, key, queue, topic, repository, secret or domain policy (or a bucket ACL) now "
        "allows anyone, or a foreign account, with no organization, network or source condition."
    ),
)


@rule(POLICY_OPENED, names=_POLICY_CALLS)
def _policy_opened(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.params
    target = (
        p.get("bucketName")
        or p.get("repositoryName")
        or p.get("keyId")
        or p.get("queueUrl")
        or p.get("topicArn")
        or p.get("secretId")
        or p.get("domainName")
        or p.get("vaultName")
        or p.get("resourceArn")
        or ""
    )
    detail = f" on {target}" if target else ""
    if _public_acl(p):
        return Hit(summary=s.called(f"granting public access through an ACL{detail}"))
    public = False
    foreign: set[str] = set()
    for document in _documents(p):
        doc_public, doc_foreign = grants_outside(
            document, own=s.event.account, known=cfg.known_accounts
        )
        public = public or doc_public
        foreign |= doc_foreign
    if public:
        return Hit(summary=s.called(f"with a policy that allows anyone (*){detail}"))
    if foreign:
        return Hit(
            summary=s.called(f"with a policy that allows account(s) {sorted(foreign)}{detail}"),
            severity=Severity.medium,
            routine_key=f"{target}:{','.join(sorted(foreign))}",
        )
    return None


_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

PUBLIC_ACCESS_BLOCK = _spec(
    "aws.s3-public-access-block-removed",
    title="S3 Block Public Access removed",
    severity=Severity.high,
    tactics=["TA0005", "TA0010"],
    techniques=["T1562.001", "T1530"],
    description=(
        "The guard that keeps buckets from being made public was deleted or switched off for a "
        "bucket or the whole account."
    ),
)


@rule(
    PUBLIC_ACCESS_BLOCK,
    names=[
        "DeleteBucketPublicAccessBlock",
        "DeleteAccountPublicAccessBlock",
        "DeletePublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutAccountPublicAccessBlock",
        "PutPublicAccessBlock",
    ],
)
def _public_access_block(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service not in ("s3", "s3-control"):
        return None
    scope = s.params.get("bucketName") or f"account {s.event.account}"
    if base_name(s.event.action.name).startswith("Delete"):
        return Hit(summary=s.called(f"for {scope}"))
    config = s.params.get("PublicAccessBlockConfiguration")
    if not isinstance(config, dict):
        return None
    off = [flag for flag in _BLOCK_FLAGS if falsy(config.get(flag))]
    if not off:
        return None
    return Hit(summary=s.called(f"for {scope}, turning off {', '.join(off)}"))


def _publicly_accessible(s: Subject) -> str | None:
    public = truthy(s.params.get("publiclyAccessible"))
    if not public and not base_name(s.event.action.name).startswith("Modify"):
        # A new or restored instance reports the setting it got, default or not.
        public = truthy(s.response.get("publiclyAccessible"))
    if not public:
        return None
    target = (
        s.params.get("dBInstanceIdentifier")
        or s.params.get("dBClusterIdentifier")
        or s.params.get("clusterIdentifier")
        or "?"
    )
    return f"making {target} reachable from the internet"


def _project_public(s: Subject) -> str | None:
    visibility = str(s.params.get("projectVisibility") or "")
    return (
        f"making project {s.params.get('projectArn', '?')} {visibility}"
        if (visibility.upper().startswith("PUBLIC"))
        else None
    )


table_rule(
    _spec(
        "aws.resource-made-public",
        title="Resource made reachable from the internet",
        severity=Severity.high,
        tactics=["TA0010", "TA0001"],
        techniques=["T1530", "T1133"],
        description=(
            "A database or cluster was made publicly accessible, or a build project public."
        ),
    ),
    [
        Call(("rds",), name, when=_publicly_accessible)
        for name in (
            "ModifyDBInstance",
            "ModifyDBCluster",
            "CreateDBInstance",
            "RestoreDBInstanceFromDBSnapshot",
            "RestoreDBInstanceToPointInTime",
            "RestoreDBClusterFromSnapshot",
        )
    ]
    + [
        Call(("redshift",), "ModifyCluster", when=_publicly_accessible),
        Call(("redshift",), "CreateCluster", when=_publicly_accessible),
        Call(("codebuild",), "UpdateProjectVisibility", when=_project_public),
    ],
)

_RANSOM_NOTE = re.compile(
    r"(how|read|help)[_\- ]?(to|me)?[_\- ]?(decrypt|restore|recover)|decrypt[_\- ]?(files|"
    r"instructions)|ransom|recover[_\- ]?(your|my)?[_\- ]?files|restore[_\- ]?files",
    re.I,
)

RANSOM_NOTE = _spec(
    "aws.s3-ransom-note",
    title="Ransom note written to S3",
    severity=Severity.high,
    tactics=["TA0040"],
    techniques=["T1486"],
    description=(
        "An object named like a ransom note (how to decrypt / restore your files) was uploaded."
    ),
)


@rule(RANSOM_NOTE, names=["PutObject", "CopyObject", "CompleteMultipartUpload"])
def _ransom_note(s: Subject, cfg: RuleConfig) -> Hit | None:
    key = str(s.params.get("key") or "")
    name = key.rsplit("/", 1)[-1]
    if not name or not _RANSOM_NOTE.search(name):
        return None
    return Hit(summary=s.called(f"writing {key} to bucket {s.params.get('bucketName', '?')}"))


CUSTOMER_KEY = _spec(
    "aws.s3-encrypted-with-outside-key",
    title="S3 objects re-encrypted with a key the organization does not hold",
    severity=Severity.high,
    tactics=["TA0040"],
    techniques=["T1486"],
    description=(
        "Objects were written or copied in place with a customer-provided key (SSE-C) or a KMS key"
        " of a foreign account: ransomware that leaves the data unreadable without the attacker."
    ),
)


@rule(CUSTOMER_KEY, names=["PutObject", "CopyObject", "UploadPartCopy", "CreateMultipartUpload"])
def _customer_key(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.params
    bucket = p.get("bucketName", "?")
    if p.get("x-amz-server-side-encryption-customer-algorithm"):
        return Hit(
            summary=s.called(f"on bucket {bucket} with a customer-provided key (SSE-C)"),
            severity=Severity.medium,
        )
    key_id = str(p.get("x-amz-server-side-encryption-aws-kms-key-id") or "")
    parts = key_id.split(":")
    if len(parts) > 4 and _is_account(parts[4]):
        account = parts[4]
        if account != s.event.account and account not in cfg.known_accounts:
            return Hit(summary=s.called(f"on bucket {bucket} with KMS key {key_id}"))
    return None


BULK_SECRETS = _spec(
    "aws.bulk-secret-retrieval",
    title="Many secrets or decrypted parameters read at once",
    severity=Severity.medium,
    tactics=["TA0006"],
    techniques=["T1555.006"],
    description=("One call returned several secrets or decrypted SecureString parameters."),
    min_names=3,
)


@rule(BULK_SECRETS, names=["BatchGetSecretValue", "GetParameters", "GetParametersByPath"])
def _bulk_secrets(s: Subject, cfg: RuleConfig) -> Hit | None:
    name = base_name(s.event.action.name)
    if name == "BatchGetSecretValue":
        return Hit(summary=s.called(), routine_key=name)
    if not truthy(s.params.get("withDecryption")):
        return None
    if name == "GetParametersByPath":
        if not truthy(s.params.get("recursive")):
            return None
        return Hit(
            summary=s.called(f"decrypting everything under {s.params.get('path', '?')}"),
            routine_key=f"{name}:{s.params.get('path')}",
        )
    names = as_list(s.params.get("names"))
    if len(names) < 3:
        return None
    return Hit(summary=s.called(f"decrypting {len(names)} parameters"), routine_key=name)


# --- network exposure ---------------------------------------------------------------------------


SG_OPENED = _spec(
    "aws.network-opened-to-internet",
    title="Network access opened to the internet",
    severity=Severity.high,
    tactics=["TA0005", "TA0001"],
    techniques=["T1562.007", "T1133"],
    description=(
        "A security group, network ACL or DB security group now admits the whole internet (any"
        " /0 network, IPv4 or IPv6) or a very broad range; SSH, RDP or all ports open to the"
        " world are the dangerous cases."
    ),
)

# (network, ports or None for "none a service listens on") of one rule a call adds.
_Opening = tuple[Network, PortRange | None]


def _permission_openings(perm: Any) -> list[_Opening]:
    """The openings of one EC2 IpPermission (or SecurityGroupRuleRequest), whatever its casing."""
    if not isinstance(perm, dict):
        return []
    ports = port_range(pick(perm, "ipProtocol"), pick(perm, "fromPort"), pick(perm, "toPort"))
    found: list[_Opening] = []
    cidrs = [pick(perm, "cidrIp", "cidrIpv4"), pick(perm, "cidrIpv6")]
    for entry in items(pick(perm, "ipRanges")) + items(pick(perm, "ipv6Ranges")):
        cidrs.append(pick(entry, "cidrIp", "cidrIpv6") if isinstance(entry, dict) else entry)
    for cidr in cidrs:
        net = network(cidr)
        if net is not None:
            found.append((net, ports))
    return found


def _ingress_openings(s: Subject, name: str) -> tuple[str, list[_Opening]] | None:
    p = s.params
    if name == "AuthorizeSecurityGroupIngress":
        target = pick(p, "groupId", "groupName") or "?"
        openings = _permission_openings(p)  # the older flat form: CidrIp, FromPort, …
        for perm in items(pick(p, "ipPermissions")):
            openings.extend(_permission_openings(perm))
        return str(target), openings
    if name == "ModifySecurityGroupRules":
        request = pick(p, "ModifySecurityGroupRulesRequest") or p
        target = pick(request, "groupId") or "?"
        openings = []
        for entry in items(pick(request, "securityGroupRule", "securityGroupRules")):
            rule_request = pick(entry, "securityGroupRule") if isinstance(entry, dict) else None
            openings.extend(_permission_openings(rule_request))
        return str(target), openings
    if name in ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry"):
        if truthy(pick(p, "egress")) or str(pick(p, "ruleAction") or "").lower() != "allow":
            return None
        net = network(pick(p, "cidrBlock", "ipv6CidrBlock"))
        span = pick(p, "portRange")
        ports = port_range(pick(p, "aclProtocol", "protocol"), dig(span, "from"), dig(span, "to"))
        return str(pick(p, "networkAclId") or "?"), [] if net is None else [(net, ports)]
    return None


@rule(
    SG_OPENED,
    names=[
        "AuthorizeSecurityGroupIngress",
        "ModifySecurityGroupRules",
        "CreateNetworkAclEntry",
        "ReplaceNetworkAclEntry",
        "AuthorizeDBSecurityGroupIngress",
    ],
)
def _sg_opened(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.params
    name = base_name(s.event.action.name)
    acl = name.endswith("NetworkAclEntry")
    if name == "AuthorizeDBSecurityGroupIngress":
        target = str(pick(p, "dBSecurityGroupName") or "?")
        net = network(pick(p, "cIDRIP"))
        if net is None:
            group = pick(p, "eC2SecurityGroupId", "eC2SecurityGroupName")
            return Hit(
                summary=s.called(f"letting security group {group} reach DB group {target}"),
                severity=Severity.medium,
                routine_key=f"{target}",
            )
        openings: list[_Opening] = [(net, ALL_PORTS)]
    else:
        found = _ingress_openings(s, name)
        if found is None:
            return None
        target, openings = found
    worst: tuple[int, Hit] | None = None
    for net, ports in openings:
        if ports is None:
            continue
        text = port_text(ports)
        admin = every_port(ports) or any(covers(ports, port) for port in cfg.admin_ports)
        if internet_network(net):
            if admin:
                rank, severity = 3, Severity.medium if acl else Severity.high
            else:
                rank, severity = 1, Severity.low
            detail = f"opening {text} of {target} to the whole internet ({net})"
        elif broad_network(net):
            rank, severity = 2, Severity.medium
            detail = f"opening {text} of {target} to the very broad range {net}"
        elif name == "AuthorizeDBSecurityGroupIngress":
            rank, severity = 0, Severity.medium
            detail = f"opening DB security group {target} to {net}"
        else:
            continue
        hit = Hit(
            summary=s.called(detail),
            severity=severity,
            discriminator=target,
            routine_key=f"{target}:{text}" if rank <= 1 else None,
        )
        if worst is None or rank > worst[0]:
            worst = (rank, hit)
    return worst[1] if worst else None


# --- instances and credentials --------------------------------------------------------------------

USERDATA_READ = _spec(
    "aws.instance-userdata-read",
    title="Instance user data read",
    severity=Severity.medium,
    tactics=["TA0006"],
    techniques=["T1552.005"],
    description=(
        "User data scripts often carry passwords and keys; reading them is a step of credential "
        "hunting."
    ),
)


@rule(USERDATA_READ, names=["DescribeInstanceAttribute"], failures=True)
def _userdata_read(s: Subject, cfg: RuleConfig) -> Hit | None:
    if str(s.params.get("attribute", "")) != "userData" or network_of(s.event.source_ip) is None:
        return None
    instance = s.params.get("instanceId", "?")
    refused = "" if s.event.outcome.success else " (refused)"
    return Hit(
        summary=s.called(f"reading the user data of {instance}{refused}"),
        routine_key="userData",
    )


USERDATA_CHANGED = _spec(
    "aws.instance-userdata-modified",
    title="Instance startup script changed",
    severity=Severity.high,
    tactics=["TA0003", "TA0002"],
    techniques=["T1037", "T1059", "T1578.005"],
    description=("New user data runs as root the next time the instance starts."),
)


@rule(USERDATA_CHANGED, names=["ModifyInstanceAttribute"])
def _userdata_changed(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.params
    if "userData" not in p and str(p.get("attribute", "")) != "userData":
        return None
    return Hit(summary=s.called(f"replacing the user data of {p.get('instanceId', '?')}"))


TRAFFIC_MIRROR = _spec(
    "aws.traffic-mirroring",
    title="Traffic mirroring set up",
    severity=Severity.medium,
    tactics=["TA0009"],
    techniques=["T1040"],
    description=(
        "Traffic mirroring copies packets of an instance to another target: a network tap."
    ),
)


@rule(
    TRAFFIC_MIRROR,
    names=[
        "CreateTrafficMirrorSession",
        "CreateTrafficMirrorTarget",
        "CreateTrafficMirrorFilter",
        "CreateTrafficMirrorFilterRule",
        "ModifyTrafficMirrorSession",
        "ModifyTrafficMirrorFilterRule",
        "ModifyTrafficMirrorFilterNetworkServices",
        "DeleteTrafficMirrorTarget",
    ],
)
def _traffic_mirror(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "ec2":
        return None
    return Hit(summary=s.called())


WORKSTATION = _spec(
    "aws.instance-credentials-on-workstation",
    title="Instance credentials used from a workstation",
    severity=Severity.high,
    tactics=["TA0006", "TA0001"],
    techniques=["T1552.005", "T1078.004"],
    description=(
        "An EC2 instance profile's session was used by a tool on macOS or Windows: instances run "
        "neither, so the credentials were taken off the instance."
    ),
)


@rule(WORKSTATION, failures=True)
def _workstation(s: Subject, cfg: RuleConfig) -> Hit | None:
    principal = s.event.principal
    if not is_instance_session(principal):
        return None
    system = desktop_os(s.event.user_agent)
    if system is None:
        return None
    return Hit(
        summary=f"{s.who} (instance credentials) was used from {system} with "
        f"{s.event.user_agent}{s.where}",
        discriminator=system,
    )


OFFENSIVE_TOOL = _spec(
    "aws.offensive-tool-user-agent",
    title="Attack or audit tool in the user agent",
    severity=Severity.high,
    tactics=["TA0007", "TA0043"],
    techniques=["T1580", "T1595"],
    description=(
        "The user agent names a penetration-testing distribution (Kali, Parrot, Pentoo) or a cloud"
        " attack or audit tool (Pacu, ScoutSuite, Prowler, TruffleHog, …)."
    ),
)


@rule(OFFENSIVE_TOOL, failures=True)
def _offensive(s: Subject, cfg: RuleConfig) -> Hit | None:
    tool = offensive_tool(s.event.user_agent)
    if tool is None:
        return None
    return Hit(
        summary=s.called(f"with a user agent naming {tool} ({s.event.user_agent})"),
        discriminator=tool,
    )


VPCE_DENIED = _spec(
    "aws.vpc-endpoint-denied",
    title="Request refused by a VPC endpoint policy",
    severity=Severity.low,
    tactics=["TA0007", "TA0010"],
    techniques=["T1530"],
    description=(
        "A VPC endpoint policy refused a request: something inside the network tried to reach a "
        "resource outside what the endpoint allows."
    ),
)


@rule(VPCE_DENIED, failures=True, successes=False)
def _vpce_denied(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.outcome.error_code != "VpceAccessDenied":
        return None
    return Hit(summary=s.called("and was refused by the VPC endpoint policy"))


MFA_FAILED = _spec(
    "aws.console-mfa-failed",
    title="Console sign-in with the right password failed at MFA",
    severity=Severity.medium,
    tactics=["TA0006", "TA0001"],
    techniques=["T1110", "T1621"],
    description=(
        "A sign-in got past the password and failed the MFA challenge: someone has the password."
    ),
)


@rule(MFA_FAILED, names=["ConsoleLogin"], failures=True, successes=False)
def _mfa_failed(s: Subject, cfg: RuleConfig) -> Hit | None:
    p = s.event.principal
    if p.type == "root" or p.mfa is not True:
        return None
    return Hit(summary=f"{s.who} passed the password check but failed MFA{s.where}")


VPCE_ANOMALY = _spec(
    "aws.vpc-endpoint-anomaly",
    title="Unexpected request through a VPC endpoint",
    severity=Severity.medium,
    tactics=["TA0010", "TA0001"],
    techniques=["T1537", "T1078.004"],
    description=(
        "A request through one of the organization's VPC endpoints came with the credentials "
        "of a foreign account: data leaving through the private network."
    ),
)


@rule(VPCE_ANOMALY, failures=True)
def _vpce_anomaly(s: Subject, cfg: RuleConfig) -> Hit | None:
    event = s.event
    if not event.vpc_endpoint_id:
        return None
    caller = event.principal.account
    if (
        caller
        and event.account
        and caller != event.account
        and caller not in cfg.known_accounts
        and event.principal.type != "aws_service"
    ):
        return Hit(
            summary=s.called(f"with credentials of account {caller} via {event.vpc_endpoint_id}"),
            discriminator=f"account:{caller}",
        )
    return None
