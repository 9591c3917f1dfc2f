"""ContentReader: gzip detection, multi-member, limits, hashing and gzip-layer errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib

import pytest

from harvester.parse import ContentReader, CorruptObjectError

from .helpers import TrickleReader

CONTENT = b'{"Records":[' + b",".join(b'{"eventName":"E%d"}' % i for i in range(2000)) + b"]}"


def read_all(reader: ContentReader) -> bytes:
    parts = []
    while chunk := reader.read():
        parts.append(chunk)
    return b"".join(parts)


def test_plain_content_passes_through_with_hash_and_counts() -> None:
    reader = ContentReader(io.BytesIO(CONTENT))
    assert read_all(reader) == CONTENT
    assert not reader.is_gzip
    assert reader.compressed_bytes == reader.uncompressed_bytes == len(CONTENT)
    assert reader.sha256 == hashlib.sha256(CONTENT).hexdigest()


def test_gzip_is_detected_by_magic_and_decompressed() -> None:
    packed = gzip.compress(CONTENT)
    reader = ContentReader(io.BytesIO(packed))
    assert read_all(reader) == CONTENT
    assert reader.is_gzip
    assert reader.gzip_members == 1
    assert reader.compressed_bytes == len(packed)
    assert reader.uncompressed_bytes == len(CONTENT)
    assert reader.sha256 == hashlib.sha256(CONTENT).hexdigest()


def test_hash_is_unknown_until_the_end() -> None:
    reader = ContentReader(io.BytesIO(gzip.compress(CONTENT)), chunk_size=1024)
    assert reader.read()
    assert reader.sha256 is None


def test_multi_member_gzip_and_zero_padding() -> None:
    pieces = [CONTENT[i : i + 5000] for i in range(0, len(CONTENT), 5000)]
    packed = b"".join(gzip.compress(piece) for piece in pieces) + b"\x00" * 37
    reader = ContentReader(TrickleReader(packed, 333), read_size=333)
    assert read_all(reader) == CONTENT
    assert reader.gzip_members == len(pieces)


def test_output_chunks_are_bounded_even_for_a_compression_bomb() -> None:
    bomb = gzip.compress(b"\x00" * (8 * 1024 * 1024))
    reader = ContentReader(io.BytesIO(bomb), chunk_size=64 * 1024)
    sizes = []
    while chunk := reader.read():
        sizes.append(len(chunk))
    assert max(sizes) <= 64 * 1024
    assert sum(sizes) == 8 * 1024 * 1024


def test_one_byte_reads_still_detect_gzip() -> None:
    reader = ContentReader(TrickleReader(gzip.compress(CONTENT), 1))
    assert read_all(reader) == CONTENT


def test_empty_object() -> None:
    with pytest.raises(CorruptObjectError) as caught:
        ContentReader(io.BytesIO(b"")).read()
    assert caught.value.reason == "empty"
    assert caught.value.byte_offset == 0


@pytest.mark.parametrize("cut", [1, 5, 11, 100, -9, -1])
def test_truncated_gzip(cut: int) -> None:
    packed = gzip.compress(os.urandom(50_000))
    reader = ContentReader(io.BytesIO(packed[:cut]))
    with pytest.raises(CorruptObjectError) as caught:
        read_all(reader)
    assert caught.value.reason == "truncated"
    assert caught.value.byte_offset == reader.uncompressed_bytes


def test_bad_crc_after_valid_data() -> None:
    data = os.urandom(600_000)
    packed = bytearray(gzip.compress(data))
    packed[-6] ^= 0xFF  # inside the CRC32 trailer
    reader = ContentReader(io.BytesIO(bytes(packed)), chunk_size=64 * 1024)
    got = bytearray()

    def drain() -> None:
        while chunk := reader.read():
            got.extend(chunk)

    with pytest.raises(CorruptObjectError) as caught:
        drain()
    assert caught.value.reason == "bad_gzip"
    # The content before the trailer came out first, and the offset says how much.
    assert bytes(got) == data[: len(got)]
    assert len(got) > 0
    assert caught.value.byte_offset == len(got)


def test_garbage_after_the_last_member() -> None:
    with pytest.raises(CorruptObjectError) as caught:
        read_all(ContentReader(io.BytesIO(gzip.compress(CONTENT) + b"junk")))
    assert caught.value.reason == "bad_gzip"
    assert caught.value.byte_offset == len(CONTENT)


def test_bad_header_method() -> None:
    packed = bytearray(gzip.compress(CONTENT))
    packed[2] = 9  # compression method: only 8 (deflate) exists
    with pytest.raises(CorruptObjectError) as caught:
        read_all(ContentReader(io.BytesIO(bytes(packed))))
    assert caught.value.reason == "bad_gzip"


def test_raw_deflate_is_not_mistaken_for_gzip() -> None:
    # Not gzip: it is passed through as plain content for the JSON layer to reject.
    data = zlib.compress(CONTENT)
    assert read_all(ContentReader(io.BytesIO(data))) == data


def test_errors_from_the_stream_itself_pass_through() -> None:
    class Failing:
        def read(self, size: int = -1, /) -> bytes:
            raise TimeoutError("socket timed out")

    with pytest.raises(TimeoutError):
        ContentReader(Failing()).read()
