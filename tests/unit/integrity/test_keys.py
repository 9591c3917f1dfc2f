"""Public keys from a file and from ListPublicKeys, and the signature check itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from harvester.aws.errors import AccessDenied
from harvester.integrity.keys import (
    CloudTrailPublicKeys,
    FilePublicKeys,
    KeyCache,
    PublicKeyError,
    load_public_key,
    verify_signature,
)
from tests.unit.integrity.trail import fingerprint, public_der, public_keys_json, sign, signing_key

AT = datetime(2026, 1, 15, 3, 0, 31, tzinfo=UTC)


def test_file_keys_are_the_cli_output_with_base64_der_values(tmp_path: Path) -> None:
    key, other = signing_key(), signing_key("other")
    path = tmp_path / "keys.json"
    path.write_text(public_keys_json(key, other))
    keys = FilePublicKeys.from_file(path)
    assert keys.fingerprints == sorted([fingerprint(key), fingerprint(other)])
    found = keys.public_key(fingerprint(key).upper(), region="eu-west-1", at=AT)
    assert found is not None
    assert found.valid_from == datetime(2025, 12, 1, tzinfo=UTC)
    assert found.key.public_numbers() == key.public_key().public_numbers()
    assert keys.public_key("00" * 16, region="eu-west-1", at=AT) is None


def test_subject_public_key_info_der_is_accepted_too() -> None:
    spki = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert (
        load_public_key(spki).public_numbers()
        == load_public_key(public_der(signing_key())).public_numbers()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"Keys": []}', "list-public-keys"),
        ('{"PublicKeyList": [{"Value": "AAAA"}]}', "no Fingerprint"),
        ('{"PublicKeyList": [{"Fingerprint": "ab", "Value": "%%%"}]}', "not base64"),
        ('{"PublicKeyList": [{"Fingerprint": "ab", "Value": "AAAA"}]}', "key ab: not a DER"),
    ],
)
def test_bad_key_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PublicKeyError, match=message):
        FilePublicKeys.from_json(text)


def test_missing_key_file_is_a_public_key_error(tmp_path: Path) -> None:
    with pytest.raises(PublicKeyError, match="cannot read"):
        FilePublicKeys.from_file(tmp_path / "nope.json")


def test_verify_signature_accepts_only_a_sha256_rsa_signature_of_the_same_bytes() -> None:
    key = signing_key()
    public = key.public_key()
    signature = sign(key, b"payload")
    assert verify_signature(
        public, signature_hex=signature, signed=b"payload", algorithm="SHA256withRSA"
    )
    assert verify_signature(
        public, signature_hex=signature.upper(), signed=b"payload", algorithm="SHA256withRSA"
    )
    assert not verify_signature(
        public, signature_hex=signature, signed=b"payload!", algorithm="SHA256withRSA"
    )
    assert not verify_signature(
        public, signature_hex=signature, signed=b"payload", algorithm="SHA1withRSA"
    )
    assert not verify_signature(
        public, signature_hex="zz", signed=b"payload", algorithm="SHA256withRSA"
    )
    other = signing_key("other").public_key()
    assert not verify_signature(
        other, signature_hex=signature, signed=b"payload", algorithm="SHA256withRSA"
    )


class FakeCloudTrail:
    """ListPublicKeys as boto3 returns it: Value as DER bytes, paginated by NextToken."""

    def __init__(self, keys: list[Any], *, page: int = 1, error: Exception | None = None) -> None:
        self.keys = keys
        self.page = page
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def list_public_keys(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        start = int(kwargs.get("NextToken", "0"))
        items = [
            {
                "Value": public_der(key),
                "ValidityStartTime": datetime(2025, 12, 1, tzinfo=UTC),
                "ValidityEndTime": datetime(2026, 3, 1, tzinfo=UTC),
                "Fingerprint": fingerprint(key),
            }
            for key in self.keys[start : start + self.page]
        ]
        response: dict[str, Any] = {"PublicKeyList": items}
        if start + self.page < len(self.keys):
            response["NextToken"] = str(start + self.page)
        return response


def test_cloudtrail_keys_are_listed_once_per_region_and_day() -> None:
    key, other = signing_key(), signing_key("other")
    clients: dict[str, FakeCloudTrail] = {
        "us-east-1": FakeCloudTrail([other, key], page=1),
        "eu-west-1": FakeCloudTrail([other]),
    }
    provider = CloudTrailPublicKeys(clients.__getitem__)
    for hour in range(5):
        found = provider.public_key(
            fingerprint(key), region="us-east-1", at=AT + timedelta(hours=hour)
        )
        assert found is not None
    # Two pages on the first digest, then the cache; the day asked for is the digest's.
    assert len(clients["us-east-1"].calls) == 2
    first = clients["us-east-1"].calls[0]
    assert first["StartTime"] == datetime(2026, 1, 15, tzinfo=UTC)
    assert first["EndTime"] == datetime(2026, 1, 16, tzinfo=UTC)
    # Keys are per region: the same fingerprint is unknown where CloudTrail did not publish it.
    assert provider.public_key(fingerprint(key), region="eu-west-1", at=AT) is None
    assert provider.public_key(fingerprint(key), region="eu-west-1", at=AT) is None
    assert len(clients["eu-west-1"].calls) == 1


def test_cloudtrail_key_errors_are_domain_errors() -> None:
    from botocore.exceptions import ClientError

    denied = ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "ListPublicKeys",
    )
    provider = CloudTrailPublicKeys(lambda region: FakeCloudTrail([], error=denied))  # type: ignore[arg-type,return-value]
    with pytest.raises(AccessDenied):
        provider.public_key("ab", region="us-east-1", at=AT)


def test_a_shared_cache_serves_other_credentials_and_refreshes_for_a_new_key() -> None:
    key, rotated = signing_key(), signing_key("rotated")
    now = [0.0]
    cache = KeyCache(refresh_after=600, monotonic=lambda: now[0])
    first = FakeCloudTrail([key])
    CloudTrailPublicKeys(lambda region: first, cache=cache).public_key(  # type: ignore[arg-type,return-value]
        fingerprint(key), region="us-east-1", at=AT
    )
    # Another source's provider (other credentials) finds the key without a call.
    second = FakeCloudTrail([key, rotated], page=2)
    provider = CloudTrailPublicKeys(lambda region: second, cache=cache)  # type: ignore[arg-type,return-value]
    assert provider.public_key(fingerprint(key), region="us-east-1", at=AT) is not None
    assert second.calls == []
    # A fingerprint the day's listing lacked is asked for again only once the listing is old.
    assert provider.public_key(fingerprint(rotated), region="us-east-1", at=AT) is None
    assert second.calls == []
    now[0] = 601
    assert provider.public_key(fingerprint(rotated), region="us-east-1", at=AT) is not None
    assert len(second.calls) == 1
