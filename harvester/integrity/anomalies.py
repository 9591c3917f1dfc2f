"""Integrity findings as anomalies: what failed to verify, said the way an auditor reads it.

Every anomaly here is ``high``: a log file or digest that does not verify means the record
of what happened in an account can no longer be trusted, which is what someone covering
their tracks does (ATT&CK T1070 Indicator Removal, T1562.008 Disable or Modify Cloud Logs).
The dedup key is stable per digest and log file, so verifying again (or a redo after a
crash) updates the anomaly instead of adding one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from harvester.detect.model import SCORE_OF, Anomaly, Evidence, Severity, stable_digest
from harvester.integrity.verify import (
    ChainId,
    ChainStatus,
    DigestCheck,
    LogCheck,
    LogStatus,
    SignatureStatus,
)

__all__ = [
    "DETECTORS",
    "TACTICS",
    "TECHNIQUES",
    "OverdueDigest",
    "anomalies_for",
    "overdue_anomaly",
]

TACTICS = ("TA0005",)  # defense evasion
TECHNIQUES = ("T1070", "T1562.008")
SEVERITY = Severity.high
VERSION = 1

DETECTORS = {
    "log_altered": "CloudTrail log file altered after delivery",
    "log_missing": "CloudTrail log file deleted after delivery",
    "digest_invalid": "CloudTrail digest file fails its signature check",
    "unknown_key": "CloudTrail digest file signed by an unknown key",
    "chain_broken": "CloudTrail digest chain broken",
    "digest_missing": "CloudTrail digest file deleted (gap in the chain)",
    "chain_restarted": "CloudTrail logging interrupted (new digest chain)",
    "digest_overdue": "CloudTrail digests stopped while logs kept arriving",
}


@dataclass(frozen=True, slots=True)
class OverdueDigest:
    """No digest since ``last_end`` although logs delivered after it were harvested."""

    bucket: str
    chain: ChainId
    last_key: str
    last_end: datetime
    first_uncovered_log: str
    first_uncovered_time: datetime


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "an unknown time"


def _s3(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}" if bucket else key


def _digest_evidence(bucket: str, key: str, time: datetime, action: str) -> Evidence:
    return Evidence(
        event_id=f"digest:{_s3(bucket, key)}",
        time=time,
        source="cloudtrail",
        action=action,
        bucket=bucket,
        key=key,
        index=0,
    )


def _anomaly(
    kind: str,
    *,
    scope: tuple[str, ...],
    account: str,
    region: str | None,
    first_seen: datetime,
    last_seen: datetime,
    explanation: str,
    evidence: Iterable[Evidence],
) -> Anomaly:
    dedup = stable_digest("integrity", kind, *scope)
    return Anomaly(
        id=f"an-{dedup[:16]}",
        dedup_key=dedup,
        detector=f"integrity.{kind}",
        detector_version=VERSION,
        title=DETECTORS[kind],
        severity=SEVERITY,
        score=SCORE_OF[SEVERITY],
        account_id=account or None,
        region=region,
        cluster=None,
        principal=None,
        identity=None,
        source_ip=None,
        first_seen=min(first_seen, last_seen),
        last_seen=max(first_seen, last_seen),
        count=1,
        explanation=explanation,
        evidence=tuple(evidence),
        mitre_tactics=TACTICS,
        mitre_techniques=TECHNIQUES,
    )


def _hour(check: DigestCheck) -> str:
    if check.digest is None:
        return f"delivered {_when(check.delivered_at)}"
    return f"covering {_when(check.digest.start_time)} to {_when(check.digest.end_time)}"


def _log_anomaly(check: DigestCheck, log: LogCheck) -> Anomaly:
    assert check.digest is not None
    where = _s3(log.bucket, log.key)
    digest_where = check.location
    delivered = check.digest.start_time
    if log.status is LogStatus.MISSING:
        kind = "log_missing"
        explanation = (
            f"The CloudTrail log file {where} is listed in the signed digest {digest_where} "
            f"({_hour(check)}), but it is no longer in the bucket. A log file deleted after "
            "delivery hides the API activity it recorded; restore it from a backup or a "
            "replica bucket and find who deleted it (S3 server access logs or CloudTrail data "
            "events for DeleteObject)."
        )
    else:
        kind = "log_altered"
        why = log.detail or (
            f"its SHA-256 is {log.actual}, but CloudTrail recorded {log.expected} when it "
            "delivered it"
        )
        explanation = (
            f"The CloudTrail log file {where} is not the file CloudTrail delivered: {why} "
            f"(signed digest {digest_where}, {_hour(check)}). Someone changed or replaced it "
            "after delivery, so its events cannot be trusted and the original may have "
            "recorded activity that was removed."
        )
    evidence = [
        _digest_evidence(check.bucket, check.key, check.digest.end_time, "CloudTrail-Digest"),
        Evidence(
            event_id=f"log:{where}",
            time=delivered,
            source="cloudtrail",
            action="CloudTrail log file",
            bucket=log.bucket,
            key=log.key,
            index=log.index,
        ),
    ]
    return _anomaly(
        kind,
        scope=(check.bucket, check.key, log.bucket, log.key),
        account=check.parsed.account,
        region=check.parsed.region,
        first_seen=check.digest.start_time,
        last_seen=check.digest.end_time,
        explanation=explanation,
        evidence=evidence,
    )


def _digest_anomalies(check: DigestCheck) -> list[Anomaly]:
    found: list[Anomaly] = []
    start = check.digest.start_time if check.digest else check.delivered_at - timedelta(hours=1)
    end = check.digest.end_time if check.digest else check.delivered_at
    evidence = [_digest_evidence(check.bucket, check.key, end, "CloudTrail-Digest")]

    def about_digest(kind: str, explanation: str, extra: Iterable[Evidence] = ()) -> Anomaly:
        return _anomaly(
            kind,
            scope=(check.bucket, check.key),
            account=check.parsed.account,
            region=check.parsed.region,
            first_seen=start,
            last_seen=end,
            explanation=explanation,
            evidence=[*evidence, *extra],
        )

    consequence = (
        "Until it is explained, none of the log files it lists can be proven complete or unaltered."
    )
    if check.problem or check.signature in (SignatureStatus.INVALID, SignatureStatus.UNSIGNED):
        if check.problem:
            why = check.problem
        elif check.signature is SignatureStatus.UNSIGNED:
            why = (
                "it carries no signature in its object metadata, which CloudTrail always "
                "writes; it was re-uploaded by someone else"
            )
        else:
            why = (
                "its signature does not match its content: it was changed after CloudTrail "
                "signed it, or CloudTrail did not write it"
            )
        found.append(
            about_digest(
                "digest_invalid",
                f"The CloudTrail digest file {check.location} ({_hour(check)}) cannot be "
                f"trusted: {why}. {consequence}",
            )
        )
    if check.signature is SignatureStatus.UNKNOWN_KEY:
        found.append(
            about_digest(
                "unknown_key",
                f"The CloudTrail digest file {check.location} ({_hour(check)}) says it was "
                f"signed with the key whose fingerprint is {check.key_fingerprint}, but "
                f"CloudTrail has published no such key for {check.parsed.region}. CloudTrail "
                f"did not write this digest. {consequence}",
            )
        )
    chain = check.chain_id.describe()
    if check.chain is ChainStatus.BROKEN:
        found.append(
            about_digest(
                "chain_broken",
                f"The CloudTrail digest file {check.location} ({_hour(check)}) and the one "
                f"before it do not match: {check.chain_detail}. One of them was replaced "
                f"after delivery, breaking the record of {chain}. {consequence}",
                [
                    _digest_evidence(
                        check.bucket, check.previous_key or "", start, "previous CloudTrail-Digest"
                    )
                ],
            )
        )
    elif check.chain is ChainStatus.GAP:
        found.append(
            _anomaly(
                "digest_missing",
                scope=(check.bucket, check.previous_key or "", check.key),
                account=check.parsed.account,
                region=check.parsed.region,
                first_seen=check.gap_start or start - timedelta(hours=1),
                last_seen=check.gap_end or start,
                explanation=(
                    f"The CloudTrail digest file {check.previous_location} is missing: the "
                    f"next digest, {check.location}, names it as its predecessor. For "
                    f"{chain}, {_span_words(check)} is no longer covered by a digest, so "
                    "log files delivered then cannot be proven complete or unaltered. A "
                    "deleted digest often goes with deleted log files."
                ),
                evidence=[
                    *evidence,
                    _digest_evidence(
                        check.bucket,
                        check.previous_key or "",
                        check.gap_end or start,
                        "missing CloudTrail-Digest",
                    ),
                ],
            )
        )
    elif check.chain is ChainStatus.RESTARTED:
        found.append(
            _anomaly(
                "chain_restarted",
                scope=(check.bucket, check.key),
                account=check.parsed.account,
                region=check.parsed.region,
                first_seen=check.gap_start or start,
                last_seen=check.gap_end or start,
                explanation=(
                    f"CloudTrail began a new digest chain for {chain} with "
                    f"{check.location}: no digest covers {_span_words(check)}. CloudTrail "
                    "does this after logging was stopped (StopLogging) or log file "
                    "validation was turned off (UpdateTrail), or when the digests of that "
                    "time were deleted. Check who changed the trail then; activity in that "
                    "time may not have been recorded."
                ),
                evidence=evidence,
            )
        )
    return found


def _span_words(check: DigestCheck) -> str:
    if check.gap_start is None:
        return f"the time before {_when(check.gap_end)}"
    return f"the time from {_when(check.gap_start)} to {_when(check.gap_end)}"


def anomalies_for(check: DigestCheck) -> list[Anomaly]:
    """The anomalies a verified digest raises (none when it verified, or could not be checked)."""
    if check.error:
        return []
    found = _digest_anomalies(check)
    found.extend(
        _log_anomaly(check, log)
        for log in check.logs
        if log.status in (LogStatus.MISSING, LogStatus.ALTERED)
    )
    return found


def overdue_anomaly(finding: OverdueDigest, *, location: str) -> Anomaly:
    chain = finding.chain
    return _anomaly(
        "digest_overdue",
        scope=(finding.bucket, chain.account, chain.region, chain.trail, finding.last_key),
        account=chain.account,
        region=chain.region,
        first_seen=finding.last_end,
        last_seen=finding.first_uncovered_time,
        explanation=(
            f"No CloudTrail digest file has been delivered for {chain.describe()} since the "
            f"one that ended {_when(finding.last_end)} ({location}), although log files "
            f"kept arriving (the first not covered by any digest, "
            f"{_s3(finding.bucket, finding.first_uncovered_log)}, was delivered "
            f"{_when(finding.first_uncovered_time)}). CloudTrail delivers a digest every hour "
            "while log file validation is on: the later digests were deleted, or validation "
            "was turned off. Log files since then cannot be proven complete or unaltered."
        ),
        evidence=[
            _digest_evidence(
                finding.bucket, finding.last_key, finding.last_end, "last CloudTrail-Digest"
            ),
            Evidence(
                event_id=f"log:{_s3(finding.bucket, finding.first_uncovered_log)}",
                time=finding.first_uncovered_time,
                source="cloudtrail",
                action="CloudTrail log file",
                bucket=finding.bucket,
                key=finding.first_uncovered_log,
                index=0,
            ),
        ],
    )
