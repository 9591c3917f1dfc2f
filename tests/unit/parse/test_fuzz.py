"""Property tests: whatever the damage, a parser ends, raises only its typed error, and
keeps its memory within a few times the largest record."""

from __future__ import annotations

import gzip
import io
import json
import random
import tracemalloc
import zlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.parse import CorruptObjectError, ObjectKind, parse_object
from harvester.synth import cloudtrail_record, k8s_audit_event

from .helpers import run

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cloudtrail(seed: int, count: int, *, large: int = -1) -> bytes:
    rng = random.Random(seed)
    records = [cloudtrail_record(rng, large=i == large) for i in range(count)]
    return orjson.dumps({"Records": records})


def _firehose(seed: int, envelopes: int) -> bytes:
    rng = random.Random(seed)
    members = [
        gzip.compress(
            orjson.dumps(
                {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": []}
            )
        )
    ]
    for number in range(envelopes):
        events = [k8s_audit_event(rng) for _ in range(rng.randrange(1, 8))]
        envelope = {
            "messageType": "DATA_MESSAGE",
            "owner": "111122223333",
            "logGroup": "/aws/eks/fuzz/cluster",
            "logStream": "kube-apiserver-audit-01" if number % 5 else "authenticator-01",
            "subscriptionFilters": ["f"],
            "logEvents": [
                {"id": str(i), "timestamp": i, "message": orjson.dumps(e).decode()}
                for i, e in enumerate(events)
            ],
        }
        members.append(gzip.compress(orjson.dumps(envelope)))
    return b"".join(members)


CT_PLAIN = _cloudtrail(1, 40, large=20)
CT_GZIP = gzip.compress(CT_PLAIN, compresslevel=1)
EKS_GZIP = _firehose(2, 12)
EKS_PLAIN = gzip.decompress(EKS_GZIP)
INPUTS: dict[str, tuple[bytes, ObjectKind]] = {
    "ct_plain": (CT_PLAIN, "cloudtrail"),
    "ct_gzip": (CT_GZIP, "cloudtrail"),
    "eks_gzip": (EKS_GZIP, "eks"),
    "eks_plain": (EKS_PLAIN, "eks"),
}
FULL_IDS = {name: [e.id for e in run(data, kind).events] for name, (data, kind) in INPUTS.items()}


def _member_ends(data: bytes) -> frozenset[int]:
    """Where each gzip member of ``data`` ends."""
    ends: set[int] = set()
    start = 0
    while data[start:].startswith(b"\x1f\x8b"):
        member = zlib.decompressobj(31)
        member.decompress(data[start:])
        start = len(data) - len(member.unused_data)
        ends.add(start)
    return frozenset(ends)


def _value_ends(data: bytes) -> frozenset[int]:
    """Where each top-level JSON value of ``data`` ends (one for a CloudTrail document)."""
    decoder = json.JSONDecoder()
    text = data.decode()
    ends: set[int] = set()
    index = 0
    while index < len(text.rstrip()):
        index = len(text) - len(text[index:].lstrip())
        _value, index = decoder.raw_decode(text, index)
        ends.add(len(text[:index].encode()))
    return frozenset(ends)


# Firehose writes whole records, one gzip member per delivery: an object cut between two
# members, or (uncompressed) between two records, is a shorter valid object. Only its length
# can tell, which botocore checks against the Content-Length of the GetObject response.
def _valid_cuts(data: bytes) -> frozenset[int]:
    return _member_ends(data) if data.startswith(b"\x1f\x8b") else _value_ends(data)


VALID_CUTS = {name: _valid_cuts(data) for name, (data, _kind) in INPUTS.items()}


def test_the_fuzz_inputs_parse_cleanly() -> None:
    for name, (data, kind) in INPUTS.items():
        result = run(data, kind)
        assert result.error is None, name
        assert len(result.events) == len(FULL_IDS[name]) > 10


@FUZZ
@given(name=st.sampled_from(sorted(INPUTS)), fraction=st.floats(0, 1, exclude_max=True))
def test_truncation_yields_a_prefix_then_the_typed_error(name: str, fraction: float) -> None:
    data, kind = INPUTS[name]
    cut = int(len(data) * fraction)
    result = run(data[:cut], kind)  # any other exception fails the test
    ids = [e.id for e in result.events]
    assert ids == FULL_IDS[name][: len(ids)]
    if result.error is None:
        # Only a cut in trailing whitespace, or between whole records, leaves a valid object.
        end = cut if data.startswith(b"\x1f\x8b") else len(data[:cut].rstrip())
        assert ids == FULL_IDS[name] or end in VALID_CUTS[name]
    else:
        assert result.error.reason in {"truncated", "empty"}


@FUZZ
@given(
    name=st.sampled_from(sorted(INPUTS)),
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4
    ),
)
def test_byte_flips_raise_only_the_typed_error(name: str, flips: list[tuple[float, int]]) -> None:
    data, kind = INPUTS[name]
    damaged = bytearray(data)
    for where, mask in flips:
        damaged[int(where * len(damaged))] ^= mask
    result = run(bytes(damaged), kind)
    assert len(result.events) <= len(FULL_IDS[name]) + 5


@FUZZ
@given(
    first=st.sampled_from(sorted(INPUTS)),
    second=st.sampled_from(sorted(INPUTS)),
    cut_first=st.floats(0, 1),
    cut_second=st.floats(0, 1),
)
def test_splices_of_two_objects(
    first: str, second: str, cut_first: float, cut_second: float
) -> None:
    head, kind = INPUTS[first]
    tail, _ = INPUTS[second]
    spliced = head[: int(len(head) * cut_first)] + tail[int(len(tail) * cut_second) :]
    result = run(spliced, kind)
    if result.error is not None:
        assert isinstance(result.error, CorruptObjectError)


# --- memory under damage -----------------------------------------------------------------------

BIG_RECORDS = 3000
BIG = _cloudtrail(3, BIG_RECORDS, large=1500)
LARGEST = max(len(orjson.dumps(r)) for r in orjson.loads(BIG)["Records"])


@settings(max_examples=10, deadline=None, database=None)
@given(
    mode=st.sampled_from(["truncate", "flip", "splice"]),
    where=st.floats(0.05, 0.95),
    mask=st.integers(1, 255),
)
def test_memory_is_bounded_whatever_the_damage(mode: str, where: float, mask: int) -> None:
    position = int(len(BIG) * where)
    if mode == "truncate":
        data = BIG[:position]
    elif mode == "flip":
        damaged = bytearray(BIG)
        damaged[position] ^= mask
        data = bytes(damaged)
    else:
        data = BIG[:position] + BIG[len(BIG) - position :]
    limit = 4 * LARGEST
    tracemalloc.start()
    try:
        try:
            for _ in parse_object(
                io.BytesIO(data), kind="cloudtrail", bucket="b", key="k", max_value_bytes=limit
            ):
                pass
        except CorruptObjectError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The input itself lives outside the traced window; the parser may hold a few values.
    assert peak < 12 * LARGEST + 1024 * 1024, f"peak {peak} with largest record {LARGEST}"
