"""CloudTrail digest files: their content, and the string CloudTrail signs.

A digest is gzip of one JSON object that names the log files delivered in an hour with the
SHA-256 of each (of the *uncompressed* file), and links to the digest before it (its key,
the SHA-256 of its uncompressed content and its signature). Its own signature is not in it:
CloudTrail puts it in the object's user metadata (``x-amz-meta-signature``, hex, and
``x-amz-meta-signature-algorithm``, ``SHA256withRSA``).

The signed string follows AWS's reference validator (the AWS CLI's ``validate-logs``,
``awscli/customizations/cloudtrail/validation.py``)::

    digestEndTime + "\\n" + digestS3Bucket + "/" + digestS3Object + "\\n"
    + hex(SHA-256(uncompressed digest)) + "\\n" + previousDigestSignature

with ``previousDigestSignature`` written ``null`` for the first digest of a chain, and the
fields exactly as they appear in the JSON (never re-formatted: a time written another way
would sign another string).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "SIGNATURE_ALGORITHM",
    "Digest",
    "DigestFormatError",
    "LogFileEntry",
    "parse_digest",
    "signing_string",
]

SIGNATURE_ALGORITHM = "SHA256withRSA"
# The fields AWS's validator refuses to go without: everything the signature and the chain
# need. logFiles may legitimately be empty (an hour with no delivery still gets a digest).
REQUIRED = (
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
)


class DigestFormatError(ValueError):
    """The content is not a CloudTrail digest; the message says what is wrong, in words."""


@dataclass(frozen=True, slots=True)
class LogFileEntry:
    """One ``logFiles[]`` entry: a log file CloudTrail delivered, and its hash."""

    bucket: str
    key: str
    hash_value: str  # lowercase hex SHA-256 of the uncompressed log file
    hash_algorithm: str
    newest_event_time: datetime | None
    oldest_event_time: datetime | None


@dataclass(frozen=True, slots=True)
class Digest:
    """A parsed digest file. ``end_time_text`` keeps ``digestEndTime`` as written, for signing."""

    account_id: str
    start_time: datetime
    end_time: datetime
    end_time_text: str
    bucket: str
    key: str
    public_key_fingerprint: str
    signature_algorithm: str
    newest_event_time: datetime | None
    oldest_event_time: datetime | None
    previous_bucket: str | None
    previous_key: str | None
    previous_hash_value: str | None
    previous_hash_algorithm: str | None
    previous_signature: str | None
    log_files: tuple[LogFileEntry, ...]
    sha256: str  # of the uncompressed content this was parsed from

    @property
    def starts_chain(self) -> bool:
        """The first digest after validation or logging was (re)started: it links to nothing."""
        return self.previous_key is None

    def signed_bytes(self) -> bytes:
        return signing_string(
            end_time=self.end_time_text,
            bucket=self.bucket,
            key=self.key,
            content_sha256=self.sha256,
            previous_signature=self.previous_signature,
        )


def signing_string(
    *,
    end_time: str,
    bucket: str,
    key: str,
    content_sha256: str,
    previous_signature: str | None,
) -> bytes:
    """The bytes CloudTrail signs (SHA256withRSA) for a digest; see the module docstring."""
    # "null" for a chain's first digest: what AWS's Java signer writes for a null field.
    previous = "null" if previous_signature is None else previous_signature
    return f"{end_time}\n{bucket}/{key}\n{content_sha256}\n{previous}".encode()


def _text(data: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if optional:
            return None
        raise DigestFormatError(f"the digest has no {name}")
    if not isinstance(value, str):
        raise DigestFormatError(f"the digest's {name} is not text: {value!r}")
    return value


def _required(data: Mapping[str, Any], name: str) -> str:
    value = _text(data, name)
    assert value is not None
    return value


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DigestFormatError(f"the digest's {name} is not a time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _required_time(data: Mapping[str, Any], name: str) -> datetime:
    parsed = _time(_required(data, name), name)
    assert parsed is not None
    return parsed


def _hex(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        raise DigestFormatError(f"the digest's {name} is not hexadecimal") from None
    return value.lower()


def _log_file(entry: object, index: int) -> LogFileEntry:
    if not isinstance(entry, dict):
        raise DigestFormatError(f"logFiles[{index}] is not an object")
    where = f"logFiles[{index}]"
    try:
        bucket = _required(entry, "s3Bucket")
        key = _required(entry, "s3Object")
        hash_value = _hex(_required(entry, "hashValue"), f"{where}.hashValue")
        algorithm = _text(entry, "hashAlgorithm", optional=True) or "SHA-256"
        newest = _time(_text(entry, "newestEventTime", optional=True), f"{where}.newestEventTime")
        oldest = _time(_text(entry, "oldestEventTime", optional=True), f"{where}.oldestEventTime")
    except DigestFormatError as exc:
        raise DigestFormatError(f"{where}: {exc}") from None
    assert hash_value is not None
    return LogFileEntry(bucket, key, hash_value, algorithm, newest, oldest)


def parse_digest(content: bytes) -> Digest:
    """Parse the uncompressed content of a digest file; raises :class:`DigestFormatError`."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise DigestFormatError(f"the digest is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DigestFormatError("the digest is not a JSON object")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise DigestFormatError(f"the digest lacks {', '.join(missing)}")
    log_files = data.get("logFiles", [])
    if not isinstance(log_files, list):
        raise DigestFormatError("the digest's logFiles is not a list")
    previous_key = _text(data, "previousDigestS3Object", optional=True)
    return Digest(
        account_id=_text(data, "awsAccountId", optional=True) or "",
        start_time=_required_time(data, "digestStartTime"),
        end_time=_required_time(data, "digestEndTime"),
        end_time_text=_required(data, "digestEndTime"),
        bucket=_required(data, "digestS3Bucket"),
        key=_required(data, "digestS3Object"),
        public_key_fingerprint=_required(data, "digestPublicKeyFingerprint"),
        signature_algorithm=_text(data, "digestSignatureAlgorithm", optional=True)
        or SIGNATURE_ALGORITHM,
        newest_event_time=_time(_text(data, "newestEventTime", optional=True), "newestEventTime"),
        oldest_event_time=_time(_text(data, "oldestEventTime", optional=True), "oldestEventTime"),
        previous_bucket=_text(data, "previousDigestS3Bucket", optional=True),
        previous_key=previous_key,
        previous_hash_value=_hex(
            _text(data, "previousDigestHashValue", optional=True), "previousDigestHashValue"
        ),
        previous_hash_algorithm=_text(data, "previousDigestHashAlgorithm", optional=True),
        # Kept as written: it is part of the signed string, and hex case must not change.
        previous_signature=_text(data, "previousDigestSignature", optional=True),
        log_files=tuple(_log_file(entry, i) for i, entry in enumerate(log_files)),
        sha256=hashlib.sha256(content).hexdigest(),
    )
