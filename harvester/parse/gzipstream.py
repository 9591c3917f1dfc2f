"""Turn a binary stream into its content, gunzipping when it starts with the gzip magic.

Chunks are bounded on both sides (``read_size`` compressed bytes in, ``chunk_size``
decompressed bytes out) so a highly compressible member cannot balloon memory. Multi-member
gzip (Firehose concatenates one member per CloudWatch Logs payload) and zero padding after
the last member are accepted, as stdlib ``gzip`` does. While reading, the SHA-256 and the
length of the content are computed: CloudTrail digest files carry the hash of the
uncompressed log file, so verifying one needs no second download.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

from harvester.parse.errors import CorruptObjectError

__all__ = ["GZIP_MAGIC", "ContentReader", "Readable"]

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 31
DEFAULT_READ_SIZE = 64 * 1024
DEFAULT_CHUNK_SIZE = 256 * 1024


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


try:
    from isal import isal_zlib

    _decompressobj: Callable[[int], _Decompressor] = isal_zlib.decompressobj
    # isal's stub declares its error as an instance; it is a class.
    _ZLIB_ERRORS: tuple[type[Exception], ...] = (
        cast("type[Exception]", isal_zlib.error),
        zlib.error,
    )
except ImportError:  # pragma: no cover - isal ships wheels for our platforms
    _decompressobj = zlib.decompressobj
    _ZLIB_ERRORS = (zlib.error,)


class Readable(Protocol):
    """What we need of a botocore ``StreamingBody`` or an open binary file."""

    def read(self, size: int, /) -> bytes: ...


class ContentReader:
    """Yields the (decompressed) content of ``stream`` chunk by chunk via ``read()``.

    After the last chunk (``read()`` returned ``b""``), ``sha256`` holds the hex digest of
    the whole content, unless ``hash_content`` was False. Errors from the gzip layer become
    ``CorruptObjectError``; errors raised by ``stream.read`` itself propagate unchanged.
    """

    def __init__(
        self,
        stream: Readable,
        *,
        read_size: int = DEFAULT_READ_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        hash_content: bool = True,
    ) -> None:
        self._stream = stream
        self._read_size = read_size
        self._chunk_size = chunk_size
        self._hash = hashlib.sha256() if hash_content else None
        self._input = b""
        self._source_done = False
        self._decompressor: _Decompressor | None = None
        self._started = False
        self.is_gzip = False
        self.gzip_members = 0
        self.compressed_bytes = 0
        self.uncompressed_bytes = 0
        self.finished = False
        # Content offsets where a gzip member ended, oldest first. Firehose writes one
        # CloudWatch Logs payload per member, so these are likely value boundaries.
        self.member_ends: deque[int] = deque(maxlen=64)

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the content, once all of it has been read (and if asked for)."""
        return self._hash.hexdigest() if self.finished and self._hash is not None else None

    def read(self) -> bytes:
        """The next piece of content, at most ``chunk_size`` bytes; ``b""`` at the end."""
        if self.finished:
            return b""
        if not self._started:
            self._start()
        out = self._next_gzip() if self.is_gzip else self._next_plain()
        if out:
            self.uncompressed_bytes += len(out)
            if self._hash is not None:
                self._hash.update(out)
        else:
            self.finished = True
        return out

    def _pull(self) -> bytes:
        if self._source_done:
            return b""
        data = self._stream.read(self._read_size)
        if not data:
            self._source_done = True
            return b""
        self.compressed_bytes += len(data)
        return data

    def _start(self) -> None:
        self._started = True
        first = self._pull()
        # A single-byte read could split the magic; one more read settles it.
        while len(first) < len(GZIP_MAGIC) and not self._source_done:
            first += self._pull()
        if not first:
            raise CorruptObjectError("empty", "the object has no content", byte_offset=0)
        if len(first) < len(GZIP_MAGIC) and GZIP_MAGIC.startswith(first):
            # The object ends inside the gzip magic: a gzip object cut short, not bad JSON.
            raise CorruptObjectError(
                "truncated", "the object ends inside its gzip header", byte_offset=0
            )
        self.is_gzip = first.startswith(GZIP_MAGIC)
        self._input = first

    def _next_plain(self) -> bytes:
        if self._input:
            out, self._input = self._input, b""
            return out
        return self._pull()

    def _next_gzip(self) -> bytes:
        while True:
            if self._decompressor is None and not self._begin_member():
                return b""
            assert self._decompressor is not None
            if not self._input:
                self._input = self._pull()
                if not self._input:
                    raise CorruptObjectError(
                        "truncated",
                        f"the content ends inside gzip member {self.gzip_members}",
                        byte_offset=self.uncompressed_bytes,
                    )
            decompressor = self._decompressor
            try:
                out = decompressor.decompress(self._input, self._chunk_size)
            except _ZLIB_ERRORS as exc:
                raise CorruptObjectError(
                    "bad_gzip",
                    f"gzip member {self.gzip_members}: {exc}",
                    byte_offset=self.uncompressed_bytes,
                ) from None
            if decompressor.eof:
                self._input = decompressor.unused_data
                self._decompressor = None
                self.member_ends.append(self.uncompressed_bytes + len(out))
            else:
                self._input = decompressor.unconsumed_tail
            if out:
                return out

    def _begin_member(self) -> bool:
        """Start the next gzip member; False when the input is exhausted."""
        while True:
            # stdlib gzip accepts zero padding after a member; so do we.
            stripped = self._input.lstrip(b"\x00")
            if stripped:
                self._input = stripped
                break
            self._input = self._pull()
            if not self._input:
                return False
        while len(self._input) < len(GZIP_MAGIC):
            more = self._pull()
            if not more:
                break
            self._input += more
        if len(self._input) < len(GZIP_MAGIC) and GZIP_MAGIC.startswith(self._input):
            # The object ends inside the next member's magic: cut short, not foreign bytes.
            raise CorruptObjectError(
                "truncated",
                f"the content ends inside the header of gzip member {self.gzip_members + 1}",
                byte_offset=self.uncompressed_bytes,
            )
        if not self._input.startswith(GZIP_MAGIC):
            raise CorruptObjectError(
                "bad_gzip",
                f"{len(self._input)}+ bytes after gzip member {self.gzip_members} are not gzip",
                byte_offset=self.uncompressed_bytes,
            )
        self._decompressor = _decompressobj(_GZIP_WBITS)
        self.gzip_members += 1
        return True
