"""``harvester doctor``: check a source's AWS access step by step and explain what is wrong.

Each step is ``ok``, ``warn``, ``fail`` or ``skip`` with a one-line message and, when it is
not ok, a fix. Steps run in order and later ones skip when what they need failed; a wrong
bucket region does not stop the rest (the remaining checks use the real region). Nothing here
prints: :func:`render_table` and :func:`report_to_json` give the CLI what to show.

Policy analysis is static (``harvester.aws.policy_eval``): what the bucket policy and the
role's identity policies say about ``s3:GetObject`` and ``s3:ListBucket`` for the harvesting
principal. What it cannot see (SCPs, permissions boundaries, KMS key policies) the live
calls of the earlier steps prove or disprove.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from harvester.aws import policy_eval
from harvester.aws.errors import (
    AccessDenied,
    AssumeRoleRefused,
    AwsError,
    KmsAccessDenied,
    NoCredentials,
    NoSuchBucket,
    NotFound,
    WrongRegion,
    aws_errors,
    sanitize,
)
from harvester.aws.identity import SourceInfo, arn_account, mask_key_id
from harvester.aws.s3 import (
    ObjectInfo,
    ObjectMeta,
    bucket_region,
    get_bucket_encryption,
    get_bucket_policy,
    head_object,
    iter_objects,
    list_prefixes,
    open_object,
)
from harvester.clock import Clock
from harvester.sources import discovery, layouts
from harvester.sources.s3lister import S3Lister
from harvester.terminal import cell, printable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from harvester.aws.session import AwsSessions

__all__ = [
    "Discovery",
    "DoctorReport",
    "Status",
    "Step",
    "discover",
    "iter_failures",
    "render_table",
    "report_to_json",
    "run_doctor",
]

log = logging.getLogger(__name__)

# Bytes read from the newest object: enough to prove GetObject (and kms:Decrypt) works.
PROBE_BYTES = 512
# CloudTrail delivers about every five minutes; a day without a file means it stopped.
STALE_CLOUDTRAIL = timedelta(hours=24)
_GZIP_MAGIC = b"\x1f\x8b"
_YEAR = re.compile(r"[0-9]{4}")
_TWO_DIGITS = re.compile(r"[0-9]{2}")
# How far discovery looks: a doctor run should take seconds, not walk a log archive.
_DISCOVERY_CALLS = 50
_SHOWN = 8


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


_RANK = {Status.SKIP: 0, Status.OK: 1, Status.WARN: 2, Status.FAIL: 3}


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default=Status.OK)


@dataclass(frozen=True)
class Step:
    """One check: what it is, how it went, and what to do when it did not go well."""

    name: str
    title: str
    status: Status
    message: str
    fix: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoctorReport:
    source: SourceInfo
    steps: tuple[Step, ...]
    checked_at: datetime

    @property
    def status(self) -> Status:
        """``fail`` if any step failed, else ``warn`` if any warned, else ``ok``."""
        overall = worst([s.status for s in self.steps])
        return Status.OK if overall is Status.SKIP else overall

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


# --- step names and titles -------------------------------------------------------------------

CREDENTIALS = "credentials"
ASSUME_ROLE = "assume_role"
BUCKET = "bucket"
LIST = "list"
LAYOUT = "layout"
READ = "read"
BUCKET_POLICY = "bucket_policy"
IDENTITY_POLICY = "identity_policy"
ENCRYPTION = "encryption"
EKS = "eks"

TITLES = {
    CREDENTIALS: "credentials",
    ASSUME_ROLE: "assume role",
    BUCKET: "bucket and region",
    LIST: "list objects",
    LAYOUT: "log layout",
    READ: "read newest object",
    BUCKET_POLICY: "bucket policy",
    IDENTITY_POLICY: "identity policies",
    ENCRYPTION: "encryption",
    EKS: "EKS audit logs",
}


def _step(
    name: str,
    status: Status,
    message: str,
    fix: str | None = None,
    **details: Any,
) -> Step:
    return Step(
        name=name, title=TITLES[name], status=status, message=message, fix=fix, details=details
    )


def _from_error(name: str, error: AwsError, prefix: str = "", **details: Any) -> Step:
    return _step(
        name,
        Status.FAIL,
        prefix + error.message,
        error.remedy,
        error_code=error.code.value,
        **details,
    )


def _folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _last_segment(folder: str) -> str:
    return folder.rstrip("/").rsplit("/", 1)[-1]


def _show(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# --- discovery (what the bucket holds when the prefix is not what we expected) ---------------


@dataclass
class Discovery:
    """Log folders found in a bucket, to say where the logs are when they are not at the prefix."""

    org_folders: dict[str, list[str]] = field(default_factory=dict)  # folder -> accounts
    account_folders: dict[str, list[str]] = field(default_factory=dict)  # AWSLogs/ -> accounts
    custom_prefixes: list[str] = field(default_factory=list)  # "<prefix>/" before AWSLogs/
    eks_clusters: dict[str, list[str]] = field(default_factory=dict)  # EKSLogs/<acct>/ -> names
    eks_accounts: dict[str, list[str]] = field(default_factory=dict)  # EKSLogs/ -> accounts

    def found_anything(self) -> bool:
        return bool(
            self.org_folders
            or self.account_folders
            or self.custom_prefixes
            or self.eks_clusters
            or self.eks_accounts
        )

    def describe(self) -> str:
        parts: list[str] = []
        for folder, accounts in self.org_folders.items():
            parts.append(
                f"an organization trail folder {folder} (accounts {_show(accounts)})"
                if accounts
                else f"an organization trail folder {folder}"
            )
        for folder, accounts in self.account_folders.items():
            parts.append(f"account folders under {folder}: {_show(accounts)}")
        if self.custom_prefixes:
            parts.append(
                "a custom prefix in front of AWSLogs/ or EKSLogs/: "
                + _show([f"'{p}'" for p in self.custom_prefixes])
            )
        for folder, accounts in self.eks_accounts.items():
            parts.append(f"EKS account folders under {folder}: {_show(accounts)}")
        for folder, clusters in self.eks_clusters.items():
            parts.append(f"EKS clusters under {folder}: {_show(clusters)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "organization_folders": dict(self.org_folders),
            "account_folders": dict(self.account_folders),
            "custom_prefixes": list(self.custom_prefixes),
            "eks_accounts": dict(self.eks_accounts),
            "eks_clusters": dict(self.eks_clusters),
        }


def discover(
    client: S3Client,
    bucket: str,
    *,
    prefix: str,
    region: str | None,
    principal: str | None = None,
) -> Discovery:
    """Note every log folder near the top of the bucket, by delimiter listing.

    Looks in front of the configured custom prefix and at the bucket root first; when
    neither holds ``AWSLogs/`` or ``EKSLogs/``, searches two folder levels down for them
    (with a bounded number of LIST calls).
    """
    lister = S3Lister(client, bucket)
    found = Discovery()
    with aws_errors(
        operation="ListObjectsV2", bucket=bucket, key=prefix, region=region, principal=principal
    ):
        for base in dict.fromkeys([layouts.custom_prefix(prefix), ""]):
            for folder in discovery.discover_accounts(lister, prefix=base):
                if folder.org_id:
                    where = f"{folder.prefix}{layouts.AWSLOGS}{folder.org_id}/"
                    found.org_folders.setdefault(where, []).append(folder.account)
                else:
                    where = f"{folder.prefix}{layouts.AWSLOGS}"
                    found.account_folders.setdefault(where, []).append(folder.account)
            eks_accounts = discovery.discover_eks_accounts(lister, prefix=base)
            if eks_accounts:
                found.eks_accounts[f"{base}{layouts.EKSLOGS}"] = eks_accounts
            for account in eks_accounts[:_SHOWN]:
                clusters = discovery.discover_clusters(lister, account_id=account, prefix=base)
                if clusters:
                    found.eks_clusters[f"{base}{layouts.EKSLOGS}{account}/"] = clusters
        if not (found.org_folders or found.account_folders or found.eks_accounts):
            search = discovery.locate_logs(lister, max_depth=2, max_calls=_DISCOVERY_CALLS)
            found.custom_prefixes = list(
                dict.fromkeys(loc.prefix for loc in search.locations if loc.prefix)
            )
    return found


# --- the run ---------------------------------------------------------------------------------


class _Doctor:
    def __init__(self, source: SourceInfo, factory: AwsSessions, clock: Clock) -> None:
        self.source = source
        self.chain = source.chain
        self.factory = factory
        self.clock = clock
        self.region = source.region
        self.steps: list[Step] = []
        self.base_arn: str | None = None
        self.final_arn: str | None = None
        self.assumed = not self.chain.hops
        self.bucket_ok = False
        self.root: str | None = None
        self.scope_prefix: str | None = None
        self.newest: ObjectInfo | None = None
        self.newest_meta: ObjectMeta | None = None
        self.read_error: AwsError | None = None
        self.read_ok = False
        self.list_ok = False
        self.bucket_evaluations: dict[str, policy_eval.Evaluation] = {}

    # Every step runs guarded: an unexpected error fails that step, never the whole report.
    def run(self, name: str, check: Callable[[], Step]) -> None:
        try:
            step = check()
        except AwsError as error:
            step = _from_error(name, error)
        except Exception as exc:
            log.exception("doctor step %s failed unexpectedly", name)
            step = _step(
                name,
                Status.FAIL,
                f"the check itself failed ({type(exc).__name__}: {sanitize(str(exc))[:200]})",
                "Report this with the doctor's JSON output.",
            )
        self.steps.append(step)

    @property
    def s3(self) -> S3Client:
        return self.factory.s3(self.chain, self.region)

    def skip(self, name: str, reason: str) -> Step:
        return _step(name, Status.SKIP, reason)

    # a. ------------------------------------------------------------------------------------

    def credentials(self) -> Step:
        chain = self.chain
        base = chain.truncated(0)
        mode = chain.authentication
        try:
            with aws_errors(operation="GetCredentials"):
                credentials = self.factory.session(base, self.source.region).get_credentials()
                frozen = credentials.get_frozen_credentials() if credentials else None
        except AwsError as error:
            return _from_error(CREDENTIALS, error, prefix=f"{mode}: ")
        if credentials is None or frozen is None:
            return _step(
                CREDENTIALS,
                Status.FAIL,
                "no credentials found by the default chain (environment, web identity token, "
                "container role, instance profile)",
                "Attach an instance profile, ECS task role or IRSA service account to this "
                "machine, or store an access key for the role configuration.",
                authentication=mode,
            )
        method = getattr(credentials, "method", None) or "unknown"
        try:
            with aws_errors(operation="GetCallerIdentity", region=self.source.region):
                identity = self.factory.sts(base, self.source.region).get_caller_identity()
        except NoCredentials as error:
            return _from_error(CREDENTIALS, error, prefix=f"{mode}: ")
        self.base_arn = identity["Arn"]
        masked = mask_key_id(frozen.access_key or "")
        if not chain.hops:
            self.final_arn = self.base_arn
        return _step(
            CREDENTIALS,
            Status.OK,
            f"{mode} credentials from {method} (key {masked}) identify as {identity['Arn']}",
            authentication=mode,
            method=method,
            caller_arn=identity["Arn"],
            account=identity["Account"],
        )

    # b. ------------------------------------------------------------------------------------

    def assume_role(self) -> Step:
        hops = self.chain.hops
        if not hops:
            return self.skip(
                ASSUME_ROLE, "no role configured: the base credentials read the bucket"
            )
        if self.base_arn is None:
            return self.skip(ASSUME_ROLE, "needs working base credentials")
        assumed: list[str] = []
        caller = self.base_arn
        for index, hop in enumerate(hops):
            sub = self.chain.truncated(index + 1)
            try:
                with aws_errors(operation="GetCallerIdentity", role_arn=hop.role_arn):
                    identity = self.factory.sts(sub, self.source.region).get_caller_identity()
            except AssumeRoleRefused as error:
                chained = " (a chained AssumeRole: at most one hour)" if index else ""
                external = (
                    " with the configured external ID"
                    if hop.external_id
                    else " without an external ID"
                )
                fix = (
                    f"In the trust policy of {hop.role_arn}, allow sts:AssumeRole for {caller}"
                    + (
                        " and require exactly the configured sts:ExternalId"
                        if hop.external_id
                        else "; if it requires an sts:ExternalId, set the external ID"
                    )
                    + "."
                )
                return _step(
                    ASSUME_ROLE,
                    Status.FAIL,
                    f"the {hop.label} {hop.role_arn} could not be assumed by {caller}"
                    f"{external}{chained}: {error.message}",
                    fix,
                    failed_hop=hop.label,
                    failed_role_arn=hop.role_arn,
                    assumed=assumed,
                    error_code=error.code.value,
                )
            caller = identity["Arn"]
            assumed.append(caller)
        self.final_arn = caller
        self.assumed = True
        return _step(
            ASSUME_ROLE,
            Status.OK,
            "assumed " + " → ".join(f"{h.label} {h.role_arn}" for h in hops) + f"; now {caller}",
            assumed=assumed,
            final_arn=caller,
        )

    # c. ------------------------------------------------------------------------------------

    def bucket(self) -> Step:
        if not self.assumed:
            return self.skip(BUCKET, "needs the role chain")
        bucket = self.source.bucket
        try:
            actual = bucket_region(self.s3, bucket, principal=self.final_arn)
        except NoSuchBucket as error:
            return _from_error(BUCKET, error)
        except WrongRegion as error:
            if error.region:
                return self._wrong_region(error.region)
            raise
        except AccessDenied as error:
            # HeadBucket needs s3:ListBucket; the list step says the same more precisely.
            self.bucket_ok = True
            return _step(
                BUCKET,
                Status.WARN,
                f"could not check the bucket's region: {error.message}",
                error.remedy,
                error_code=error.code.value,
            )
        self.bucket_ok = True
        if actual != self.source.region:
            return self._wrong_region(actual)
        return _step(
            BUCKET, Status.OK, f"bucket {bucket} exists in {actual}", bucket=bucket, region=actual
        )

    def _wrong_region(self, actual: str) -> Step:
        configured = self.source.region
        self.region = actual
        self.bucket_ok = True
        return _step(
            BUCKET,
            Status.FAIL,
            f"bucket {self.source.bucket} is in region {actual}, not in the configured region "
            f"{configured} (the remaining checks use {actual})",
            f"Set the source's region to {actual}.",
            region=actual,
            configured_region=configured,
        )

    # d. ------------------------------------------------------------------------------------

    def _root(self) -> str:
        source = self.source
        if source.kind == "eks":
            return layouts.eks_root(
                source.prefix, account_id=source.account_id, cluster=source.cluster_name or ""
            )
        return layouts.cloudtrail_root(
            source.prefix, account_id=source.account_id, org_id=source.organization_id
        )

    def list_objects(self) -> Step:
        if not self.bucket_ok:
            return self.skip(LIST, "needs the bucket")
        try:
            root = self._root()
        except ValueError as exc:
            return _step(
                LIST,
                Status.FAIL,
                f"the configured prefix cannot be used: {exc}",
                "Set the prefix to the part in front of AWSLogs/ (or EKSLogs/), or up to the "
                "account folder.",
                prefix=self.source.prefix,
            )
        self.root = root
        with aws_errors(
            operation="ListObjectsV2", bucket=self.source.bucket, key=root, principal=self.final_arn
        ):
            self.s3.list_objects_v2(Bucket=self.source.bucket, Prefix=root, MaxKeys=1)
        self.list_ok = True
        return _step(
            LIST,
            Status.OK,
            f"s3:ListBucket works on s3://{self.source.bucket}/{root}",
            prefix=root,
        )

    def layout(self) -> Step:
        if not self.list_ok or self.root is None:
            return self.skip(LAYOUT, "needs a working listing")
        if self.source.kind == "eks":
            return self._eks_layout(self.root)
        return self._cloudtrail_layout(self.root)

    def _cloudtrail_layout(self, root: str) -> Step:
        bucket = self.source.bucket
        trail = f"{root}CloudTrail/"
        with aws_errors(
            operation="ListObjectsV2", bucket=bucket, key=trail, principal=self.final_arn
        ):
            regions = discovery.discover_regions(S3Lister(self.s3, bucket), root=root)
        if regions:
            region = self.source.region if self.source.region in regions else regions[0]
            self.scope_prefix = f"{trail}{region}/"
            return _step(
                LAYOUT,
                Status.OK,
                f"CloudTrail logs for {len(regions)} region(s) under s3://{bucket}/{trail}: "
                f"{_show(regions)}",
                prefix=trail,
                regions=regions,
            )
        return self._not_found(f"no CloudTrail logs under s3://{bucket}/{trail}", trail)

    def _eks_layout(self, root: str) -> Step:
        bucket = self.source.bucket
        years = [
            f
            for f in list_prefixes(
                self.s3, bucket, root, region=self.region, principal=self.final_arn
            )
            if _YEAR.fullmatch(_last_segment(f))
        ]
        if years:
            self.scope_prefix = root
            return _step(
                LAYOUT,
                Status.OK,
                f"EKS audit log folders under s3://{bucket}/{root} "
                f"({_last_segment(years[0])} to {_last_segment(years[-1])})",
                prefix=root,
            )
        return self._not_found(f"no EKS log folders under s3://{bucket}/{root}", root)

    def _not_found(self, message: str, expected: str) -> Step:
        source = self.source
        found = discover(
            self.s3,
            source.bucket,
            prefix=source.prefix,
            region=self.region,
            principal=self.final_arn,
        )
        if not found.found_anything():
            return _step(
                LAYOUT,
                Status.FAIL,
                f"{message}, and no AWSLogs/ or EKSLogs/ folder anywhere near the top of the "
                "bucket",
                "Check that the trail (or the Firehose stream) delivers to this bucket, and the "
                "bucket name.",
                expected=expected,
                found=found.to_dict(),
            )
        return _step(
            LAYOUT,
            Status.FAIL,
            f"{message}; the bucket holds {found.describe()}",
            self._layout_fix(found),
            expected=expected,
            found=found.to_dict(),
        )

    def _layout_fix(self, found: Discovery) -> str:
        source = self.source
        account = source.account_id
        if source.kind == "eks":
            for folder, clusters in found.eks_clusters.items():
                if folder.endswith(f"{layouts.EKSLOGS}{account}/"):
                    return (
                        f"Set the cluster name to one of {_show(clusters)} (found under "
                        f"{folder}), and the prefix to the part in front of EKSLogs/."
                    )
            for folder, accounts in found.eks_accounts.items():
                return (
                    f"This bucket holds EKS logs of accounts {_show(accounts)} under {folder}: "
                    "check the account id and the prefix."
                )
        for folder, accounts in found.org_folders.items():
            org = _last_segment(folder)
            if account in accounts or not accounts:
                return (
                    f"This is an organization trail: set the organization id to {org} (or the "
                    f"prefix to '{folder}{account}/')."
                )
        for folder, accounts in found.account_folders.items():
            if account in accounts:
                if source.organization_id:
                    return (
                        f"The logs of {account} are in the account trail layout: clear the "
                        f"organization id (or set the prefix to '{folder}{account}/')."
                    )
                return f"Set the prefix to '{folder}{account}/'."
        if found.custom_prefixes:
            return f"Set the prefix to the custom prefix '{found.custom_prefixes[0]}'."
        return (
            f"This bucket holds logs of other accounts than {account}: check the account id and "
            "the bucket of this source."
        )

    # e. ------------------------------------------------------------------------------------

    def _newest_object(self, folder: str, depth: int) -> ObjectInfo | None:
        """The newest object under date folders ``depth`` levels deep (Y/M/D or Y/M/D/H)."""
        bucket = self.source.bucket
        for _ in range(depth):
            subfolders = [
                f
                for f in list_prefixes(
                    self.s3, bucket, folder, region=self.region, principal=self.final_arn
                )
                if _YEAR.fullmatch(_last_segment(f)) or _TWO_DIGITS.fullmatch(_last_segment(f))
            ]
            if not subfolders:
                return None
            folder = subfolders[-1]
        newest: ObjectInfo | None = None
        for item in iter_objects(
            self.s3, bucket, folder, region=self.region, principal=self.final_arn
        ):
            parsed = layouts.classify(item.key, item.size)
            if not isinstance(parsed, layouts.ParsedKey) or parsed.kind not in (
                layouts.ObjectKind.LOG,
                layouts.ObjectKind.EKS,
            ):
                continue
            if newest is None or (item.last_modified, item.key) > (
                newest.last_modified,
                newest.key,
            ):
                newest = item
        return newest

    def read(self) -> Step:
        if self.scope_prefix is None:
            return self.skip(READ, "needs logs in the expected layout")
        depth = 4 if self.source.kind == "eks" else 3
        newest = self._newest_object(self.scope_prefix, depth)
        if newest is None:
            return _step(
                READ,
                Status.WARN,
                f"no log object in the newest date folder under {self.scope_prefix}",
                "Check that the trail or delivery stream is writing logs.",
            )
        self.newest = newest
        bucket = self.source.bucket
        try:
            self.newest_meta = head_object(self.s3, bucket, newest.key, principal=self.final_arn)
        except AwsError as error:
            log.debug("HeadObject of %s failed: %s", newest.key, error.message)
        sse_kms = bool(self.newest_meta and self.newest_meta.sse_kms)
        try:
            with open_object(
                self.s3,
                bucket,
                newest.key,
                byte_range=(0, PROBE_BYTES - 1),
                sse_kms=sse_kms,
                principal=self.final_arn,
            ) as stream:
                head = stream.read(PROBE_BYTES)
        except AwsError as error:
            self.read_error = error
            return _from_error(READ, error, key=newest.key)
        self.read_ok = True
        age = self.clock() - newest.last_modified
        details: dict[str, Any] = {
            "key": newest.key,
            "last_modified": newest.last_modified.isoformat(),
            "size": newest.size,
        }
        read_what = f"read {len(head)} bytes of s3://{bucket}/{newest.key}"
        if self.source.kind == "cloudtrail" and not head.startswith(_GZIP_MAGIC):
            return _step(
                READ,
                Status.WARN,
                f"{read_what}, but it is not gzip as CloudTrail writes it",
                "Check that nothing else writes objects into the trail's folders.",
                **details,
            )
        if self.source.kind == "cloudtrail" and age > STALE_CLOUDTRAIL:
            return _step(
                READ,
                Status.WARN,
                f"{read_what}; it is {_age(age)} old, so the trail may have stopped logging",
                "Check the trail's status (aws cloudtrail get-trail-status) and its S3 delivery "
                "errors.",
                **details,
            )
        return _step(READ, Status.OK, f"{read_what} (written {_age(age)} ago)", **details)

    # f. ------------------------------------------------------------------------------------

    def _principal(self) -> policy_eval.PrincipalContext | None:
        chain = self.chain
        org = self.source.organization_id
        role_arn = chain.final_role_arn
        candidates: list[Callable[[], policy_eval.PrincipalContext]] = []
        if self.final_arn:
            arn = self.final_arn
            candidates.append(
                lambda: policy_eval.PrincipalContext.from_arn(arn, role_arn=role_arn, org_id=org)
            )
            candidates.append(lambda: policy_eval.PrincipalContext.from_arn(arn, org_id=org))
        if role_arn:
            candidates.append(
                lambda: policy_eval.PrincipalContext.from_arn(
                    role_arn, session_name=chain.session_name, org_id=org
                )
            )
        for make in candidates:
            try:
                return make()
            except policy_eval.InvalidArnError:
                continue
        return None

    def _bucket_owner(self) -> tuple[str, str]:
        """The bucket owner's account, and how we know it."""
        source = self.source
        if source.bucket_account:
            return source.bucket_account, "configured"
        if self.chain.role_arn:
            account = arn_account(self.chain.role_arn)
            if account:
                return account, "the bucket role's account"
        return source.account_id, "the source's account"

    def _requests(self) -> tuple[policy_eval.AccessRequest, ...]:
        prefix = self.scope_prefix or self.root or _folder(self.source.prefix)
        return policy_eval.harvest_requests(
            bucket=self.source.bucket, prefix=prefix, partition=self.chain.effective_partition
        )

    def bucket_policy(self) -> Step:
        if not self.bucket_ok:
            return self.skip(BUCKET_POLICY, "needs the bucket")
        principal = self._principal()
        if principal is None:
            return _step(
                BUCKET_POLICY,
                Status.WARN,
                f"could not analyse the bucket policy: the harvesting principal "
                f"{self.final_arn or '(unknown)'} is not a role or user ARN",
            )
        try:
            document = get_bucket_policy(self.s3, self.source.bucket, principal=self.final_arn)
        except AwsError as error:
            return _step(
                BUCKET_POLICY,
                Status.WARN,
                f"could not read the bucket policy: {error.message}",
                "Allow s3:GetBucketPolicy to the harvesting role to have it analysed (optional).",
                error_code=error.code.value,
            )
        owner, owner_from = self._bucket_owner()
        cross = owner != principal.account_id
        if document is None:
            if cross:
                return _step(
                    BUCKET_POLICY,
                    Status.FAIL,
                    f"the bucket has no policy, and {principal.caller_arn} is in account "
                    f"{principal.account_id} while the bucket belongs to {owner} ({owner_from}): "
                    "cross-account access needs a bucket-policy Allow",
                    f"Add a bucket-policy statement allowing {principal.principal_arn} "
                    "s3:GetObject and s3:ListBucket on the log prefix.",
                    bucket_owner=owner,
                )
            return _step(
                BUCKET_POLICY,
                Status.OK,
                "the bucket has no policy: nothing denies, the identity policies decide",
                bucket_owner=owner,
            )
        try:
            evaluations = [
                policy_eval.evaluate_bucket_policy(
                    document,
                    principal=principal,
                    action=request.action,
                    resource=request.resource,
                    bucket_owner_account=owner,
                    request_context=request.context_mapping(),
                )
                for request in self._requests()
            ]
        except (policy_eval.PolicyParseError, ValueError) as exc:
            return _step(
                BUCKET_POLICY,
                Status.WARN,
                f"could not analyse the bucket policy: {sanitize(str(exc))}",
                bucket_owner=owner,
            )
        self.bucket_evaluations = {e.action: e for e in evaluations}
        statuses: list[Status] = []
        fixes: list[str] = []
        for evaluation in evaluations:
            verdict = evaluation.verdict
            if verdict is policy_eval.Verdict.DENIED:
                statuses.append(Status.FAIL)
            elif verdict is policy_eval.Verdict.MAY_BE_DENIED:
                statuses.append(Status.WARN)
            elif cross and verdict is policy_eval.Verdict.NOT_GRANTED:
                statuses.append(Status.FAIL)
            elif cross and verdict is policy_eval.Verdict.MAY_BE_ALLOWED:
                statuses.append(Status.WARN)
            else:
                statuses.append(Status.OK)
            if statuses[-1] is not Status.OK and evaluation.remedy:
                fixes.append(evaluation.remedy)
        status = worst(statuses)
        message = " ".join(_evaluation_sentence(e) for e in evaluations)
        if cross:
            message += f" (cross-account: the bucket belongs to {owner}, {owner_from})"
        return _step(
            BUCKET_POLICY,
            status,
            message,
            " ".join(dict.fromkeys(fixes)) or None,
            bucket_owner=owner,
            cross_account=cross,
            evaluations=[_evaluation_dict(e) for e in evaluations],
        )

    def identity_policy(self) -> Step:
        principal = self._principal()
        if principal is None or not self.assumed:
            return self.skip(IDENTITY_POLICY, "needs the harvesting principal")
        if principal.kind is not policy_eval.PrincipalKind.ASSUMED_ROLE:
            return _step(
                IDENTITY_POLICY,
                Status.WARN,
                f"could not read the identity policies: {principal.caller_arn} is an IAM user; "
                "only roles' policies are analysed",
            )
        role = principal.name
        try:
            policies = self._role_policies(role)
        except AwsError as error:
            return _step(
                IDENTITY_POLICY,
                Status.WARN,
                f"could not read the identity policies of role {role}: {error.message}",
                "Allow iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, "
                "iam:GetPolicy and iam:GetPolicyVersion on the role to have them analysed "
                "(optional).",
                error_code=error.code.value,
            )
        try:
            evaluations = policy_eval.evaluate_identity_policies(
                policies, principal=principal, requests=self._requests()
            )
        except (policy_eval.PolicyParseError, ValueError) as exc:
            return _step(
                IDENTITY_POLICY,
                Status.WARN,
                f"could not analyse the identity policies of role {role}: {sanitize(str(exc))}",
            )
        statuses: list[Status] = []
        fixes: list[str] = []
        notes: list[str] = []
        for evaluation in evaluations:
            verdict = evaluation.verdict
            if verdict is policy_eval.Verdict.DENIED:
                statuses.append(Status.FAIL)
            elif verdict is policy_eval.Verdict.NOT_GRANTED:
                bucket_grant = self.bucket_evaluations.get(evaluation.action)
                if (
                    bucket_grant is not None
                    and bucket_grant.verdict is policy_eval.Verdict.ALLOWED
                    and not bucket_grant.cross_account
                ):
                    statuses.append(Status.OK)
                    notes.append(f"{evaluation.action} is granted by the bucket policy instead.")
                elif self._call_worked(evaluation.action):
                    statuses.append(Status.WARN)
                    notes.append(
                        f"{evaluation.action} worked all the same, so something else grants it."
                    )
                else:
                    statuses.append(Status.FAIL)
            elif verdict in (policy_eval.Verdict.MAY_BE_DENIED, policy_eval.Verdict.MAY_BE_ALLOWED):
                statuses.append(Status.WARN)
            else:
                statuses.append(Status.OK)
            if statuses[-1] is not Status.OK and evaluation.remedy:
                fixes.append(evaluation.remedy)
        names = sorted(policies)
        message = (
            f"role {role} has {len(names)} policies ({_show(names) or 'none'}). "
            + " ".join(_evaluation_sentence(e) for e in evaluations)
            + (" " + " ".join(notes) if notes else "")
        )
        return _step(
            IDENTITY_POLICY,
            worst(statuses),
            message,
            " ".join(dict.fromkeys(fixes)) or None,
            role=role,
            policies=names,
            evaluations=[_evaluation_dict(e) for e in evaluations],
        )

    def _call_worked(self, action: str) -> bool:
        if action == "s3:GetObject":
            return self.read_ok
        if action == "s3:ListBucket":
            return self.list_ok
        return False

    def _role_policies(self, role: str) -> dict[str, Any]:
        iam = self.factory.iam(self.chain, self.region)
        policies: dict[str, Any] = {}
        with aws_errors(operation="ListRolePolicies", role_arn=self.chain.final_role_arn):
            inline = [
                name
                for page in iam.get_paginator("list_role_policies").paginate(RoleName=role)
                for name in page["PolicyNames"]
            ]
        for name in inline:
            with aws_errors(operation="GetRolePolicy", role_arn=self.chain.final_role_arn):
                policies[f"inline:{name}"] = iam.get_role_policy(RoleName=role, PolicyName=name)[
                    "PolicyDocument"
                ]
        with aws_errors(operation="ListAttachedRolePolicies", role_arn=self.chain.final_role_arn):
            attached = [
                item
                for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
                for item in page["AttachedPolicies"]
            ]
        for item in attached:
            arn = item.get("PolicyArn")
            if not arn:
                continue
            with aws_errors(operation="GetPolicy", role_arn=self.chain.final_role_arn):
                version = iam.get_policy(PolicyArn=arn)["Policy"].get("DefaultVersionId", "v1")
            with aws_errors(operation="GetPolicyVersion", role_arn=self.chain.final_role_arn):
                document = iam.get_policy_version(PolicyArn=arn, VersionId=version)[
                    "PolicyVersion"
                ].get("Document")
            if document is not None:
                policies[item.get("PolicyName") or arn] = document
        return policies

    # g. ------------------------------------------------------------------------------------

    def encryption(self) -> Step:
        if not self.bucket_ok:
            return self.skip(ENCRYPTION, "needs the bucket")
        notes: list[str] = []
        status = Status.OK
        fix: str | None = None
        try:
            default = get_bucket_encryption(self.s3, self.source.bucket, principal=self.final_arn)
        except AwsError as error:
            default = None
            notes.append(f"could not read the bucket's default encryption ({error.code.value})")
            status = Status.WARN
        else:
            if default is None:
                notes.append("no default encryption configured on the bucket")
            else:
                notes.append(
                    f"bucket default {default.algorithm}"
                    + (f" with key {default.kms_key_id}" if default.kms_key_id else "")
                )
        meta = self.newest_meta
        if meta is not None:
            notes.append(
                f"newest object {meta.server_side_encryption or 'unencrypted'}"
                + (f" with key {meta.kms_key_id}" if meta.kms_key_id else "")
            )
        kms_key = (meta.kms_key_id if meta and meta.sse_kms else None) or (
            default.kms_key_id if default and default.sse_kms else None
        )
        uses_kms = bool((meta and meta.sse_kms) or (default and default.sse_kms))
        principal = self._principal()
        if uses_kms:
            key_account = arn_account(kms_key) if kms_key and kms_key.startswith("arn:") else None
            if key_account is None and default is not None:
                key_account = self._bucket_owner()[0]
            if principal and key_account and key_account != principal.account_id:
                status = worst([status, Status.WARN])
                notes.append(
                    f"the KMS key is in account {key_account} but the harvesting principal in "
                    f"{principal.account_id}"
                )
                fix = (
                    "The setup guide requires the harvesting role in the same account as the "
                    "bucket for encrypted buckets: use a bucket role in that account."
                )
            if self.read_ok:
                notes.append("kms:Decrypt proven by reading the newest object")
            elif isinstance(self.read_error, KmsAccessDenied):
                status = Status.FAIL
                notes.append(f"kms:Decrypt refused: {self.read_error.message}")
                fix = self.read_error.remedy
            else:
                status = worst([status, Status.WARN])
                notes.append("kms:Decrypt not proven (no object could be read)")
        return _step(
            ENCRYPTION,
            status,
            "; ".join(notes),
            fix,
            default_algorithm=default.algorithm if default else None,
            default_kms_key=default.kms_key_id if default else None,
            object_algorithm=meta.server_side_encryption if meta else None,
            object_kms_key=meta.kms_key_id if meta else None,
        )

    # h. ------------------------------------------------------------------------------------

    def eks(self) -> Step:
        source = self.source
        if source.kind != "eks":
            return self.skip(EKS, "not an EKS source")
        if not self.list_ok or self.root is None:
            return self.skip(EKS, "needs a working listing")
        now = self.clock()
        hour = now.replace(minute=0, second=0, microsecond=0)
        recent: list[ObjectInfo] = []
        for start in (hour - timedelta(hours=1), hour):
            folder = f"{self.root}{start:%Y/%m/%d/%H}/"
            for item in iter_objects(
                self.s3, source.bucket, folder, region=self.region, principal=self.final_arn
            ):
                if item.last_modified >= now - timedelta(hours=1) or start == hour:
                    recent.append(item)
        notes: list[str] = []
        statuses: list[Status] = []
        fixes: list[str] = []
        if recent:
            statuses.append(Status.OK)
            notes.append(f"{len(recent)} audit log object(s) in the last hour under {self.root}")
        else:
            statuses.append(Status.WARN)
            notes.append(f"no audit log objects for the last hour under {self.root}")
            fixes.append(
                f"Check the CloudWatch Logs subscription filter on /aws/eks/{source.cluster_name}"
                "/cluster and the Firehose delivery stream to this bucket."
            )
        cluster_status, cluster_note, cluster_fix = self._cluster()
        statuses.append(cluster_status)
        notes.append(cluster_note)
        if cluster_fix:
            fixes.append(cluster_fix)
        return _step(
            EKS,
            worst(statuses),
            "; ".join(notes),
            " ".join(fixes) or None,
            recent_objects=len(recent),
        )

    def _cluster(self) -> tuple[Status, str, str | None]:
        source = self.source
        name = source.cluster_name or ""
        try:
            with aws_errors(operation="DescribeCluster", region=source.region):
                cluster = self.factory.eks(self.chain, source.region).describe_cluster(name=name)[
                    "cluster"
                ]
        except AccessDenied:
            return (
                Status.OK,
                "eks:DescribeCluster is not allowed: cluster settings not checked",
                None,
            )
        except NotFound:
            return (
                Status.WARN,
                f"cluster {name} was not found in {source.region} with the harvesting credentials",
                "Check the cluster name (or that the cluster is in this account and region).",
            )
        enabled = {
            kind
            for setup in cluster.get("logging", {}).get("clusterLogging", [])
            if setup.get("enabled")
            for kind in setup.get("types", [])
        }
        if "audit" not in enabled:
            return (
                Status.FAIL,
                f"cluster {name} does not send its audit log to CloudWatch Logs",
                f"Enable the audit log type: aws eks update-cluster-config --name {name} "
                """--logging '{"clusterLogging":[{"types":["audit"],"enabled":true}]}'.""",
            )
        return Status.OK, f"cluster {name} has its audit log type enabled", None

    def run_all(self) -> DoctorReport:
        self.run(CREDENTIALS, self.credentials)
        self.run(ASSUME_ROLE, self.assume_role)
        self.run(BUCKET, self.bucket)
        self.run(LIST, self.list_objects)
        self.run(LAYOUT, self.layout)
        self.run(READ, self.read)
        self.run(BUCKET_POLICY, self.bucket_policy)
        self.run(IDENTITY_POLICY, self.identity_policy)
        self.run(ENCRYPTION, self.encryption)
        self.run(EKS, self.eks)
        return DoctorReport(source=self.source, steps=tuple(self.steps), checked_at=self.clock())


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _evaluation_sentence(evaluation: policy_eval.Evaluation) -> str:
    return evaluation.explanation


def _finding_dict(finding: policy_eval.Finding) -> dict[str, Any]:
    return {
        "statement": finding.statement,
        "policy": finding.policy,
        "effect": finding.effect.value,
        "outcome": finding.outcome.value,
        "reasons": list(finding.reasons),
        "depends_on": list(finding.depends_on),
        "remedy": finding.remedy,
    }


def _evaluation_dict(evaluation: policy_eval.Evaluation) -> dict[str, Any]:
    return {
        "action": evaluation.action,
        "resource": evaluation.resource,
        "principal": evaluation.principal,
        "verdict": evaluation.verdict.value,
        "explanation": evaluation.explanation,
        "remedy": evaluation.remedy,
        "denies": [_finding_dict(f) for f in evaluation.denies],
        "conditional_denies": [_finding_dict(f) for f in evaluation.conditional_denies],
        "allows": [_finding_dict(f) for f in evaluation.allows],
        "conditional_allows": [_finding_dict(f) for f in evaluation.conditional_allows],
    }


def run_doctor(source: SourceInfo, *, session_factory: AwsSessions, clock: Clock) -> DoctorReport:
    """Check everything a harvest of ``source`` needs, in order; never raises for AWS errors."""
    return _Doctor(source, session_factory, clock).run_all()


# --- output ----------------------------------------------------------------------------------

_STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def _source_line(source: SourceInfo) -> str:
    what = f"EKS cluster {source.cluster_name}" if source.kind == "eks" else "CloudTrail"
    return (
        f"{what} of {source.account_id}: s3://{source.bucket}/{source.prefix} "
        f"({source.region}) via {source.chain.describe()}"
    )


def summary_line(report: DoctorReport) -> Text:
    """One line for a source: its overall status and, unless ok, the first step at that status."""
    line = Text(f"{report.status.value:<4}", style=_STYLES[report.status])
    line.append(" " + printable(_source_line(report.source)))
    first = next((s for s in report.steps if s.status is report.status), None)
    if report.status is not Status.OK and first is not None:
        line.append(printable(f": {first.title}: {first.message}"))
    return line


def render_table(report: DoctorReport) -> Table:
    """The report as a rich table: one row per step, status coloured, fix in its own column."""
    table = Table(
        title=cell(f"doctor: {_source_line(report.source)}"),
        caption=Text(f"overall: {report.status.value}", style=_STYLES[report.status]),
        header_style="bold",
        show_lines=True,
    )
    table.add_column("step", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("message", overflow="fold")
    table.add_column("fix", overflow="fold")
    for step in report.steps:
        table.add_row(
            step.title,
            Text(step.status.value, style=_STYLES[step.status]),
            cell(step.message),
            cell(step.fix or ""),
        )
    return table


def report_to_json(report: DoctorReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (no secrets: the chain is described, not dumped)."""
    source = report.source
    return {
        "status": report.status.value,
        "checked_at": report.checked_at.isoformat(),
        "source": {
            "kind": source.kind,
            "account_id": source.account_id,
            "partition": source.partition,
            "organization_id": source.organization_id,
            "cluster_name": source.cluster_name,
            "bucket": source.bucket,
            "region": source.region,
            "prefix": source.prefix,
            "credentials": source.chain.describe(),
        },
        "steps": [
            {
                "name": step.name,
                "title": step.title,
                "status": step.status.value,
                "message": step.message,
                "fix": step.fix,
                "details": _jsonable(step.details),
            }
            for step in report.steps
        ],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def iter_failures(report: DoctorReport) -> Iterator[Step]:
    """The steps that failed, for a CLI exit code or a health reason."""
    return (s for s in report.steps if s.status is Status.FAIL)
