"""Helpers shared by the parser tests."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import orjson

from harvester.events import Event
from harvester.parse import CorruptObjectError, ObjectKind, ParseStats, parse_object


@dataclass
class Result:
    events: list[Event]
    error: CorruptObjectError | None
    stats: ParseStats


def run(data: bytes, kind: ObjectKind = "cloudtrail", **kwargs: Any) -> Result:
    """Parse ``data`` to the end, keeping the events and the typed error, if any.

    Any other exception propagates, so a test using this fails on it.
    """
    return run_stream(io.BytesIO(data), kind, **kwargs)


def run_stream(stream: Any, kind: ObjectKind = "cloudtrail", **kwargs: Any) -> Result:
    stats = ParseStats()
    events: list[Event] = []
    try:
        for event in parse_object(
            stream, kind=kind, bucket="bucket", key="key", stats=stats, **kwargs
        ):
            events.append(event)
    except CorruptObjectError as exc:
        return Result(events, exc, stats)
    return Result(events, None, stats)


def cloudtrail_document(records: list[bytes], *, before: bytes = b"", after: bytes = b"") -> bytes:
    """``{"Records":[...]}`` from already encoded records, with optional extra members."""
    return b"{" + before + b'"Records":[' + b",".join(records) + b"]" + after + b"}"


def encode(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(record) for record in records]


class TrickleReader:
    """A stream that returns at most ``step`` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        limit = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + limit]
        self._pos += len(chunk)
        return chunk
