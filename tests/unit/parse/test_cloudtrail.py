"""The CloudTrail parser: shapes it accepts, and what it does with each kind of damage."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tracemalloc
from pathlib import Path

import orjson
import pytest

from harvester.parse import (
    CorruptObjectError,
    ParseStats,
    iter_cloudtrail_batches,
    parse_cloudtrail,
)
from harvester.synth import cloudtrail_record, write_cloudtrail_object

from .helpers import TrickleReader, cloudtrail_document, encode, run


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    rng = random.Random(7)
    return [cloudtrail_record(rng) for _ in range(60)]


def event_ids(result_events: list) -> list[str]:  # type: ignore[type-arg]
    return [event.id for event in result_events]


def test_plain_and_gzip_give_the_same_events(records: list[dict[str, object]]) -> None:
    document = cloudtrail_document(encode(records))
    plain = run(document)
    packed = run(gzip.compress(document))
    assert plain.error is None
    assert packed.error is None
    assert event_ids(plain.events) == [r["eventID"] for r in records]
    assert event_ids(packed.events) == event_ids(plain.events)
    assert [e.raw.index for e in plain.events] == list(range(len(records)))
    assert plain.stats.complete
    assert plain.stats.records_found
    assert packed.stats.gzip
    assert packed.stats.uncompressed_bytes == len(document)
    assert packed.stats.sha256 == hashlib.sha256(document).hexdigest()


def test_pretty_printed_with_extra_keys_before_and_after(records: list[dict[str, object]]) -> None:
    document = orjson.dumps(
        {
            "Version": "1",
            "Nested": {"a": [1, {"b": '},{"eventVersion":'}], "c": None},
            "Records": records,
            "After": [{"x": "]"}, 2.5, True],
        },
        option=orjson.OPT_INDENT_2,
    )
    result = run(b"\n\t " + document + b"\r\n")
    assert result.error is None
    assert event_ids(result.events) == [r["eventID"] for r in records]


def test_records_with_strings_that_look_like_separators() -> None:
    rng = random.Random(3)
    tricky = []
    for i in range(40):
        record = cloudtrail_record(rng)
        record["requestParameters"] = {"policy": '},{"eventVersion":"1.0"} \\" \\\\', "i": i}
        tricky.append(record)
    result = run(cloudtrail_document(encode(tricky)))
    assert result.error is None
    assert len(result.events) == 40
    assert [e.raw.index for e in result.events] == list(range(40))


@pytest.mark.parametrize(
    "document",
    [b'{"Records":[]}', b' {\n "Records" : [ ]\n}\n', b'{"Records": null}'],
)
def test_empty_records(document: bytes) -> None:
    result = run(document)
    assert result.error is None
    assert result.events == []
    assert result.stats.complete


def test_digest_file_is_recognised_not_parsed() -> None:
    digest = orjson.dumps(
        {
            "awsAccountId": "111122223333",
            "digestStartTime": "2024-03-04T05:00:00Z",
            "digestEndTime": "2024-03-04T06:00:00Z",
            "digestPublicKeyFingerprint": "abc",
            "logFiles": [{"s3Object": "AWSLogs/x.json.gz", "hashValue": "00"}],
        }
    )
    result = run(gzip.compress(digest))
    assert result.error is None
    assert result.events == []
    assert result.stats.digest
    assert not result.stats.records_found
    assert result.stats.sha256 == hashlib.sha256(digest).hexdigest()


def test_synthetic_object_with_large_records_through_a_trickling_stream(tmp_path: Path) -> None:
    path = tmp_path / "ct.json.gz"
    summary = write_cloudtrail_object(path, target_bytes=3_000_000, seed=11, large_every=200)
    assert summary.max_record_bytes > 100_000
    stats = ParseStats()
    with path.open("rb") as f:
        data = f.read()
    events = list(parse_cloudtrail(TrickleReader(data, 4099), bucket="b", key="k", stats=stats))
    assert len(events) == summary.records
    assert stats.uncompressed_bytes == summary.uncompressed_bytes
    assert stats.compressed_bytes == summary.compressed_bytes
    assert len({e.id for e in events}) == summary.records


def test_batches_decode_the_same_records_as_one_by_one(records: list[dict[str, object]]) -> None:
    document = cloudtrail_document(encode(records * 20))
    batches = list(iter_cloudtrail_batches(io.BytesIO(document)))
    assert len(batches) < len(records) * 20  # batched, not one decode per record
    flat = [record.event_id for batch in batches for record in batch]
    assert flat == [r["eventID"] for r in records * 20]


def test_pretty_printed_synthetic_object(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json.gz"
    summary = write_cloudtrail_object(path, target_bytes=400_000, seed=5, pretty=True)
    with path.open("rb") as f:
        result = run(f.read())
    assert result.error is None
    assert len(result.events) == summary.records


# --- damage ------------------------------------------------------------------------------------


def assert_error(result, reason: str, *, index: int | None, offset: int | None) -> None:  # type: ignore[no-untyped-def]
    assert result.error is not None, "expected a CorruptObjectError"
    assert result.error.reason == reason
    assert result.error.record_index == index
    if offset is not None:
        assert result.error.byte_offset == offset
    if index is not None:
        assert len(result.events) == index
        assert f"record {index}" in str(result.error)


def offset_of(document: bytes, part: bytes) -> int:
    return document.index(part)


def test_invalid_json_in_the_middle(records: list[dict[str, object]]) -> None:
    parts = encode(records)
    parts[25] = parts[25].replace(b'"eventName":', b'"eventName" ', 1)
    document = cloudtrail_document(parts)
    result = run(document)
    assert_error(result, "bad_json", index=25, offset=None)
    # The offset points inside record 25, at the missing colon.
    start = offset_of(document, parts[25])
    assert start < result.error.byte_offset < start + len(parts[25])  # type: ignore[union-attr]
    assert event_ids(result.events) == [r["eventID"] for r in records[:25]]


@pytest.mark.parametrize("bad", [b"[1,2]", b'"text"', b"42", b"null", b"true"])
def test_a_record_that_is_not_an_object(records: list[dict[str, object]], bad: bytes) -> None:
    parts = encode(records)
    parts[30] = bad
    document = cloudtrail_document(parts)
    result = run(document)
    assert_error(result, "bad_record", index=30, offset=offset_of(document, b"," + bad) + 1)


def test_a_record_with_a_mistyped_field(records: list[dict[str, object]]) -> None:
    parts = encode(records)
    parts[41] = parts[41].replace(b'"eventName":"', b'"eventName":7,"was":"', 1)
    document = cloudtrail_document(parts)
    result = run(document)
    assert_error(result, "bad_record", index=41, offset=offset_of(document, parts[41]))
    assert "eventName" in str(result.error)


def test_a_record_with_a_mistyped_identity(records: list[dict[str, object]]) -> None:
    broken = dict(records[12])
    broken["userIdentity"] = "root"
    result = run(cloudtrail_document(encode([*records[:12], broken, *records[13:]])))
    assert_error(result, "bad_record", index=12, offset=None)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.93])
def test_truncated_plain_document(records: list[dict[str, object]], fraction: float) -> None:
    parts = encode(records)
    document = cloudtrail_document(parts)
    cut = int(len(document) * fraction)
    result = run(document[:cut])
    complete = sum(
        1 for i in range(len(parts)) if offset_of(document, parts[i]) + len(parts[i]) <= cut
    )
    assert_error(result, "truncated", index=complete, offset=offset_of(document, parts[complete]))


def test_truncated_gzip_yields_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "ct.json.gz"
    summary = write_cloudtrail_object(path, target_bytes=2_000_000, seed=2, large_every=0)
    data = path.read_bytes()
    result = run(data[: len(data) * 3 // 4])
    assert result.error is not None
    assert result.error.reason == "truncated"
    assert 0 < len(result.events) < summary.records
    full = run(data)
    assert event_ids(result.events) == event_ids(full.events[: len(result.events)])


def test_bad_crc_is_reported_after_the_records(tmp_path: Path) -> None:
    path = tmp_path / "ct.json.gz"
    summary = write_cloudtrail_object(path, target_bytes=2_000_000, seed=2, large_every=0)
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x55
    result = run(bytes(data))
    assert result.error is not None
    assert result.error.reason == "bad_gzip"
    assert result.error.byte_offset is not None
    assert result.error.byte_offset > 0
    assert 0 < len(result.events) <= summary.records


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b" \n\t ", "empty"),
        (gzip.compress(b""), "empty"),
        (b"[]", "unexpected_shape"),
        (b'"Records"', "unexpected_shape"),
        (b'{"Records": {"a": 1}}', "unexpected_shape"),
        (b"\x00\x01binary", "bad_json"),
        (b'{"Records":[]} trailing', "bad_json"),
        (b'{"Records":[]', "truncated"),
        (b'{"Records":[] "x": 1}', "bad_json"),
        (b'{"Records":[{"eventName":"a"},]}', "bad_record"),
        (b'{"Records":[{"eventName":"a"} {"eventName":"b"}]}', "bad_json"),
        (b'{"Records":[{"eventName":"\xff"}]}', "bad_json"),
        (b'{"Records":[{"a":[}]}', "bad_json"),
        (b'{"Records":[{"requestParameters":' + b"[" * 50_000 + b"]" * 50_000 + b"}]}", "bad_json"),
        (b'{"Other": [1, 2', "truncated"),
        (b'{"Other": tru}', "bad_json"),
        (b"{Records: []}", "bad_json"),
    ],
)
def test_damaged_documents(data: bytes, reason: str) -> None:
    result = run(data)
    assert result.error is not None, result
    assert result.error.reason == reason, result.error


def test_a_record_larger_than_the_limit(records: list[dict[str, object]]) -> None:
    big = dict(records[0])
    big["responseElements"] = {"blob": "x" * 300_000}
    parts = encode([records[1], big])
    document = cloudtrail_document(parts)
    result = run(document, max_value_bytes=100_000)
    assert_error(result, "record_too_large", index=1, offset=offset_of(document, parts[1]))


def test_errors_carry_a_reason_from_the_fixed_set() -> None:
    from harvester.parse import REASONS

    error = CorruptObjectError("bad_json", "x", byte_offset=3, record_index=1)
    assert error.reason in REASONS
    assert "record 1" in str(error)
    assert "byte 3" in str(error)
    import pickle

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  round-trip of our own object
    assert (copy.reason, copy.byte_offset, copy.record_index) == ("bad_json", 3, 1)


# --- memory --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_memory_stays_flat_on_a_50_mb_object(tmp_path: Path) -> None:
    path = tmp_path / "big.json.gz"
    summary = write_cloudtrail_object(path, target_bytes=50 * 1024 * 1024, seed=9, large_every=3000)
    assert summary.max_record_bytes < 600_000
    count = 0
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            for _ in parse_cloudtrail(f, bucket="b", key="k"):
                count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == summary.records
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
