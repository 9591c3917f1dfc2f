"""Streaming parsers for CloudTrail and EKS log objects; memory does not grow with size.

``parse_object`` is the front door the harvest pipeline calls::

    stats = ParseStats()
    for event in parse_object(body, kind="cloudtrail", bucket=b, key=k, stats=stats):
        ...
    stats.sha256, stats.uncompressed_bytes  # final once the loop ends

Only ``CorruptObjectError`` escapes about the content (after the valid records before the
fault); errors from ``stream.read`` itself pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from harvester.events import Event
from harvester.parse.cloudtrail import iter_cloudtrail_batches, parse_cloudtrail
from harvester.parse.eks import parse_eks, stream_family
from harvester.parse.errors import REASONS, CorruptObjectError, CorruptReason, ParseError
from harvester.parse.framing import DEFAULT_MAX_VALUE_BYTES
from harvester.parse.gzipstream import ContentReader, Readable
from harvester.parse.stats import ParseStats

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "REASONS",
    "ContentReader",
    "CorruptObjectError",
    "CorruptReason",
    "ObjectKind",
    "ParseError",
    "ParseStats",
    "Readable",
    "iter_cloudtrail_batches",
    "parse_cloudtrail",
    "parse_eks",
    "parse_object",
    "stream_family",
]

ObjectKind = Literal["cloudtrail", "eks"]


def parse_object(
    stream: Readable,
    *,
    kind: ObjectKind,
    bucket: str,
    key: str,
    cluster: str | None = None,
    account: str | None = None,
    region: str | None = None,
    stats: ParseStats | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    hash_content: bool | None = None,
    copy_payloads: bool = True,
) -> Iterator[Event]:
    """Normalized events of one object. ``cluster``/``account``/``region`` matter for EKS.

    ``hash_content`` (default: for CloudTrail only, whose digests need it) fills
    ``stats.sha256`` once the object has been read to its end. ``copy_payloads=False``
    (CloudTrail) suits a caller that encodes each event and drops it: see ``from_cloudtrail``.
    """
    if kind == "cloudtrail":
        return parse_cloudtrail(
            stream,
            bucket=bucket,
            key=key,
            stats=stats,
            max_value_bytes=max_value_bytes,
            hash_content=True if hash_content is None else hash_content,
            copy_payloads=copy_payloads,
        )
    if kind == "eks":
        return parse_eks(
            stream,
            bucket=bucket,
            key=key,
            cluster=cluster,
            account=account,
            region=region,
            stats=stats,
            max_value_bytes=max_value_bytes,
            hash_content=bool(hash_content),
        )
    raise ValueError(f"unknown object kind {kind!r}")
