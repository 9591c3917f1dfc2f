"""A CloudTrail trail as CloudTrail delivers it, signed with a test RSA key, in memory.

``Trail`` writes log files and hourly digests (chained, signed SHA256withRSA the way AWS's
validator checks them, signature in the object metadata) into a dict of objects; tests
tamper with that dict (or with the moto bucket after ``put_all``). ``MemoryStore`` serves
the dict through the verifier's ``TrailStore`` protocol for the unit tests.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harvester.integrity.digest import DigestFormatError, signing_string
from harvester.integrity.stores import DigestObject, HashedObject, ObjectStat
from harvester.parse import ContentReader
from harvester.synth.logs import cloudtrail_record

ACCOUNT = "123456789012"
BUCKET = "trail-bucket"
TRAIL = "org_trail-1"  # an underscore in the name, as AWS allows
START = datetime(2026, 1, 15, 0, 0, 31, tzinfo=UTC)  # digests end a little past the hour


@cache
def signing_key(name: str = "cloudtrail") -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key per name, made once per test process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_der(key: rsa.RSAPrivateKey) -> bytes:
    # CloudTrail publishes PKCS #1 RSAPublicKey DER.
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )


def fingerprint(key: rsa.RSAPrivateKey) -> str:
    return hashlib.md5(public_der(key), usedforsecurity=False).hexdigest()


def public_keys_json(*keys: rsa.RSAPrivateKey) -> str:
    """What ``aws cloudtrail list-public-keys`` prints for these keys."""
    return json.dumps(
        {
            "PublicKeyList": [
                {
                    "Value": base64.b64encode(public_der(key)).decode(),
                    "ValidityStartTime": "2025-12-01T00:00:00Z",
                    "ValidityEndTime": "2026-03-01T00:00:00Z",
                    "Fingerprint": fingerprint(key),
                }
                for key in keys
            ]
        }
    )


def sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Stored:
    body: bytes
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()


@dataclass
class Link:
    key: str
    signature: str
    sha256: str
    end: datetime


class Trail:
    """One trail's delivery into one bucket: log files, and a signed digest per hour."""

    def __init__(
        self,
        *,
        bucket: str = BUCKET,
        account: str = ACCOUNT,
        trail: str = TRAIL,
        home_region: str = "us-east-1",
        prefix: str = "",
        key: rsa.RSAPrivateKey | None = None,
        seed: int = 11,
    ) -> None:
        self.bucket = bucket
        self.account = account
        self.trail = trail
        self.home_region = home_region
        self.prefix = prefix
        self.key = key or signing_key()
        self.rng = random.Random(seed)
        self.objects: dict[str, Stored] = {}
        self.last: dict[str, Link] = {}  # region -> last regular digest
        self.digests: dict[str, list[str]] = {}  # region -> regular digest keys, in order
        self.logs_of: dict[str, list[str]] = {}  # digest key -> the log keys it lists
        self.serial = 0

    # --- keys ------------------------------------------------------------------------------

    def root(self) -> str:
        return f"{self.prefix}AWSLogs/{self.account}/"

    def log_key(self, region: str, when: datetime) -> str:
        self.serial += 1
        return (
            f"{self.root()}CloudTrail/{region}/{when:%Y/%m/%d}/"
            f"{self.account}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{self.serial:016X}.json.gz"
        )

    def digest_key(self, region: str, end: datetime, *, backfill: bool = False) -> str:
        suffix = "_backfill" if backfill else ""
        return (
            f"{self.root()}CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
            f"{self.account}_CloudTrail-Digest_{region}_{self.trail}_{self.home_region}_"
            f"{end:%Y%m%dT%H%M%SZ}{suffix}.json.gz"
        )

    # --- writing ---------------------------------------------------------------------------

    def log(self, region: str, when: datetime, *, records: int = 3) -> str:
        body = [
            cloudtrail_record(
                self.rng, account_id=self.account, region=region, when=when + timedelta(seconds=i)
            )
            for i in range(records)
        ]
        key = self.log_key(region, when)
        self.objects[key] = Stored(gzip.compress(json.dumps({"Records": body}).encode()))
        return key

    def content(self, key: str) -> bytes:
        return gzip.decompress(self.objects[key].body)

    def digest(
        self,
        region: str,
        *,
        end: datetime,
        logs: Sequence[str],
        start: datetime | None = None,
        backfill: bool = False,
        new_chain: bool = False,
        signer: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A signed digest listing ``logs``; a regular one links to the region's last."""
        previous = None if (backfill or new_chain) else self.last.get(region)
        if start is None:
            start = previous.end if previous is not None else end - timedelta(hours=1)
        key = self.digest_key(region, end, backfill=backfill)
        signer = signer or self.key
        log_files = []
        for log in logs:
            content = self.content(log)
            log_files.append(
                {
                    "s3Bucket": self.bucket,
                    "s3Object": log,
                    "hashValue": hashlib.sha256(content).hexdigest(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": iso(end - timedelta(minutes=5)),
                    "oldestEventTime": iso(start),
                }
            )
        document: dict[str, Any] = {
            "awsAccountId": self.account,
            "digestStartTime": iso(start),
            "digestEndTime": iso(end),
            "digestS3Bucket": self.bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": fingerprint(signer),
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": iso(end - timedelta(minutes=5)) if logs else None,
            "oldestEventTime": iso(start) if logs else None,
            "previousDigestS3Bucket": self.bucket if previous else None,
            "previousDigestS3Object": previous.key if previous else None,
            "previousDigestHashValue": previous.sha256 if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous.signature if previous else None,
            "logFiles": log_files,
        }
        content = json.dumps(document).encode()
        sha = hashlib.sha256(content).hexdigest()
        signature = sign(
            signer,
            signing_string(
                end_time=iso(end),
                bucket=self.bucket,
                key=key,
                content_sha256=sha,
                previous_signature=previous.signature if previous else None,
            ),
        )
        self.objects[key] = Stored(
            gzip.compress(content),
            {"signature": signature, "signature-algorithm": "SHA256withRSA"},
        )
        self.logs_of[key] = list(logs)
        if not backfill:
            self.last[region] = Link(key, signature, sha, end)
            self.digests.setdefault(region, []).append(key)
        return key

    def hours(
        self,
        regions: Iterable[str],
        *,
        start: datetime = START,
        count: int = 6,
        logs_per_hour: int = 2,
        records: int = 3,
    ) -> None:
        """``count`` hours of regular delivery: log files, then the hour's digest."""
        for hour in range(count):
            begin = start + timedelta(hours=hour)
            end = begin + timedelta(hours=1)
            for region in regions:
                logs = [
                    self.log(region, begin + timedelta(minutes=5 + 25 * n), records=records)
                    for n in range(logs_per_hour)
                ]
                self.digest(region, end=end, logs=logs)

    # --- tampering helpers -----------------------------------------------------------------

    def rewrite_digest(self, key: str, change: Any, *, resign: bool = True) -> None:
        """Edit a digest's JSON (``change(document)``); re-sign it with the trail's key."""
        stored = self.objects[key]
        document = json.loads(gzip.decompress(stored.body))
        change(document)
        content = json.dumps(document).encode()
        metadata = dict(stored.metadata)
        if resign:
            metadata["signature"] = sign(
                self.key,
                signing_string(
                    end_time=document["digestEndTime"],
                    bucket=document["digestS3Bucket"],
                    key=document["digestS3Object"],
                    content_sha256=hashlib.sha256(content).hexdigest(),
                    previous_signature=document["previousDigestSignature"],
                ),
            )
        self.objects[key] = Stored(gzip.compress(content), metadata)

    def put_all(self, s3: Any) -> None:
        for key, stored in self.objects.items():
            s3.put_object(Bucket=self.bucket, Key=key, Body=stored.body, Metadata=stored.metadata)


def altered_log(body: bytes) -> bytes:
    """The log file with one record's source IP changed: what someone hiding a call does."""
    document = json.loads(gzip.decompress(body))
    document["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    return gzip.compress(json.dumps(document).encode())


class MemoryStore:
    """The verifier's TrailStore over a ``Trail``'s objects (the unit tests' bucket)."""

    def __init__(self, trail: Trail, *, signed: bool = True) -> None:
        self.trail = trail
        self._signed = signed
        self.downloads: list[str] = []
        self.digest_reads: list[str] = []

    @property
    def bucket(self) -> str:
        return self.trail.bucket

    @property
    def signed(self) -> bool:
        return self._signed

    def location(self, key: str, bucket: str | None = None) -> str:
        return f"s3://{bucket or self.bucket}/{key}"

    def read_digest(self, key: str, bucket: str | None = None) -> DigestObject | None:
        self.digest_reads.append(key)
        stored = self.trail.objects.get(key)
        if stored is None:
            return None
        try:
            content = gzip.decompress(stored.body)
        except (OSError, EOFError) as exc:
            raise DigestFormatError(f"the digest is not readable gzip ({exc})") from None
        return DigestObject(
            key=key,
            content=content,
            signature=stored.metadata.get("signature") if self._signed else None,
            signature_algorithm=stored.metadata.get("signature-algorithm"),
            etag=stored.etag,
        )

    def stat(self, keys: Sequence[str], bucket: str | None = None) -> dict[str, ObjectStat]:
        return {
            key: ObjectStat(
                key, self.trail.objects[key].etag, len(self.trail.objects[key].body), None
            )
            for key in keys
            if key in self.trail.objects
        }

    def sha256(self, key: str, bucket: str | None = None) -> HashedObject | None:
        self.downloads.append(key)
        stored = self.trail.objects.get(key)
        if stored is None:
            return None
        reader = ContentReader(io.BytesIO(stored.body))
        while reader.read():  # CorruptObjectError propagates, as from S3
            pass
        assert reader.sha256 is not None
        return HashedObject(reader.sha256, reader.compressed_bytes)
