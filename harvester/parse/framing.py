"""Find where JSON values end in a growing buffer, without decoding them in Python.

Decoding a whole CloudTrail document at once costs memory in proportion to the object;
walking it byte by byte in Python costs time. We do neither:

* **Learned separator, verified by the decoder.** Producers write every record with the
  same first key and the same spacing (``},{"eventVersion":`` in CloudTrail,
  ``}{"messageType":`` between CloudWatch Logs payloads). After two values we know those
  bytes, and ``bytes.find`` proposes where a value ends. The proposal is never trusted: the
  slice is handed to the decoder, and a slice that starts at a value boundary decodes
  cleanly only if it also ends at one (a cut inside a string or a nested object leaves
  something unclosed).
* **Gzip member ends**, for EKS: Firehose writes one CloudWatch Logs payload per gzip
  member, so where a member ends is proposed (and verified) the same way.
* **A bounded-depth regular expression** matches one whole object or array in C when there
  is no separator yet (the first values, the last one, an unusual producer).
* **An exact scanner** steps from bracket to bracket in Python for what the expression
  cannot match: values nested deeper than it allows, and inputs that are cut short.

Memory stays within a few times the largest value: the buffer holds the unread tail, and
waiting for a separator stops once the buffer exceeds that bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import msgspec

from harvester.events import DECODE_ERRORS
from harvester.parse.errors import CorruptObjectError
from harvester.parse.gzipstream import ContentReader

__all__ = ["DEFAULT_MAX_VALUE_BYTES", "Buffer", "ValueStream", "decode_error"]

T = TypeVar("T")
# What a value is handed to a decoder as (collections.abc.Buffer arrives in 3.12).
Buffer = bytes | bytearray | memoryview

DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024
# The regex walks this many levels of nesting; deeper values go to the exact scanner.
_REGEX_DEPTH = 20
# Before falling back to the exact scanner, let an incomplete value grow to this size.
_MIN_EXACT_THRESHOLD = 1024 * 1024
_KEEP_BEHIND = 256

_WS = re.compile(rb"[ \t\r\n]*")
_STRING = rb'"(?:[^"\\]++|\\.)*+"'
_ATOM = rb'[^"{}\[\]]++'


def _container(depth: int) -> bytes:
    inner = _ATOM + b"|" + _STRING
    if depth > 1:
        inner += b"|" + _container(depth - 1)
    # Mismatched pairs ("{...]") pass here on purpose: the decoder rejects them later.
    return rb"[{\[](?:" + inner + rb")*+[}\]]"


_VALUE = re.compile(_container(_REGEX_DEPTH), re.DOTALL)
_STRUCTURAL = re.compile(rb"(?:" + _ATOM + b"|" + _STRING + rb')*+(?:([{}\[\]])|("))', re.DOTALL)
_SCALAR = re.compile(_STRING + rb'|[^,:{}\[\]" \t\r\n]++', re.DOTALL)
_FIRST_KEY = re.compile(rb'\{[ \t\r\n]*"(?:[^"\\]++|\\.)*+"[ \t\r\n]*:', re.DOTALL)
_SEPARATOR_GAP = re.compile(rb"[ \t\r\n]*,?[ \t\r\n]*")
_BYTE_POSITION = re.compile(r"\(byte ([0-9]+)\)")
_PAIRS = {ord("}"): ord("{"), ord("]"): ord("[")}
_OPENERS = frozenset(b"{[")


class _Mismatch(Exception):
    def __init__(self, position: int) -> None:
        self.position = position


def _exact_end(buf: bytearray, start: int) -> int | None:
    """End of the object/array at ``start``; None when the buffer stops first."""
    stack: list[int] = []
    pos = start
    while True:
        match = _STRUCTURAL.match(buf, pos)
        if match is None or match.group(1) is None:
            return None
        char = match.group(1)[0]
        pos = match.end()
        if char in _OPENERS:
            stack.append(char)
            continue
        if not stack or stack.pop() != _PAIRS[char]:
            raise _Mismatch(pos - 1)
        if not stack:
            return pos


def decode_error(
    exc: Exception, *, what: str, offset: int, index: int | None
) -> CorruptObjectError:
    """Turn a msgspec error about a value that starts at ``offset`` into ours."""
    message = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return CorruptObjectError(
            "bad_record", f"{what}: {message}", byte_offset=offset, record_index=index
        )
    found = _BYTE_POSITION.search(message)
    position = offset + int(found.group(1)) if found else offset
    return CorruptObjectError(
        "bad_json", f"{what}: {message}", byte_offset=position, record_index=index
    )


class ValueStream:
    """A buffer over a ``ContentReader`` with a cursor ``pos``; offsets are absolute."""

    def __init__(self, reader: ContentReader, *, max_value_bytes: int) -> None:
        self.reader = reader
        self.max_value_bytes = max_value_bytes
        self.buf = bytearray()
        self.pos = 0
        self.base = 0
        self.eof = False
        self.separator: bytes | None = None
        self.separator_misses = 0
        # Gzip member ends as proposed value ends (the EKS parser turns this on).
        self.use_member_ends = False
        self.member_misses = 0
        self.largest = 0

    @property
    def offset(self) -> int:
        """Absolute offset of ``pos`` in the content."""
        return self.base + self.pos

    @property
    def buffered(self) -> int:
        return len(self.buf) - self.pos

    def wait_bound(self) -> int:
        """How much to buffer while waiting for a separator before scanning instead."""
        return max(_MIN_EXACT_THRESHOLD, 4 * self.largest)

    def fill(self) -> bool:
        """Append the next chunk; False at the end of the content. May move ``buf``."""
        if self.eof:
            return False
        chunk = self.reader.read()
        if not chunk:
            self.eof = True
            return False
        # Keep a few bytes before the cursor: learn_separator looks back at them.
        drop = self.pos - _KEEP_BEHIND
        if drop > 0:
            del self.buf[:drop]
            self.base += drop
            self.pos -= drop
        self.buf += chunk
        return True

    def peek(self) -> int | None:
        """Skip JSON whitespace; the next byte, or None at the end of the content."""
        while True:
            match = _WS.match(self.buf, self.pos)
            assert match is not None
            self.pos = match.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return None

    def ensure(self, size: int) -> None:
        """Buffer at least ``size`` bytes after ``pos`` unless the content ends first."""
        while self.buffered < size and self.fill():
            pass

    def learn_separator(self) -> None:
        """At the start of a value that follows another, remember the bytes between them."""
        if self.separator is not None or self.separator_misses > 8:
            return
        start = self.pos
        close = self.buf.rfind(b"}", 0, start)
        first_key = _FIRST_KEY.match(self.buf, start)
        if close < 0 or first_key is None:
            return
        gap = _SEPARATOR_GAP.match(self.buf, close + 1)
        if gap is None or gap.end() != start:
            return
        self.separator = bytes(self.buf[close : first_key.end()])

    def miss(self) -> None:
        """The separator proposed a wrong end; stop trusting one that keeps missing."""
        self.separator_misses += 1
        if self.separator_misses > 8:
            self.separator = None

    def find_end(self, *, index: int | None, what: str) -> int:
        """Exact end (buffer position) of the object or array at ``pos``; fills as needed."""
        start_offset = self.offset
        threshold = min(self.wait_bound(), self.max_value_bytes + 1)
        while True:
            start = self.pos
            match = _VALUE.match(self.buf, start)
            if match is not None:
                return self._check_size(match.end(), start_offset, index, what)
            if not self.eof and self.buffered < threshold:
                self.fill()
                continue
            try:
                end = _exact_end(self.buf, start)
            except _Mismatch as exc:
                raise CorruptObjectError(
                    "bad_json",
                    f"{what}: unbalanced brackets",
                    byte_offset=self.base + exc.position,
                    record_index=index,
                ) from None
            if end is not None:
                return self._check_size(end, start_offset, index, what)
            if self.eof:
                raise CorruptObjectError(
                    "truncated",
                    f"the content ends inside {what}",
                    byte_offset=start_offset,
                    record_index=index,
                )
            if self.buffered > self.max_value_bytes:
                raise CorruptObjectError(
                    "record_too_large",
                    f"{what} is larger than {self.max_value_bytes} bytes",
                    byte_offset=start_offset,
                    record_index=index,
                )
            threshold = 2 * self.buffered
            self.fill()

    def _check_size(self, end: int, start_offset: int, index: int | None, what: str) -> int:
        if end - self.pos > self.max_value_bytes:
            raise CorruptObjectError(
                "record_too_large",
                f"{what} is larger than {self.max_value_bytes} bytes",
                byte_offset=start_offset,
                record_index=index,
            )
        return end

    def _member_end(self) -> int | None:
        ends = self.reader.member_ends
        while ends and ends[0] - self.base <= self.pos:
            ends.popleft()
        return ends[0] - self.base if ends else None

    def candidate_end(self, *, after: int = 1) -> int | None:
        """Where the learned separator says the value at ``pos`` ends (not yet verified)."""
        separator = self.separator
        if separator is None:
            return None
        relative = after
        while True:
            cut = self.buf.find(separator, self.pos + relative)
            if cut >= 0:
                return cut + 1
            if self.eof or self.buffered > min(self.wait_bound(), self.max_value_bytes):
                return None
            relative = max(after, self.buffered - len(separator) + 1)
            if not self.fill():
                return None

    def next_value(
        self,
        decode: Callable[[Buffer], T],
        *,
        index: int | None,
        what: str,
        borrow: bool = False,
    ) -> tuple[int, T]:
        """Decode the object at ``pos`` and move past it; returns (offset, decoded value).

        ``decode`` gets its own copy of the value's bytes, since anything decoded as Raw
        keeps referring to them. With ``borrow`` it reads them in place instead, which is
        only safe when the decoded value keeps no reference to its input.
        """
        offset = self.offset
        if self.use_member_ends:
            end = self._member_end()
            if end is not None and end - self.pos <= self.max_value_bytes:
                try:
                    value = self._decode(decode, end, borrow)
                except DECODE_ERRORS:
                    self.member_misses += 1
                    self.use_member_ends = self.member_misses < 3
                else:
                    self._advance(end)
                    return offset, value
        end = self.candidate_end()
        if end is not None and end - self.pos <= self.max_value_bytes:
            try:
                value = self._decode(decode, end, borrow)
            except DECODE_ERRORS:
                self.miss()
            else:
                self._advance(end)
                return offset, value
        end = self.find_end(index=index, what=what)
        try:
            value = self._decode(decode, end, borrow)
        except DECODE_ERRORS as exc:
            raise decode_error(exc, what=what, offset=offset, index=index) from None
        self._advance(end)
        return offset, value

    def _decode(self, decode: Callable[[Buffer], T], end: int, borrow: bool) -> T:
        if not borrow:
            return decode(self.buf[self.pos : end])
        # The view must be gone before buf grows again (a bytearray with a live export
        # cannot be resized), hence the explicit release.
        view = memoryview(self.buf)
        try:
            return decode(view[self.pos : end])
        finally:
            view.release()

    def take_scalar(self, *, what: str) -> bytes:
        """The string, number or literal at ``pos`` (undecoded), moving past it."""
        offset = self.offset
        while True:
            match = _SCALAR.match(self.buf, self.pos)
            if match is not None and (match.end() < len(self.buf) or self.eof):
                value = bytes(self.buf[self.pos : match.end()])
                self.pos = match.end()
                return value
            if match is None and self.buf[self.pos] != ord('"'):
                raise CorruptObjectError(
                    "bad_json", f"{what}: not a JSON value", byte_offset=offset
                )
            if self.eof:
                raise CorruptObjectError(
                    "truncated", f"the content ends inside {what}", byte_offset=offset
                )
            if self.buffered > self.max_value_bytes:
                raise CorruptObjectError(
                    "record_too_large",
                    f"{what} is larger than {self.max_value_bytes} bytes",
                    byte_offset=offset,
                )
            self.fill()

    def skip_value(self, *, what: str) -> None:
        """Move past the value at ``pos`` (after ``peek``), checking only that it is JSON."""
        offset = self.offset
        if self.buf[self.pos] in _OPENERS:
            end = self.find_end(index=None, what=what)
            token = bytes(self.buf[self.pos : end])
            self._advance(end)
        else:
            token = self.take_scalar(what=what)
        try:
            msgspec.json.decode(token)
        except DECODE_ERRORS as exc:
            raise decode_error(exc, what=what, offset=offset, index=None) from None

    def _advance(self, end: int) -> None:
        self.largest = max(self.largest, end - self.pos)
        self.pos = end
