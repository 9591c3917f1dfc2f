"""Where a trail's digests and log files are read from: an S3 bucket, or a local copy of one.

The verifier speaks in S3 keys only. :class:`S3TrailStore` reads them from a bucket (with
the digests' signatures, which live in the object metadata); :class:`LocalTrailStore`
resolves them inside a folder that ``aws s3 sync`` (or ``cp --recursive``) filled, where
metadata, and so signatures, did not survive the copy.

Hashing streams: a log file is gunzipped and hashed chunk by chunk
(:class:`~harvester.parse.ContentReader`), so its size never matters.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harvester.aws.errors import NoSuchKey, aws_errors
from harvester.aws.s3 import open_object
from harvester.integrity.digest import DigestFormatError, parse_digest
from harvester.parse import ContentReader, CorruptObjectError, Readable
from harvester.sources.layouts import ObjectKind, ParsedKey, ScopeLocation, SourceKind, classify
from harvester.sources.listing import iter_objects
from harvester.sources.s3lister import S3Lister

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "AWSLOGS_MARK",
    "DigestObject",
    "HashedObject",
    "LocalTrailStore",
    "ObjectStat",
    "S3TrailStore",
    "TrailStore",
]

# A digest is a few KB per hundred log files; anything far larger is not a digest.
MAX_DIGEST_BYTES = 64 << 20
AWSLOGS_MARK = "AWSLogs/"


@dataclass(frozen=True, slots=True)
class DigestObject:
    """A digest file as stored: its uncompressed content and its signature metadata."""

    key: str
    content: bytes
    signature: str | None  # hex, from x-amz-meta-signature; None when absent
    signature_algorithm: str | None
    etag: str = ""


@dataclass(frozen=True, slots=True)
class ObjectStat:
    key: str
    etag: str  # "" for a local file
    size: int
    last_modified: datetime | None


@dataclass(frozen=True, slots=True)
class HashedObject:
    sha256: str
    compressed_bytes: int


class TrailStore(Protocol):
    """Read access to a trail's objects by S3 key (``bucket`` None: the store's own bucket)."""

    @property
    def bucket(self) -> str: ...

    @property
    def signed(self) -> bool:
        """Whether digests come with their signature metadata (False for a local copy)."""
        ...

    def location(self, key: str, bucket: str | None = None) -> str:
        """Where an object is, for people: ``s3://bucket/key`` or a file path."""
        ...

    def read_digest(self, key: str, bucket: str | None = None) -> DigestObject | None:
        """The digest, or None when there is no such object. Raises DigestFormatError when
        it is not gzip or too large, AwsError when it cannot be read."""
        ...

    def stat(self, keys: Sequence[str], bucket: str | None = None) -> dict[str, ObjectStat]:
        """The objects of ``keys`` that exist (absent keys are left out)."""
        ...

    def sha256(self, key: str, bucket: str | None = None) -> HashedObject | None:
        """SHA-256 of the uncompressed content, streamed; None when the object is gone.
        Raises CorruptObjectError when it is not readable gzip."""
        ...


def _uncompress(stream: Readable, *, key: str) -> bytes:
    reader = ContentReader(stream, hash_content=False)
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := reader.read():
            size += len(chunk)
            if size > MAX_DIGEST_BYTES:
                raise DigestFormatError(f"{key} is larger than {MAX_DIGEST_BYTES >> 20} MB")
            parts.append(chunk)
    except CorruptObjectError as exc:
        raise DigestFormatError(f"the digest is not readable gzip ({exc})") from None
    return b"".join(parts)


def _hash(stream: Readable) -> HashedObject:
    reader = ContentReader(stream)
    while reader.read():
        pass
    assert reader.sha256 is not None
    return HashedObject(reader.sha256, reader.compressed_bytes)


def _common_prefix(first: str, last: str) -> str:
    # Of the smallest and largest key of a sorted group: every key between shares it.
    size = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        size += 1
    return first[:size]


def _hour_prefixes(keys: Sequence[str]) -> dict[str, list[str]]:
    """Group keys by a listing prefix that covers them tightly.

    CloudTrail log keys of one folder differ from the stamp on (``…_20260115T1005Z_x``), so
    their longest common prefix within a folder is usually the hour: a digest's log files
    take one or two ListObjectsV2 calls instead of one HeadObject each.
    """
    folders: dict[str, list[str]] = {}
    for key in sorted(set(keys)):
        folders.setdefault(key.rsplit("/", 1)[0] + "/", []).append(key)
    groups: dict[str, list[str]] = {}
    for members in folders.values():
        prefix = _common_prefix(members[0], members[-1])
        groups.setdefault(prefix, []).extend(members)
    return groups


class S3TrailStore:
    """A trail's bucket through a boto3 S3 client (from the session factory or the CLI)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        # (bucket, folder) -> (first key, what the folder held from it on when listed)
        self._listed: dict[tuple[str, str], tuple[str, dict[str, ObjectStat]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._prefetched: dict[str, Future[DigestObject | None]] = {}
        self.downloads = 0
        self.downloaded_bytes = 0

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def signed(self) -> bool:
        return True

    def location(self, key: str, bucket: str | None = None) -> str:
        return f"s3://{bucket or self._bucket}/{key}"

    def prefetch(self, keys: Sequence[str], *, workers: int = 8) -> None:
        """Start reading digests in the background; ``read_digest`` then takes them.

        Verification goes in chain order, one digest after another, but the reads need not:
        a backlog of digests (a first run, a day of an outage) is fetched ``workers`` at a
        time. Errors are kept and raised by ``read_digest``, as without prefetching.
        """
        wanted = [key for key in keys if key not in self._prefetched]
        if not wanted:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digests")
        for key in wanted:
            self._prefetched[key] = self._pool.submit(self._read_digest, key, self._bucket)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._prefetched.clear()

    def read_digest(self, key: str, bucket: str | None = None) -> DigestObject | None:
        bucket = bucket or self._bucket
        future = self._prefetched.pop(key, None) if bucket == self._bucket else None
        if future is not None:
            return future.result()
        return self._read_digest(key, bucket)

    def _read_digest(self, key: str, bucket: str) -> DigestObject | None:
        try:
            with aws_errors(operation="GetObject", bucket=bucket, key=key):
                response = self._client.get_object(Bucket=bucket, Key=key)
        except NoSuchKey:
            return None
        metadata: Mapping[str, str] = response.get("Metadata") or {}
        body = response["Body"]
        try:
            with aws_errors(operation="GetObject", bucket=bucket, key=key):
                content = _uncompress(body, key=key)
        finally:
            body.close()
        return DigestObject(
            key=key,
            content=content,
            signature=metadata.get("signature"),
            signature_algorithm=metadata.get("signature-algorithm"),
            etag=str(response.get("ETag", "")).strip('"'),
        )

    def stat(self, keys: Sequence[str], bucket: str | None = None) -> dict[str, ObjectStat]:
        """Present objects of ``keys``, from one listing per folder and run where possible.

        The digests of a run name log files of the same few day folders, in key order, so
        the folder is listed once from the first key asked for to its end and kept; a key
        missing from that listing (delivered since, or really gone) is asked for again.
        """
        bucket = bucket or self._bucket
        found: dict[str, ObjectStat] = {}
        folders: dict[str, list[str]] = {}
        for key in sorted(set(keys)):
            folders.setdefault(key.rsplit("/", 1)[0] + "/", []).append(key)
        for folder, members in folders.items():
            listing = self._listed.get((bucket, folder))
            if listing is None or members[0] < listing[0]:
                listing = (members[0], self._list(bucket, folder, start=members[0]))
                self._listed[(bucket, folder)] = listing
            absent = [key for key in members if key not in listing[1]]
            found.update((key, listing[1][key]) for key in members if key in listing[1])
            if absent:
                found.update(self._list_tight(bucket, absent))
        return found

    def _list(
        self, bucket: str, prefix: str, *, start: str, stop: str | None = None
    ) -> dict[str, ObjectStat]:
        lister = S3Lister(self._client, bucket)
        found: dict[str, ObjectStat] = {}
        # Any key >= start sorts after start less its last character.
        with aws_errors(operation="ListObjectsV2", bucket=bucket, key=prefix):
            for obj in iter_objects(lister, prefix=prefix, start_after=start[:-1] or None):
                found[obj.key] = ObjectStat(obj.key, obj.etag, obj.size, obj.last_modified)
                if stop is not None and obj.key >= stop:
                    break
        return found

    def _list_tight(self, bucket: str, keys: Sequence[str]) -> dict[str, ObjectStat]:
        found: dict[str, ObjectStat] = {}
        for prefix, members in _hour_prefixes(keys).items():
            listed = self._list(bucket, prefix, start=members[0], stop=members[-1])
            found.update((key, listed[key]) for key in members if key in listed)
        return found

    def sha256(self, key: str, bucket: str | None = None) -> HashedObject | None:
        bucket = bucket or self._bucket
        try:
            stream = open_object(self._client, bucket, key)
        except NoSuchKey:
            return None
        with io.BufferedReader(stream, buffer_size=256 * 1024) as body:
            hashed = _hash(body)
        self.downloads += 1
        self.downloaded_bytes += hashed.compressed_bytes
        return hashed

    def first_log_after(self, digest: ParsedKey, after: datetime) -> tuple[str, datetime] | None:
        """The first log file of the digest's trail region delivered after ``after``."""
        location = log_location(digest)
        lister = S3Lister(self._client, self._bucket)
        with aws_errors(operation="ListObjectsV2", bucket=self._bucket, key=location.prefix):
            listed = iter_objects(
                lister, prefix=location.prefix, start_after=location.start_after(after)
            )
            return _first_owned((obj.key for obj in listed), location, after)


def log_location(digest: ParsedKey) -> ScopeLocation:
    """The log folder of the trail region a digest key belongs to."""
    root = digest.key[: digest.key.index("CloudTrail-Digest/")]
    return ScopeLocation(
        kind=SourceKind.CLOUDTRAIL,
        prefix=f"{root}CloudTrail/{digest.region}/",
        account=digest.account,
        region=digest.region or "",
    )


def _first_owned(
    keys: Iterable[str], location: ScopeLocation, after: datetime
) -> tuple[str, datetime] | None:
    for key in keys:
        parsed = classify(key)
        if isinstance(parsed, ParsedKey) and location.owns(parsed) and parsed.time > after:
            return key, parsed.time
    return None


def _tail(key: str) -> str | None:
    """The part of a key from its last ``AWSLogs/`` on: what a local copy keeps of it."""
    cut = f"/{key}".rfind(f"/{AWSLOGS_MARK}")
    return None if cut < 0 else key[cut:]


class LocalTrailStore:
    """A local copy of a trail: every ``AWSLogs/`` tree found under ``root``.

    A digest's S3 key is taken from its own ``digestS3Object`` when the file sits where
    that key says (below some ``AWSLogs/`` folder), so the chain's links, which name full
    keys, resolve; a key resolves to ``<tree>/AWSLogs/<rest>``, whatever custom prefix the
    bucket had in front of ``AWSLogs/``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.downloads = 0
        self.downloaded_bytes = 0
        self._trees: list[Path] = []

    @property
    def bucket(self) -> str:
        return ""

    @property
    def signed(self) -> bool:
        return False

    def _files(self) -> Iterator[Path]:
        if self.root.is_file():
            yield self.root
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path

    def digest_files(self) -> list[tuple[str, ParsedKey]]:
        """Every digest file under the root, as (S3 key, parsed key), in key order.

        A file that is not a readable digest keeps the key its path gives; the verifier
        reads it again and reports why it is not one.
        """
        found: dict[str, ParsedKey] = {}
        for path in self._files():
            posix = path.resolve().as_posix()
            tail = _tail(posix.lstrip("/"))
            if tail is None:
                continue
            parsed = classify(tail)
            if not isinstance(parsed, ParsedKey) or parsed.kind is not ObjectKind.DIGEST:
                continue
            tree = Path(posix[: len(posix) - len(tail)])
            if tree not in self._trees:
                self._trees.append(tree)
            key = self._claimed_key(path, tail)
            again = classify(key)
            found[key] = again if isinstance(again, ParsedKey) else parsed
        return sorted(found.items())

    @staticmethod
    def _claimed_key(path: Path, tail: str) -> str:
        """The digest's own ``digestS3Object`` when the file sits where it says, else ``tail``."""
        try:
            with path.open("rb") as stream:
                claimed = parse_digest(_uncompress(stream, key=tail)).key
        except (DigestFormatError, OSError):
            return tail
        if claimed == tail or claimed.endswith(f"/{tail}"):
            return claimed
        return tail

    def path(self, key: str) -> Path | None:
        """The file for ``key`` inside the local copy; None for a key that would leave it.

        Keys come from digests, which anyone who can write the copy can edit: a ``..`` in a
        log file's key must not make ``verify`` read (and hash) files outside the copy.
        """
        tail = _tail(key)
        if tail is None or ".." in tail.split("/"):
            return None
        for tree in self._trees or [self.root]:
            candidate = tree / tail
            if candidate.is_file() and candidate.resolve().is_relative_to(tree.resolve()):
                return candidate
        return None

    def location(self, key: str, bucket: str | None = None) -> str:
        found = self.path(key)
        if found is not None:
            return str(found)
        tail = _tail(key) or key
        return str((self._trees[0] if self._trees else self.root) / tail)

    def read_digest(self, key: str, bucket: str | None = None) -> DigestObject | None:
        path = self.path(key)
        if path is None:
            return None
        with path.open("rb") as stream:
            content = _uncompress(stream, key=key)
        return DigestObject(key=key, content=content, signature=None, signature_algorithm=None)

    def stat(self, keys: Sequence[str], bucket: str | None = None) -> dict[str, ObjectStat]:
        found: dict[str, ObjectStat] = {}
        for key in keys:
            path = self.path(key)
            if path is None:
                continue
            info = path.stat()
            found[key] = ObjectStat(
                key, "", info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)
            )
        return found

    def first_log_after(self, digest: ParsedKey, after: datetime) -> tuple[str, datetime] | None:
        """The first log file of the digest's trail region delivered after ``after``."""
        location = log_location(digest)
        tail = _tail(location.prefix)
        if tail is None:
            return None
        for tree in self._trees or [self.root]:
            folder = tree / tail
            if not folder.is_dir():
                continue
            keys = sorted(
                f"{location.prefix}{path.relative_to(folder).as_posix()}"
                for path in folder.rglob("*")
                if path.is_file()
            )
            found = _first_owned(keys, location, after)
            if found is not None:
                return found
        return None

    def sha256(self, key: str, bucket: str | None = None) -> HashedObject | None:
        path = self.path(key)
        if path is None:
            return None
        with path.open("rb") as stream:
            hashed = _hash(stream)
        self.downloads += 1
        self.downloaded_bytes += hashed.compressed_bytes
        return hashed
