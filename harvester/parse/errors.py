"""The one error a parser raises about its input.

A parser yields every record that was valid before a fault, then raises
``CorruptObjectError``. Its ``reason`` comes from a small fixed set so it can label a
metric; ``byte_offset`` counts bytes of the *uncompressed* content (where the faulty record
starts, or how much was decompressed when the gzip layer failed), and ``record_index`` is the
0-based index of the record (CloudTrail) or audit event (EKS) that could not be read.

Errors raised by the input stream's own ``read`` (network timeouts, for instance) are not
about the object and pass through unchanged, so the caller can retry them.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["REASONS", "CorruptObjectError", "CorruptReason", "ParseError"]

CorruptReason = Literal[
    "empty",  # zero bytes, or only whitespace
    "bad_gzip",  # bad header, bad CRC or length, data after the last member
    "truncated",  # the content ends inside a gzip member or a JSON value
    "bad_json",  # not JSON (or not UTF-8) at byte_offset
    "bad_record",  # valid JSON, but not a record of the expected shape
    "unexpected_shape",  # the document is not the kind of object the parser expected
    "record_too_large",  # one value exceeds the parser's max_value_bytes
]
REASONS: frozenset[str] = frozenset(get_args(CorruptReason))


class ParseError(Exception):
    """Base class of everything the parsers raise about an object's content."""


class CorruptObjectError(ParseError):
    """The object cannot be read past ``byte_offset`` / ``record_index``."""

    def __init__(
        self,
        reason: CorruptReason,
        detail: str,
        *,
        byte_offset: int | None = None,
        record_index: int | None = None,
    ) -> None:
        self.reason: CorruptReason = reason
        self.detail = detail
        self.byte_offset = byte_offset
        self.record_index = record_index
        where = []
        if record_index is not None:
            where.append(f"record {record_index}")
        if byte_offset is not None:
            where.append(f"byte {byte_offset}")
        suffix = f" at {', '.join(where)}" if where else ""
        super().__init__(f"{reason}: {detail}{suffix}")

    def __reduce__(self) -> tuple[object, ...]:
        # Celery and multiprocessing pickle errors; keep the keyword arguments.
        return (_rebuild, (self.reason, self.detail, self.byte_offset, self.record_index))


def _rebuild(
    reason: CorruptReason, detail: str, byte_offset: int | None, record_index: int | None
) -> CorruptObjectError:
    return CorruptObjectError(reason, detail, byte_offset=byte_offset, record_index=record_index)
