"""The :class:`~harvester.sources.listing.Lister` protocol over a boto3 S3 client.

The client comes from the caller (the AWS session factory), already bound to the right
credentials and region: this module builds no sessions and converts no errors, so
``ClientError`` reaches the boundary that knows how to explain it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harvester.aws.errors import aws_errors
from harvester.sources.ledger import normalize_etag
from harvester.sources.listing import PAGE_SIZE, ListedObject, ListPage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestTypeDef


def _utc(value: datetime | str) -> datetime:
    # A client built with timestamp parsing turned off (botocore spends most of a page's
    # parse time on timestamps) hands back the ISO 8601 text instead of a datetime.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class S3Lister:
    """ListObjectsV2 on one bucket, one call per :meth:`list_page`."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def list_page(
        self,
        *,
        prefix: str,
        start_after: str | None = None,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        max_keys: int = PAGE_SIZE,
    ) -> ListPage:
        request: ListObjectsV2RequestTypeDef = {
            "Bucket": self.bucket,
            "Prefix": prefix,
            "MaxKeys": max_keys,
        }
        if start_after:
            request["StartAfter"] = start_after
        if delimiter:
            request["Delimiter"] = delimiter
        if continuation_token:
            request["ContinuationToken"] = continuation_token
        # AWS errors become domain errors here, at the boundary: callers act on AccessDenied,
        # NoSuchBucket or Throttled, never on botocore's exceptions.
        with aws_errors(operation="ListObjectsV2", bucket=self.bucket, key=prefix):
            response = self._client.list_objects_v2(**request)
        objects = tuple(
            ListedObject(
                key=item["Key"],
                etag=normalize_etag(item.get("ETag", "")),
                size=item.get("Size", 0),
                last_modified=_utc(item["LastModified"]),
            )
            for item in response.get("Contents", [])
        )
        prefixes = tuple(p["Prefix"] for p in response.get("CommonPrefixes", []) if "Prefix" in p)
        token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return ListPage(objects=objects, prefixes=prefixes, next_token=token or None)
