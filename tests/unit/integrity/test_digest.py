"""Digest parsing and the exact string CloudTrail signs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from harvester.integrity.digest import DigestFormatError, parse_digest, signing_string

# The sample of AWS's "CloudTrail digest file structure" page, shortened.
SAMPLE: dict[str, Any] = {
    "awsAccountId": "111122223333",
    "digestStartTime": "2015-08-17T14:01:31Z",
    "digestEndTime": "2015-08-17T15:01:31Z",
    "digestS3Bucket": "amzn-s3-demo-bucket",
    "digestS3Object": (
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
        "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
    ),
    "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
    "digestSignatureAlgorithm": "SHA256withRSA",
    "newestEventTime": "2015-08-17T14:52:27Z",
    "oldestEventTime": "2015-08-17T14:42:27Z",
    "previousDigestS3Bucket": "amzn-s3-demo-bucket",
    "previousDigestS3Object": (
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
        "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz"
    ),
    "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
    "previousDigestHashAlgorithm": "SHA-256",
    "previousDigestSignature": "50887CCFFAD4C002B97CAA37CC9DC626E3C680207D41D27FA5835458E066E0D3",
    "logFiles": [
        {
            "s3Bucket": "amzn-s3-demo-bucket",
            "s3Object": (
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/"
                "111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz"
            ),
            "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
            "hashAlgorithm": "SHA-256",
            "newestEventTime": "2015-08-17T14:52:27Z",
            "oldestEventTime": "2015-08-17T14:42:27Z",
        }
    ],
}


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_signing_string_is_the_aws_cli_format() -> None:
    signed = signing_string(
        end_time="2015-08-17T15:01:31Z",
        bucket="b",
        key="AWSLogs/1/CloudTrail-Digest/x.json.gz",
        content_sha256="ab" * 32,
        previous_signature="CAFE",
    )
    assert signed == (
        b"2015-08-17T15:01:31Z\nb/AWSLogs/1/CloudTrail-Digest/x.json.gz\n" + b"ab" * 32 + b"\nCAFE"
    )


def test_first_digest_of_a_chain_signs_null_as_the_previous_signature() -> None:
    signed = signing_string(
        end_time="T", bucket="b", key="k", content_sha256="00", previous_signature=None
    )
    assert signed == b"T\nb/k\n00\nnull"


def test_parse_the_documented_sample() -> None:
    content = encoded(SAMPLE)
    digest = parse_digest(content)
    assert digest.account_id == "111122223333"
    assert digest.start_time == datetime(2015, 8, 17, 14, 1, 31, tzinfo=UTC)
    assert digest.end_time == datetime(2015, 8, 17, 15, 1, 31, tzinfo=UTC)
    assert digest.end_time_text == "2015-08-17T15:01:31Z"
    assert digest.previous_key == SAMPLE["previousDigestS3Object"]
    # The signature is signed as written; the hash values compare in lower case.
    assert digest.previous_signature == SAMPLE["previousDigestSignature"]
    assert digest.previous_hash_value == SAMPLE["previousDigestHashValue"]
    assert digest.sha256 == hashlib.sha256(content).hexdigest()
    assert not digest.starts_chain
    [log] = digest.log_files
    assert log.key.endswith("_9nYN7gp2eWAJHIfT.json.gz")
    assert log.hash_value == SAMPLE["logFiles"][0]["hashValue"]
    assert log.newest_event_time == datetime(2015, 8, 17, 14, 52, 27, tzinfo=UTC)


def test_signed_bytes_use_the_raw_end_time_and_the_content_hash() -> None:
    content = encoded(SAMPLE)
    digest = parse_digest(content)
    assert (
        digest.signed_bytes()
        == (
            f"2015-08-17T15:01:31Z\namzn-s3-demo-bucket/{SAMPLE['digestS3Object']}\n"
            f"{hashlib.sha256(content).hexdigest()}\n{SAMPLE['previousDigestSignature']}"
        ).encode()
    )


def test_a_chains_first_digest_has_null_links_and_may_list_no_log_files() -> None:
    document = {
        **SAMPLE,
        "previousDigestS3Bucket": None,
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [],
        "newestEventTime": None,
        "oldestEventTime": None,
    }
    digest = parse_digest(encoded(document))
    assert digest.starts_chain
    assert digest.log_files == ()
    assert digest.signed_bytes().endswith(b"\nnull")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("digestEndTime"), "lacks digestEndTime"),
        (lambda d: d.pop("previousDigestSignature"), "lacks previousDigestSignature"),
        (lambda d: d.update(digestEndTime="yesterday"), "digestEndTime is not a time"),
        (lambda d: d.update(digestS3Object=7), "digestS3Object is not text"),
        (lambda d: d.update(logFiles={}), "logFiles is not a list"),
        (lambda d: d["logFiles"][0].pop("hashValue"), "logFiles[0]: the digest has no hashValue"),
        (lambda d: d["logFiles"][0].update(hashValue="zz"), "hashValue is not hexadecimal"),
        (lambda d: d.update(previousDigestHashValue="not-hex"), "previousDigestHashValue"),
    ],
)
def test_malformed_digests_are_refused_with_the_reason(change: Any, message: str) -> None:
    document = json.loads(encoded(SAMPLE))
    change(document)
    with pytest.raises(DigestFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_digest(encoded(document))


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"'])
def test_content_that_is_not_a_json_object_is_refused(content: bytes) -> None:
    with pytest.raises(DigestFormatError):
        parse_digest(content)
