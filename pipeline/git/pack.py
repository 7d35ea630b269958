"""What a pushed pack unpacks to, found before dulwich unpacks it.

The push limit counts bytes on the wire, and a pack is compressed: a push of a few hundred
KB can carry a blob of 400 MB of zeros, which dulwich inflates whole into memory, then the
export writes out again. So the pack is walked first, object by object, inflating each one
a bounded piece at a time and keeping nothing: every object's size (for a delta, the size of
the object it makes) is checked against `max_object_bytes`, their sum against
`max_unpacked_bytes`, and the walk stops at the first object over a limit. dulwich has no
such walk that keeps memory bounded: its readers inflate each object into memory whole.

Pack format (git's Documentation/gitformat-pack.txt): "PACK", version, object count; per
object a type-and-size header, a base offset or name for deltas, then a zlib stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import IO

from pipeline.errors import InvalidInput, TooLarge

READ_SIZE = 64 * 1024
OFS_DELTA, REF_DELTA = 6, 7
VALID_TYPES = {1, 2, 3, 4, OFS_DELTA, REF_DELTA}


@dataclass(frozen=True)
class PackLimits:
    max_object_bytes: int
    max_unpacked_bytes: int


@dataclass(frozen=True)
class PackSize:
    objects: int
    unpacked_bytes: int
    largest_object: int


def check_pack(body: IO[bytes], start: int, limits: PackLimits) -> PackSize:
    """Walk the pack at `start` of `body`; raise TooLarge past a limit. `body` is rewound."""
    try:
        return _Walk(body, start, limits).run()
    finally:
        body.seek(0)


class _Walk:
    def __init__(self, body: IO[bytes], start: int, limits: PackLimits) -> None:
        self.body, self.limits = body, limits
        body.seek(start)
        self.buffer = b""

    def read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            data = self.body.read(READ_SIZE)
            if not data:
                raise InvalidInput("malformed git request: the pack ends early")
            self.buffer += data
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken

    def run(self) -> PackSize:
        head = self.body.read(12)
        if not head:
            return PackSize(0, 0, 0)  # a push that only deletes refs sends no pack
        if len(head) < 12 or head[:4] != b"PACK" or struct.unpack(">I", head[4:8])[0] not in (2, 3):
            raise InvalidInput("malformed git request: not a git pack")
        count = struct.unpack(">I", head[8:12])[0]
        total = largest = 0
        for _ in range(count):
            kind, declared = self._header()
            if kind == OFS_DELTA:
                self._varint_offset()
            elif kind == REF_DELTA:
                self.read(20)
            if kind not in (OFS_DELTA, REF_DELTA):
                self._within(declared)  # refused before a byte of it is inflated
            size = self._inflate(kind, declared)
            largest = max(largest, size)
            total += size
            if total > self.limits.max_unpacked_bytes:
                raise TooLarge(
                    f"push unpacks to more than the limit of {self.limits.max_unpacked_bytes} "
                    "bytes (--max-unpacked-bytes)"
                )
        return PackSize(count, total, largest)

    def _header(self) -> tuple[int, int]:
        byte = self.read(1)[0]
        kind, size, shift = (byte >> 4) & 7, byte & 15, 4
        while byte & 0x80:
            byte = self.read(1)[0]
            size |= (byte & 0x7F) << shift
            shift += 7
            if shift > 70:
                raise InvalidInput("malformed git request: an object header never ends")
        if kind not in VALID_TYPES:
            raise InvalidInput(f"malformed git request: object type {kind}")
        return kind, size

    def _varint_offset(self) -> None:
        for _ in range(10):
            if not self.read(1)[0] & 0x80:
                return
        raise InvalidInput("malformed git request: a delta offset never ends")

    def _within(self, size: int) -> None:
        if size > self.limits.max_object_bytes:
            raise TooLarge(
                f"push holds an object of {size} bytes, over the limit of "
                f"{self.limits.max_object_bytes} (--max-object-bytes)"
            )

    def _inflate(self, kind: int, declared: int) -> int:
        """Inflate one object's stream a piece at a time; return the size of what it makes."""
        inflate = zlib.decompressobj()
        produced = 0
        delta_head = b""
        while not inflate.eof:
            if not self.buffer:
                self.buffer = self.body.read(READ_SIZE)
                if not self.buffer:
                    raise InvalidInput("malformed git request: the pack ends inside an object")
            data, self.buffer = self.buffer, b""
            while data and not inflate.eof:
                try:
                    piece = inflate.decompress(data, READ_SIZE)
                except zlib.error as exc:
                    raise InvalidInput(f"malformed git request: {exc}") from exc
                produced += len(piece)
                if produced > declared:
                    raise InvalidInput("malformed git request: an object is larger than it says")
                if kind in (OFS_DELTA, REF_DELTA) and len(delta_head) < 20:
                    delta_head += piece[: 20 - len(delta_head)]
                data = inflate.unconsumed_tail
            self.buffer = inflate.unused_data + self.buffer if inflate.eof else self.buffer
        if kind not in (OFS_DELTA, REF_DELTA):
            return declared
        made = _delta_result_size(delta_head)
        self._within(made)
        return made


def _delta_result_size(head: bytes) -> int:
    """A delta starts with two sizes: the base's, then the result's."""
    values, value, shift = [], 0, 0
    for byte in head:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            if len(values) == 2:
                return values[1]
            value, shift = 0, 0
    raise InvalidInput("malformed git request: a delta without its sizes")
