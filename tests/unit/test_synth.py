"""The synthetic log generator: deterministic, realistic sizes, streaming writers."""

from __future__ import annotations

import gzip
import io
import random
import statistics
import zlib

import orjson

from harvester.synth import (
    cloudtrail_record,
    k8s_audit_event,
    write_cloudtrail_object,
    write_eks_firehose_object,
)


def test_same_seed_same_bytes() -> None:
    first, second = io.BytesIO(), io.BytesIO()
    write_cloudtrail_object(first, target_bytes=100_000, seed=42)
    write_cloudtrail_object(second, target_bytes=100_000, seed=42)
    assert first.getvalue() == second.getvalue()
    other = io.BytesIO()
    write_cloudtrail_object(other, target_bytes=100_000, seed=43)
    assert other.getvalue() != first.getvalue()


def test_record_sizes() -> None:
    rng = random.Random(1)
    sizes = [len(orjson.dumps(cloudtrail_record(rng))) for _ in range(2000)]
    assert 1000 <= statistics.mean(sizes) <= 2000
    large = len(orjson.dumps(cloudtrail_record(rng, large=True)))
    assert 100_000 <= large <= 600_000
    events = [len(orjson.dumps(k8s_audit_event(rng))) for _ in range(500)]
    assert 700 <= statistics.mean(events) <= 2000


def test_every_identity_type_can_be_forced() -> None:
    rng = random.Random(2)
    for kind in (
        "AssumedRole",
        "IAMUser",
        "Root",
        "AWSService",
        "FederatedUser",
        "SAMLUser",
        "WebIdentityUser",
        "IdentityCenterUser",
        "AWSAccount",
    ):
        assert cloudtrail_record(rng, identity_type=kind)["userIdentity"]["type"] == kind


def test_cloudtrail_object_reaches_its_target_and_is_valid() -> None:
    out = io.BytesIO()
    summary = write_cloudtrail_object(out, target_bytes=300_000, seed=3, large_every=0)
    document = orjson.loads(gzip.decompress(out.getvalue()))
    assert len(document["Records"]) == summary.records
    assert summary.uncompressed_bytes >= 300_000
    assert summary.compressed_bytes == len(out.getvalue())


def test_firehose_object_has_a_control_message_first_and_one_member_per_payload() -> None:
    out = io.BytesIO()
    summary = write_eks_firehose_object(out, target_bytes=200_000, seed=5)
    rest, members = out.getvalue(), []
    while rest:
        member = zlib.decompressobj(31)
        members.append(member.decompress(rest))
        rest = member.unused_data
    assert len(members) == summary.gzip_members > 2
    assert members[0].startswith(b'{"messageType":"CONTROL_MESSAGE"')
    assert all(m.startswith(b'{"messageType":"DATA_MESSAGE"') for m in members[1:])
