"""What a parser saw in one object; filled in while it streams, final once it stops."""

from __future__ import annotations

from dataclasses import dataclass, field

from harvester.parse.gzipstream import ContentReader

__all__ = ["ParseStats"]


@dataclass(slots=True)
class ParseStats:
    """Counters for one object, final once the parser's iterator is exhausted or raised.

    ``sha256`` (hex, of the uncompressed content) is set only when the content was read to
    its end and hashing was on (by default for CloudTrail, whose digests list it).
    ``events`` counts the events yielded so far; ``complete`` is True only after a clean end.

    CloudTrail: ``records_found`` is False for a document without a ``Records`` array;
    ``digest`` is True when it looks like a CloudTrail-Digest file (then there are no
    events: verify it with a digest reader instead).

    EKS: ``envelopes`` counts CloudWatch Logs payloads, of which ``control_messages`` and
    ``non_audit_envelopes`` (other control-plane streams, by family in
    ``non_audit_streams``) carry no audit events; ``raw_events`` is True for
    newline-delimited Events (Firehose message extraction).
    """

    events: int = 0
    complete: bool = False
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    sha256: str | None = None
    gzip: bool = False
    gzip_members: int = 0
    records_found: bool = False
    digest: bool = False
    envelopes: int = 0
    control_messages: int = 0
    non_audit_envelopes: int = 0
    non_audit_log_events: int = 0
    non_audit_streams: dict[str, int] = field(default_factory=dict)
    raw_events: bool = False

    def take_counts(self, reader: ContentReader) -> None:
        """Copy the byte counts (and the hash, if the content was read to its end)."""
        self.compressed_bytes = reader.compressed_bytes
        self.uncompressed_bytes = reader.uncompressed_bytes
        self.sha256 = reader.sha256
        self.gzip = reader.is_gzip
        self.gzip_members = reader.gzip_members
