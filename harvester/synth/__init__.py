"""Deterministic synthetic CloudTrail and EKS audit logs for tests, demos and benchmarks."""

from harvester.synth.logs import (
    WriteSummary,
    cloudtrail_record,
    k8s_audit_event,
    write_cloudtrail_object,
    write_eks_firehose_object,
    write_eks_ndjson_object,
)

__all__ = [
    "WriteSummary",
    "cloudtrail_record",
    "k8s_audit_event",
    "write_cloudtrail_object",
    "write_eks_firehose_object",
    "write_eks_ndjson_object",
]
