"""CloudTrail's public keys, and checking a digest's signature with one.

CloudTrail signs digests with a private key per region and publishes the public halves
through ``ListPublicKeys`` (DER-encoded RSA keys, each with its fingerprint and validity
period). A digest names the fingerprint of the key that signed it.

Two providers: :class:`CloudTrailPublicKeys` asks the API (per region, cached per day of
validity asked for), and :class:`FilePublicKeys` reads what ``aws cloudtrail
list-public-keys`` prints, so an offline audit (or a test, with its own RSA key) works
without calling AWS.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harvester.aws.errors import aws_errors
from harvester.integrity.digest import SIGNATURE_ALGORITHM

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient

__all__ = [
    "CloudTrailPublicKeys",
    "FilePublicKeys",
    "KeyCache",
    "PublicKey",
    "PublicKeyError",
    "PublicKeyProvider",
    "load_public_key",
    "verify_signature",
]


class PublicKeyError(ValueError):
    """Public keys could not be read (a bad file, a key that is not RSA)."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    fingerprint: str
    key: rsa.RSAPublicKey = field(repr=False)
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class PublicKeyProvider(Protocol):
    """Finds the public key a digest names. ``None``: no such key for that region and time.

    Raises :class:`harvester.aws.errors.AwsError` when the keys cannot be fetched (the
    digest then stays unverified, to be tried again), never for a key that does not exist.
    """

    def public_key(self, fingerprint: str, *, region: str, at: datetime) -> PublicKey | None: ...


def load_public_key(der: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from DER: PKCS#1 (what CloudTrail publishes) or SubjectPublicKeyInfo."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PublicKeyError(f"not a DER-encoded public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise PublicKeyError(f"not an RSA public key but {type(key).__name__}")
    return key


def verify_signature(
    key: rsa.RSAPublicKey, *, signature_hex: str, signed: bytes, algorithm: str
) -> bool:
    """Whether ``signature_hex`` is a SHA256withRSA (PKCS #1 v1.5) signature of ``signed``."""
    if algorithm != SIGNATURE_ALGORITHM:
        return False
    try:
        signature = binascii.unhexlify(signature_hex.strip())
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def _entry(item: Mapping[str, Any], *, value_is_base64: bool) -> PublicKey:
    fingerprint = item.get("Fingerprint")
    value = item.get("Value")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise PublicKeyError("a public key entry has no Fingerprint")
    if isinstance(value, str) or value_is_base64:
        # The CLI prints blobs as base64 text; boto3 hands them over decoded.
        try:
            der = base64.b64decode(value, validate=True) if value is not None else b""
        except (binascii.Error, ValueError, TypeError):
            raise PublicKeyError(f"the Value of key {fingerprint} is not base64") from None
    elif isinstance(value, bytes | bytearray):
        der = bytes(value)
    else:
        raise PublicKeyError(f"the key {fingerprint} has no Value")
    try:
        key = load_public_key(der)
    except PublicKeyError as exc:
        raise PublicKeyError(f"key {fingerprint}: {exc}") from None
    return PublicKey(
        fingerprint=fingerprint.lower(),
        key=key,
        valid_from=_utc(item.get("ValidityStartTime")),
        valid_until=_utc(item.get("ValidityEndTime")),
    )


class FilePublicKeys:
    """Keys from the JSON ``aws cloudtrail list-public-keys`` prints (``{"PublicKeyList": …}``).

    The file names no region (the CLI asked one); fingerprints differ between regions, so a
    file holding the keys of several regions (their lists concatenated) works too.
    """

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._keys = {key.fingerprint: key for key in keys}

    @classmethod
    def from_json(cls, text: str | bytes) -> FilePublicKeys:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise PublicKeyError(f"not JSON ({exc})") from None
        items = data.get("PublicKeyList") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise PublicKeyError("expected the output of 'aws cloudtrail list-public-keys'")
        if not all(isinstance(item, dict) for item in items):
            raise PublicKeyError("PublicKeyList holds something other than key objects")
        return cls(_entry(item, value_is_base64=True) for item in items)

    @classmethod
    def from_file(cls, path: str | Path) -> FilePublicKeys:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise PublicKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
        return cls.from_json(text)

    @property
    def fingerprints(self) -> list[str]:
        return sorted(self._keys)

    def public_key(self, fingerprint: str, *, region: str, at: datetime) -> PublicKey | None:
        return self._keys.get(fingerprint.lower())


class KeyCache:
    """Public keys already fetched, by (region, fingerprint), and the (region, day) windows
    asked for. Keys are public and the same for every account of a region, so one cache can
    serve every source of a process, whatever credentials fetched them."""

    def __init__(
        self, *, refresh_after: float = 3600.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.lock = threading.Lock()
        self.keys: dict[tuple[str, str], PublicKey] = {}
        # When each window was listed: a fingerprint not found in it is asked for again once
        # the listing is older than ``refresh_after`` seconds (a key published since).
        self.fetched: dict[tuple[str, str], float] = {}
        self.refresh_after = refresh_after
        self.monotonic = monotonic

    def fresh(self, window: tuple[str, str]) -> bool:
        listed = self.fetched.get(window)
        return listed is not None and self.monotonic() - listed < self.refresh_after


class CloudTrailPublicKeys:
    """``ListPublicKeys`` in each digest's region, cached per (region, UTC day asked for).

    One call covers every digest of a region and day, so verifying a day of hourly digests
    costs one API call per region. A fingerprint seen once is remembered for good: a key's
    bytes never change. ``client_for`` returns a CloudTrail client for a region (from the
    session factory, with the source's credentials); ``cache`` may be shared by providers.
    """

    def __init__(
        self, client_for: Callable[[str], CloudTrailClient], *, cache: KeyCache | None = None
    ) -> None:
        self._client_for = client_for
        self._cache = cache or KeyCache()
        self.calls = 0

    def public_key(self, fingerprint: str, *, region: str, at: datetime) -> PublicKey | None:
        fingerprint = fingerprint.lower()
        cache = self._cache
        day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        window = (region, day.date().isoformat())
        with cache.lock:
            known = cache.keys.get((region, fingerprint))
            if known is not None or cache.fresh(window):
                return known
        found = self._list(region, day, day + timedelta(days=1))
        with cache.lock:
            cache.fetched[window] = cache.monotonic()
            for key in found:
                cache.keys[(region, key.fingerprint)] = key
            return cache.keys.get((region, fingerprint))

    def _list(self, region: str, start: datetime, end: datetime) -> list[PublicKey]:
        client = self._client_for(region)
        found: list[PublicKey] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            with aws_errors(operation="ListPublicKeys", region=region):
                response = client.list_public_keys(**kwargs)
            self.calls += 1
            found.extend(
                _entry(dict(item), value_is_base64=False)
                for item in response.get("PublicKeyList", [])
            )
            token = response.get("NextToken")
            if not token:
                return found
