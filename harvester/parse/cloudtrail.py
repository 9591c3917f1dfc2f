"""Stream a CloudTrail log object, ``{"Records": [...]}``, gzip or plain.

Records are cut out of the decompressed stream in batches of about ``BATCH_TARGET`` bytes
and each batch is decoded by msgspec in one call into ``CloudTrailRecord`` structs (see
``framing`` for how the cut is found and verified). Whitespace, pretty printing and other
top-level keys before or after ``Records`` are accepted.

A document without ``Records`` (a CloudTrail-Digest file, for one) yields nothing and sets
``stats.records_found = False`` (and ``stats.digest`` when it has digest keys): the caller
decides what that means. Anything else unexpected raises ``CorruptObjectError`` after the
records that came before it.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from harvester.events import (
    DECODE_ERRORS,
    CloudTrailRecord,
    Event,
    InvalidRecordError,
    from_cloudtrail,
)
from harvester.parse.errors import CorruptObjectError
from harvester.parse.framing import DEFAULT_MAX_VALUE_BYTES, ValueStream, decode_error
from harvester.parse.gzipstream import ContentReader, Readable
from harvester.parse.stats import ParseStats

__all__ = ["BATCH_TARGET", "iter_cloudtrail_batches", "parse_cloudtrail"]

BATCH_TARGET = 32 * 1024
_DIGEST_KEYS = frozenset(("digestStartTime", "digestPublicKeyFingerprint", "logFiles"))
_BATCH_DECODER = msgspec.json.Decoder(list[CloudTrailRecord])
_RECORD_DECODER = msgspec.json.Decoder(CloudTrailRecord)
_KEY_DECODER = msgspec.json.Decoder(str)
_OPEN_OBJECT, _CLOSE_OBJECT = ord("{"), ord("}")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_COMMA = ord(",")
_VALUE_STARTS = frozenset(b'["-0123456789tfn')


class _Document:
    def __init__(self, values: ValueStream, stats: ParseStats) -> None:
        self.values = values
        self.stats = stats
        self.index = 0
        # Records before this absolute offset are decoded one by one (after a batch failed).
        self.careful_until = -1

    def batches(self) -> Iterator[list[CloudTrailRecord]]:
        values = self.values
        char = values.peek()
        if char is None:
            raise CorruptObjectError("empty", "the content is only whitespace", byte_offset=0)
        if char != _OPEN_OBJECT:
            json_start = char in _VALUE_STARTS
            raise CorruptObjectError(
                "unexpected_shape" if json_start else "bad_json",
                "the document is not a JSON object",
                byte_offset=values.offset,
            )
        values.pos += 1
        first = True
        while True:
            char = self._peek("the top-level object")
            if char == _CLOSE_OBJECT:
                values.pos += 1
                break
            if not first:
                if char != _COMMA:
                    raise CorruptObjectError(
                        "bad_json",
                        "expected ',' or '}' after a top-level value",
                        byte_offset=values.offset,
                    )
                values.pos += 1
                self._peek("the top-level object")
            first = False
            name = self._key()
            char = self._peek(f"the value of {name!r}")
            if name == "Records" and char == _OPEN_ARRAY:
                values.pos += 1
                self.stats.records_found = True
                yield from self._records()
            elif name == "Records" and char != ord("n"):
                raise CorruptObjectError(
                    "unexpected_shape", "Records is not an array", byte_offset=values.offset
                )
            else:
                self.stats.digest = self.stats.digest or name in _DIGEST_KEYS
                values.skip_value(what=f"the value of {name!r}")
        if values.peek() is not None:
            raise CorruptObjectError(
                "bad_json", "data after the end of the document", byte_offset=values.offset
            )

    def _peek(self, where: str) -> int:
        char = self.values.peek()
        if char is None:
            raise CorruptObjectError(
                "truncated",
                f"the content ends inside {where}",
                byte_offset=self.values.offset,
                record_index=None,
            )
        return char

    def _key(self) -> str:
        values = self.values
        offset = values.offset
        if values.buf[values.pos] != ord('"'):
            raise CorruptObjectError("bad_json", "expected a key", byte_offset=offset)
        token = values.take_scalar(what="a top-level key")
        try:
            name = _KEY_DECODER.decode(token)
        except DECODE_ERRORS as exc:
            raise decode_error(exc, what="a top-level key", offset=offset, index=None) from None
        if self._peek("the top-level object") != ord(":"):
            raise CorruptObjectError("bad_json", "expected ':'", byte_offset=values.offset)
        values.pos += 1
        return name

    def _records(self) -> Iterator[list[CloudTrailRecord]]:
        values = self.values
        first = True
        while True:
            char = self._peek_record()
            if char == _CLOSE_ARRAY:
                values.pos += 1
                return
            if not first:
                if char != _COMMA:
                    raise CorruptObjectError(
                        "bad_json",
                        "expected ',' or ']' after a record",
                        byte_offset=values.offset,
                        record_index=self.index,
                    )
                values.pos += 1
                char = self._peek_record()
            first = False
            if char != _OPEN_OBJECT:
                raise CorruptObjectError(
                    "bad_record",
                    "a record is not a JSON object",
                    byte_offset=values.offset,
                    record_index=self.index,
                )
            if 1 <= self.index <= 8:
                values.learn_separator()
            batch = self._batch()
            if batch is None:
                _, record = values.next_value(
                    _RECORD_DECODER.decode, index=self.index, what=f"record {self.index}"
                )
                batch = [record]
            self.index += len(batch)
            yield batch

    def _peek_record(self) -> int:
        char = self.values.peek()
        if char is None:
            raise CorruptObjectError(
                "truncated",
                "the content ends inside the Records array",
                byte_offset=self.values.offset,
                record_index=self.index,
            )
        return char

    def _batch(self) -> list[CloudTrailRecord] | None:
        """Several records in one decode when the learned separator finds a cut."""
        values = self.values
        separator = values.separator
        if separator is None or values.offset < self.careful_until:
            return None
        values.ensure(2 * BATCH_TARGET)
        buf, start = values.buf, values.pos
        cut = buf.rfind(separator, start + 1, start + BATCH_TARGET + len(separator))
        if cut < 0:
            end = values.candidate_end(after=BATCH_TARGET)
            if end is None:
                return None
            buf, start, cut = values.buf, values.pos, end - 1
            if end - start > values.max_value_bytes:
                return None
        try:
            batch = _BATCH_DECODER.decode(b"[" + buf[start : cut + 1] + b"]")
        except DECODE_ERRORS:
            # Either the cut was wrong or a record is bad: go one by one up to the cut.
            values.miss()
            self.careful_until = values.base + cut + 1
            return None
        values.largest = max(values.largest, (cut + 1 - start) // max(len(batch), 1))
        values.pos = cut + 1
        return batch


def iter_cloudtrail_batches(
    stream: Readable,
    *,
    stats: ParseStats | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    hash_content: bool = True,
) -> Iterator[list[CloudTrailRecord]]:
    """The records of a CloudTrail object in decoded batches (the fastest raw access)."""
    stats = stats if stats is not None else ParseStats()
    reader = ContentReader(stream, hash_content=hash_content)
    values = ValueStream(reader, max_value_bytes=max_value_bytes)
    try:
        yield from _Document(values, stats).batches()
        stats.complete = True
    finally:
        stats.take_counts(reader)


def parse_cloudtrail(
    stream: Readable,
    *,
    bucket: str,
    key: str,
    stats: ParseStats | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    hash_content: bool = True,
    copy_payloads: bool = True,
) -> Iterator[Event]:
    """Normalized events of a CloudTrail log object, one record at a time.

    ``stats.sha256`` (with ``hash_content``) is what a CloudTrail digest lists for the file.
    ``copy_payloads``: see ``from_cloudtrail``.
    """
    stats = stats if stats is not None else ParseStats()
    index = 0
    batches = iter_cloudtrail_batches(
        stream, stats=stats, max_value_bytes=max_value_bytes, hash_content=hash_content
    )
    for batch in batches:
        for record in batch:
            try:
                event = from_cloudtrail(
                    record, bucket=bucket, key=key, index=index, copy_payloads=copy_payloads
                )
            except InvalidRecordError as exc:
                raise CorruptObjectError("bad_record", str(exc), record_index=index) from None
            index += 1
            stats.events = index
            yield event
