"""S3 operations the harvester needs, each raising only domain errors (``harvester.aws.errors``).

Thin wrappers: they take a client from the session factory, call one API, and convert what
goes wrong at the boundary, naming the bucket and key. Reading an object is streamed: the
returned :class:`ObjectStream` is a raw binary file that converts errors raised mid-read too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from harvester import metrics
from harvester.aws.errors import NotFound, WrongRegion, aws_errors, convert

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "BucketEncryption",
    "ObjectInfo",
    "ObjectMeta",
    "ObjectStream",
    "bucket_region",
    "check_bucket",
    "get_bucket_encryption",
    "get_bucket_policy",
    "head_object",
    "iter_objects",
    "list_prefixes",
    "open_object",
]


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class ObjectMeta:
    """What HeadObject says about an object, as far as the harvester cares."""

    key: str
    etag: str
    size: int
    last_modified: datetime | None
    server_side_encryption: str | None  # "AES256" | "aws:kms" | "aws:kms:dsse" | None
    kms_key_id: str | None

    @property
    def sse_kms(self) -> bool:
        sse = self.server_side_encryption
        return bool(sse and sse.startswith("aws:kms"))


@dataclass(frozen=True)
class BucketEncryption:
    """A bucket's default encryption rule (the first one: S3 allows exactly one)."""

    algorithm: str | None  # "AES256" | "aws:kms" | "aws:kms:dsse"
    kms_key_id: str | None
    bucket_key_enabled: bool

    @property
    def sse_kms(self) -> bool:
        return bool(self.algorithm and self.algorithm.startswith("aws:kms"))


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def bucket_region(client: S3Client, bucket: str, *, principal: str | None = None) -> str:
    """The bucket's region, from HeadBucket's ``x-amz-bucket-region`` header.

    HeadBucket answers with the header even when the client is in another region (the
    redirect response carries it), so this works from any region.
    """
    with aws_errors(operation="HeadBucket", bucket=bucket, principal=principal):
        response = client.head_bucket(Bucket=bucket)
    headers: dict[str, str] = dict(response["ResponseMetadata"].get("HTTPHeaders", {}))
    region: str | None = response.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if region:
        return region
    # Some S3-compatible endpoints omit the header; GetBucketLocation is the older way.
    with aws_errors(operation="GetBucketLocation", bucket=bucket, principal=principal):
        location: str | None = client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    # us-east-1 is reported as an empty constraint, and "EU" is the legacy name of eu-west-1.
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else str(location)


def check_bucket(
    client: S3Client, bucket: str, *, region: str, principal: str | None = None
) -> str:
    """Make sure the bucket exists and is in ``region``; return its region.

    Raises :class:`NoSuchBucket`, :class:`WrongRegion` (naming the real region),
    :class:`AccessDenied`, ...
    """
    try:
        actual = bucket_region(client, bucket, principal=principal)
    except WrongRegion as exc:
        exc.configured_region = region
        raise
    if actual != region:
        raise WrongRegion(
            f"bucket {bucket} is in region {actual}, not in the configured region {region}.",
            operation="HeadBucket",
            remedy=f"Set the source's region to {actual}.",
            bucket=bucket,
            region=actual,
            configured_region=region,
        )
    return actual


def iter_objects(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    start_after: str | None = None,
    page_size: int = 1000,
    region: str | None = None,
    principal: str | None = None,
) -> Iterator[ObjectInfo]:
    """Every object under ``prefix`` (after ``start_after``), in key order, page by page."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    if start_after:
        kwargs["StartAfter"] = start_after
    while True:
        with aws_errors(
            operation="ListObjectsV2", bucket=bucket, key=prefix, region=region, principal=principal
        ):
            page = client.list_objects_v2(**kwargs)
        for item in page.get("Contents", []):
            yield ObjectInfo(
                key=item["Key"],
                etag=_strip_etag(item.get("ETag", "")),
                size=int(item.get("Size", 0)),
                last_modified=item["LastModified"],
            )
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = token


def list_prefixes(
    client: S3Client,
    bucket: str,
    prefix: str,
    *,
    delimiter: str = "/",
    region: str | None = None,
    limit: int = 10_000,
    principal: str | None = None,
) -> list[str]:
    """The "folders" directly under ``prefix`` (common prefixes), in key order."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": delimiter}
    found: list[str] = []
    while len(found) < limit:
        with aws_errors(
            operation="ListObjectsV2", bucket=bucket, key=prefix, region=region, principal=principal
        ):
            page = client.list_objects_v2(**kwargs)
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []) if "Prefix" in p)
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
        kwargs["ContinuationToken"] = token
    return found[:limit]


def head_object(
    client: S3Client, bucket: str, key: str, *, principal: str | None = None
) -> ObjectMeta:
    with aws_errors(operation="HeadObject", bucket=bucket, key=key, principal=principal):
        response = client.head_object(Bucket=bucket, Key=key)
    return ObjectMeta(
        key=key,
        etag=_strip_etag(response.get("ETag", "")),
        size=int(response.get("ContentLength", 0)),
        last_modified=response.get("LastModified"),
        server_side_encryption=response.get("ServerSideEncryption"),
        kms_key_id=response.get("SSEKMSKeyId"),
    )


class ObjectStream(io.RawIOBase):
    """A streaming GetObject body as a raw binary file that raises only domain errors.

    Wrap it in ``io.BufferedReader`` (or hand it to a gzip reader) to parse as it arrives;
    nothing is read into memory beyond what the caller asks for.
    """

    def __init__(
        self,
        body: Any,
        *,
        bucket: str,
        key: str,
        size: int | None,
        sse_kms: bool = False,
        principal: str | None = None,
    ) -> None:
        super().__init__()
        self._body = body
        self.bucket = bucket
        self.key = key
        self.size = size
        self._sse_kms = sse_kms
        self._principal = principal
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk: bytes = self._body.read(len(view))
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ReadTimeoutError):
                # Mid-body: botocore's hooks saw the request succeed, so count it here.
                metrics.record_aws_timeout("s3", phase="read")
            raise convert(
                exc,
                operation="GetObject",
                bucket=self.bucket,
                key=self.key,
                sse_kms=self._sse_kms,
                principal=self._principal,
            ) from None
        count = len(chunk)
        view[:count] = chunk
        self.bytes_read += count
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
            finally:
                super().close()


def open_object(
    client: S3Client,
    bucket: str,
    key: str,
    *,
    etag: str | None = None,
    byte_range: tuple[int, int] | None = None,
    sse_kms: bool = False,
    principal: str | None = None,
) -> ObjectStream:
    """Start a streaming GET of one object.

    ``etag`` makes S3 refuse (:class:`ObjectChanged`) an object replaced since it was listed,
    so what we record as processed is what we read; ``byte_range`` is inclusive, as in HTTP.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = f'"{_strip_etag(etag)}"'
    if byte_range is not None:
        kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    with aws_errors(
        operation="GetObject", bucket=bucket, key=key, sse_kms=sse_kms, principal=principal
    ):
        response = client.get_object(**kwargs)
    return ObjectStream(
        response["Body"],
        bucket=bucket,
        key=key,
        size=response.get("ContentLength"),
        sse_kms=sse_kms or str(response.get("ServerSideEncryption", "")).startswith("aws:kms"),
        principal=principal,
    )


def get_bucket_policy(client: S3Client, bucket: str, *, principal: str | None = None) -> str | None:
    """The bucket policy document (JSON text), or None when the bucket has none."""
    try:
        with aws_errors(operation="GetBucketPolicy", bucket=bucket, principal=principal):
            return client.get_bucket_policy(Bucket=bucket)["Policy"]
    except NotFound as exc:
        if exc.aws_code == "NoSuchBucketPolicy":
            return None
        raise


def get_bucket_encryption(
    client: S3Client, bucket: str, *, principal: str | None = None
) -> BucketEncryption | None:
    """The bucket's default encryption, or None when none is configured."""
    try:
        with aws_errors(operation="GetBucketEncryption", bucket=bucket, principal=principal):
            response = client.get_bucket_encryption(Bucket=bucket)
    except NotFound as exc:
        if exc.aws_code == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not rules:
        return None
    rule = rules[0]
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return BucketEncryption(
        algorithm=default.get("SSEAlgorithm"),
        kms_key_id=default.get("KMSMasterKeyID"),
        bucket_key_enabled=bool(rule.get("BucketKeyEnabled", False)),
    )
