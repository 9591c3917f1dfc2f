"""When a source is ``silent``: its harvests work, but its logs stopped (or never came).

A listing that succeeds and finds nothing looks healthy, yet for an ops team it is the worst
case: a trail that was turned off, a Firehose stream that lost its subscription, a prefix
that names the wrong folder. A source is silent when, after a successful harvest, either

- no object was ever seen (the ledger holds none since its first harvest), or
- the newest object seen is older than the expectation for its kind
  (``HARVESTER_SILENT_AFTER_CLOUDTRAIL``, ``HARVESTER_SILENT_AFTER_EKS``).

"Seen" counts every object the listing found, whatever became of it (done, corrupt, failed):
a source that delivers corrupt files is not silent, it is failing, and says so elsewhere.
The reason reads like ``harvester doctor``'s layout step, so ``sources list`` tells the
operator what to check without running it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from harvester.aws.identity import SourceInfo
from harvester.durations import format_duration
from harvester.settings import Settings
from harvester.sources.layouts import cloudtrail_root, eks_root

__all__ = ["SilencePolicy", "log_folder", "silence_reason"]


@dataclass(frozen=True)
class SilencePolicy:
    """How long each kind of source may go without a new object before it is silent."""

    cloudtrail: timedelta = timedelta(hours=1)
    eks: timedelta = timedelta(minutes=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> SilencePolicy:
        return cls(cloudtrail=settings.silent_after_cloudtrail, eks=settings.silent_after_eks)

    def expectation(self, kind: str) -> timedelta:
        return self.eks if kind == "eks" else self.cloudtrail


def log_folder(info: SourceInfo) -> str:
    """``s3://bucket/<folder>`` where the source's logs are expected, as the doctor names it."""
    try:
        if info.kind == "eks":
            folder = eks_root(
                info.prefix, account_id=info.account_id, cluster=info.cluster_name or ""
            )
        else:
            root = cloudtrail_root(
                info.prefix, account_id=info.account_id, org_id=info.organization_id
            )
            folder = f"{root}CloudTrail/"
    except ValueError:
        # The prefix itself is wrong: the listing said so already; name what was configured.
        folder = info.prefix
    return f"s3://{info.bucket}/{folder}"


def _what(kind: str) -> str:
    return "EKS audit log" if kind == "eks" else "CloudTrail log"


def _check(kind: str) -> str:
    if kind == "eks":
        return (
            "check that the cluster's audit logging is on and that its CloudWatch Logs "
            "subscription feeds the Firehose stream that writes to this bucket"
        )
    return "check that the trail is logging and delivers to this bucket and prefix"


def silence_reason(
    *,
    kind: str,
    folder: str,
    newest_seen: datetime | None,
    now: datetime,
    policy: SilencePolicy,
    source_ref: str,
) -> str | None:
    """Why a source that was just harvested successfully is silent, or None when it is not.

    ``newest_seen`` is the key time of the newest object ever listed for the source (None:
    none yet); ``folder`` where its logs are expected (:func:`log_folder`).
    """
    doctor = f"`harvester doctor {source_ref}` checks the layout"
    if newest_seen is None:
        return f"no {_what(kind)}s under {folder} since the first harvest: {_check(kind)}; {doctor}"
    expected = policy.expectation(kind)
    quiet = now - newest_seen
    if quiet <= expected:
        return None
    return (
        f"no new {_what(kind)} under {folder} for {format_duration(quiet)} (expected one at "
        f"least every {format_duration(expected)}): {_check(kind)}; {doctor}"
    )
