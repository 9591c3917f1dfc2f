"""Score batches: events encoded once, compressed, carried as bytes on the queue.

kombu's JSON of a list of dicts moves 13-20k events/s per worker; one compact body per batch,
encoded on the harvest side and decoded once on the scoring side, keeps the queue well ahead of
the parsers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from isal import isal_zlib  # 2-3x faster than the stdlib's zlib at level 1; same format

from harvester.events import Event, decode_events

MAGIC = b"HB1"
DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_BYTES = 1 << 20

_ENCODER = msgspec.json.Encoder()


class BatchError(ValueError):
    """A batch body that is not ours or is damaged."""


def encode_batch(lines: bytes | bytearray) -> bytes:
    return MAGIC + isal_zlib.compress(bytes(lines), 1)


def decode_batch(body: bytes) -> list[Event]:
    if not body.startswith(MAGIC):
        raise BatchError("not a score batch (bad magic)")
    try:
        raw = isal_zlib.decompress(body[len(MAGIC) :])
    except Exception as exc:  # noqa: BLE001  isal raises IsalError, which its stubs do not name
        raise BatchError(f"damaged score batch: {exc}") from None
    try:
        return decode_events(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BatchError(f"damaged score batch: {exc}") from None


@dataclass
class BatchBuilder:
    """Accumulates events and hands a finished batch body to ``emit`` at either bound."""

    emit: Callable[[bytes, int], None]
    max_events: int = DEFAULT_MAX_EVENTS
    max_bytes: int = DEFAULT_MAX_BYTES
    _buffer: bytearray = field(default_factory=bytearray)
    _count: int = 0
    batches: int = 0
    events: int = 0

    def add(self, event: Event) -> None:
        _ENCODER.encode_into(event, self._buffer, -1)
        self._buffer += b"\n"
        self._count += 1
        if self._count >= self.max_events or len(self._buffer) >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._count:
            return
        body = encode_batch(self._buffer)
        count = self._count
        self._buffer = bytearray()
        self._count = 0
        self.emit(body, count)
        self.batches += 1
        self.events += count
