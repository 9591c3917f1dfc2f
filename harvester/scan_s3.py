"""``s3://bucket/prefix`` as an object source for the offline scan and verify commands."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from harvester.aws.s3 import open_object
from harvester.aws.session import ClientSettings
from harvester.parse import Readable
from harvester.scan import SourceObject
from harvester.sources.listing import iter_objects
from harvester.sources.s3lister import S3Lister

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3UrlError(ValueError):
    """Not an ``s3://bucket[/prefix]`` URL."""


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        if not url.startswith("s3://"):  # s3:/x, s3:x: typos of a URL, not paths
            raise S3UrlError(f"{url!r} is not an s3:// URL (expected s3://bucket/prefix)")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise S3UrlError(f"{url!r} names no bucket (expected s3://bucket/prefix)")
        return cls(bucket, prefix)


def s3_client(*, endpoint_url: str | None = None, region: str | None = None) -> S3Client:
    """A client on the usual AWS credential chain (profile, environment, instance role)."""
    return boto3.Session(region_name=region).client(
        "s3", endpoint_url=endpoint_url, config=ClientSettings().to_config()
    )


def s3_objects(client: S3Client, url: S3Url) -> Iterator[SourceObject]:
    """Every object under the URL's prefix, in key order, opened lazily when scanned."""
    lister = S3Lister(client, url.bucket)
    for obj in iter_objects(lister, prefix=url.prefix):
        if obj.size == 0 or obj.key.endswith("/"):
            continue
        yield SourceObject(
            key=obj.key, open=_opener(client, url.bucket, obj.key), bucket=url.bucket
        )


def _opener(
    client: S3Client, bucket: str, key: str
) -> Callable[[], AbstractContextManager[Readable]]:
    def opener() -> AbstractContextManager[Readable]:
        return io.BufferedReader(open_object(client, bucket, key), buffer_size=256 * 1024)

    return opener
