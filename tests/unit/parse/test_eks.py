"""The EKS (Firehose) parser: envelopes, raw Events, skipped streams, and damage."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.parse import stream_family
from harvester.synth import write_eks_firehose_object, write_eks_ndjson_object

from .helpers import TrickleReader, run, run_stream

ENVELOPES = "constructed-envelopes"


def split_envelopes(data: bytes) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    text = data.decode()
    envelopes, position = [], 0
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        envelopes.append(value)
    return envelopes


@pytest.fixture(scope="module")
def firehose(corpus: Path) -> bytes:
    return (corpus / ENVELOPES / "cwl_subscription_eks_audit.firehose-s3-object.gz").read_bytes()


@pytest.fixture(scope="module")
def envelopes(firehose: bytes) -> list[dict[str, Any]]:
    return split_envelopes(gzip.decompress(firehose))


def audit_ids(envelopes: list[dict[str, Any]]) -> list[str]:
    return [
        json.loads(log_event["message"])["auditID"]
        for envelope in envelopes
        if envelope["logStream"].startswith("kube-apiserver-audit")
        for log_event in envelope["logEvents"]
    ]


def test_firehose_object_from_the_corpus(firehose: bytes, envelopes: list[dict[str, Any]]) -> None:
    result = run(firehose, "eks")
    assert result.error is None
    assert [e.id for e in result.events] == audit_ids(envelopes)
    assert [e.raw.index for e in result.events] == list(range(len(result.events)))
    stats = result.stats
    assert stats.gzip_members == 3
    assert stats.envelopes == 3
    assert stats.control_messages == 1
    assert stats.non_audit_envelopes == 0
    first = result.events[0]
    # Cluster and account come from the payload when the caller does not say.
    assert first.cluster == "corpus-cluster"
    assert first.account == "123456789012"
    assert first.source == "eks"


def test_caller_cluster_and_account_win(firehose: bytes) -> None:
    result = run(firehose, "eks", cluster="prod", account="210987654321", region="eu-west-1")
    assert {(e.cluster, e.account, e.region) for e in result.events} == {
        ("prod", "210987654321", "eu-west-1")
    }


def test_single_data_message(corpus: Path) -> None:
    data = (corpus / ENVELOPES / "cwl_subscription_eks_audit.DATA_MESSAGE.json.gz").read_bytes()
    result = run(data, "eks")
    assert result.error is None
    assert len(result.events) == 25
    assert result.stats.envelopes == 1
    assert result.stats.control_messages == 0


@pytest.mark.parametrize("separator", [b"", b"\n", b"\r\n  "])
def test_plain_concatenated_envelopes(envelopes: list[dict[str, Any]], separator: bytes) -> None:
    data = separator.join(orjson.dumps(e) for e in envelopes) + separator
    result = run(data, "eks")
    assert result.error is None
    assert [e.id for e in result.events] == audit_ids(envelopes)


def test_one_gzip_member_per_envelope_read_in_small_pieces(envelopes: list[dict[str, Any]]) -> None:
    data = b"".join(gzip.compress(orjson.dumps(e) + b"\n") for e in envelopes * 4)
    result = run_stream(TrickleReader(data, 517), "eks")
    assert result.error is None
    assert len(result.events) == 4 * len(audit_ids(envelopes))
    assert result.stats.gzip_members == 4 * len(envelopes)


def test_cloudtrail_delivered_through_cloudwatch_is_not_audit(corpus: Path) -> None:
    data = (corpus / ENVELOPES / "cwl_subscription_cloudtrail.firehose-s3-object.gz").read_bytes()
    result = run(data, "eks")
    assert result.error is None
    assert result.events == []
    assert result.stats.non_audit_envelopes == 4
    assert result.stats.non_audit_log_events == 200
    assert result.stats.non_audit_streams == {"other": 4}


def test_non_audit_streams_are_counted_by_family(envelopes: list[dict[str, Any]]) -> None:
    data_message = envelopes[1]
    others = []
    for stream in (
        "authenticator-0a1b",
        "kube-scheduler-0a1b",
        "kube-apiserver-0a1b",
        "cloud-controller-manager-0a1b",
        "kube-controller-manager-0a1b",
    ):
        other = dict(data_message, logStream=stream)
        other["logEvents"] = [{"id": "1", "timestamp": 1, "message": "I0101 plain text, not JSON"}]
        others.append(other)
    data = b"".join(orjson.dumps(e) for e in [envelopes[0], *others, data_message])
    result = run(data, "eks")
    assert result.error is None
    assert len(result.events) == len(data_message["logEvents"])
    assert result.stats.non_audit_envelopes == 5
    assert result.stats.non_audit_streams == {
        "authenticator": 1,
        "kube-scheduler": 1,
        "kube-apiserver": 1,
        "cloud-controller-manager": 1,
        "kube-controller-manager": 1,
    }


def test_stream_family() -> None:
    assert stream_family("kube-apiserver-audit-0123abcd") == "kube-apiserver-audit"
    assert stream_family("kube-apiserver-0123abcd") == "kube-apiserver"
    assert stream_family("authenticator-0123abcd") == "authenticator"
    assert stream_family("123456789012_CloudTrail_us-east-1") == "other"


def test_synthetic_firehose_object(tmp_path: Path) -> None:
    path = tmp_path / "eks.gz"
    summary = write_eks_firehose_object(path, target_bytes=1_500_000, seed=4)
    result = run(path.read_bytes(), "eks", cluster="prod-eks")
    assert result.error is None
    assert len(result.events) == summary.records
    assert result.stats.gzip_members == summary.gzip_members
    assert result.stats.control_messages == 1
    assert result.stats.non_audit_envelopes > 0
    assert result.stats.uncompressed_bytes == summary.uncompressed_bytes


def test_synthetic_plain_envelopes_with_newlines(tmp_path: Path) -> None:
    path = tmp_path / "eks.json"
    summary = write_eks_firehose_object(
        path, target_bytes=500_000, seed=8, compress=False, newline_between=True
    )
    result = run(path.read_bytes(), "eks")
    assert result.error is None
    assert len(result.events) == summary.records
    assert not result.stats.gzip


# --- raw Events (Firehose message extraction) -------------------------------------------------


def test_raw_events_v1beta1_and_v1_from_falco(corpus: Path) -> None:
    data = (corpus / "falco-k8s-audit-traces" / "events.jsonl").read_bytes()
    lines = [json.loads(line) for line in data.splitlines()]
    for packed in (data, gzip.compress(data)):
        result = run(packed, "eks", cluster="minikube")
        assert result.error is None
        assert result.stats.raw_events
        assert [e.id for e in result.events] == [line["auditID"] for line in lines]
    versions = {line.get("apiVersion") for line in lines}
    assert "audit.k8s.io/v1beta1" in versions


def test_raw_events_from_audit2rbac(corpus: Path) -> None:
    data = (corpus / "audit2rbac" / "demo.log").read_bytes()
    result = run(data, "eks")
    assert result.error is None
    assert len(result.events) == 37
    impersonated = [e for e in result.events if e.principal.impersonated_user == "bob"]
    assert impersonated
    denied = [e for e in result.events if e.outcome.status_code == 403]
    assert denied
    assert not any(e.outcome.success for e in denied)
    assert all(e.outcome.error_code == "Forbidden" for e in denied)


def test_synthetic_ndjson_object(tmp_path: Path) -> None:
    path = tmp_path / "events.gz"
    summary = write_eks_ndjson_object(path, target_bytes=800_000, seed=6)
    result = run(path.read_bytes(), "eks")
    assert result.error is None
    assert len(result.events) == summary.records


def test_pretty_printed_raw_events(corpus: Path) -> None:
    lines = (corpus / "audit2rbac" / "demo.log").read_bytes().splitlines()
    data = b"\n".join(orjson.dumps(json.loads(line), option=orjson.OPT_INDENT_2) for line in lines)
    result = run(data, "eks")
    assert result.error is None
    assert len(result.events) == len(lines)


# --- damage ------------------------------------------------------------------------------------


def replace_message(envelopes: list[dict[str, Any]], message: str) -> bytes:
    damaged = json.loads(json.dumps(envelopes))
    damaged[2]["logEvents"][3]["message"] = message
    return b"".join(orjson.dumps(e) for e in damaged)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json {", "bad_json"),
        ("[1, 2]", "bad_record"),
        ('{"foo": 1}', "bad_record"),
        ('{"auditID": "x", "user": "alice"}', "bad_record"),
        ('{"auditID": "x", "verb": 5}', "bad_record"),
    ],
)
def test_a_bad_message(envelopes: list[dict[str, Any]], message: str, reason: str) -> None:
    data = replace_message(envelopes, message)
    result = run(data, "eks")
    index = len(envelopes[1]["logEvents"]) + 3
    assert result.error is not None
    assert result.error.reason == reason
    assert result.error.record_index == index
    assert len(result.events) == index
    assert [e.id for e in result.events] == audit_ids(envelopes)[:index]


def test_the_byte_offset_of_a_bad_message_is_its_payload(envelopes: list[dict[str, Any]]) -> None:
    data = replace_message(envelopes, "oops")
    third_payload = data.rindex(b'{"messageType"')
    assert third_payload > 0
    result = run(data, "eks")
    assert result.error is not None
    assert result.error.byte_offset == third_payload


def test_truncated_firehose_object(firehose: bytes, envelopes: list[dict[str, Any]]) -> None:
    result = run(firehose[:-100], "eks")
    assert result.error is not None
    assert result.error.reason == "truncated"
    assert [e.id for e in result.events] == audit_ids(envelopes[:2])


def test_truncated_plain_envelope(envelopes: list[dict[str, Any]]) -> None:
    data = b"".join(orjson.dumps(e) for e in envelopes)
    cut = len(data) - 500
    result = run(data[:cut], "eks")
    assert result.error is not None
    assert result.error.reason == "truncated"
    assert result.error.byte_offset == data.rindex(b'{"messageType"')
    assert len(result.events) == len(audit_ids(envelopes[:2]))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"garbage", "bad_json"),
        (b"[1, 2]", "bad_record"),
        (b'{"hello": "world"}', "unexpected_shape"),
        (b'{"messageType": "SURPRISE"}', "bad_record"),
        (
            b'{"messageType": "DATA_MESSAGE", "logStream": "kube-apiserver-audit-1",'
            b' "logEvents": [{"id": "1"}]}',
            "bad_record",
        ),
        (b'{"messageType": "CONTROL_MESSAGE"} junk', "bad_json"),
        (
            b'{"kind": "Event", "auditID": "a", "verb": "get"}{"messageType": "DATA_MESSAGE"}',
            "bad_record",
        ),
    ],
)
def test_damaged_objects(data: bytes, reason: str) -> None:
    result = run(data, "eks")
    assert result.error is not None, result
    assert result.error.reason == reason, result.error


def test_garbage_between_envelopes_after_valid_events(envelopes: list[dict[str, Any]]) -> None:
    data = orjson.dumps(envelopes[1]) + b"\x00\x00" + orjson.dumps(envelopes[2])
    result = run(data, "eks")
    assert result.error is not None
    assert result.error.reason == "bad_json"
    assert result.error.byte_offset == len(orjson.dumps(envelopes[1]))
    assert len(result.events) == len(envelopes[1]["logEvents"])


def test_content_hash_only_when_asked(firehose: bytes) -> None:
    assert run(firehose, "eks").stats.sha256 is None
    hashed = run(firehose, "eks", hash_content=True).stats
    assert hashed.sha256 == hashlib.sha256(gzip.decompress(firehose)).hexdigest()
    assert hashed.compressed_bytes == len(firehose)
