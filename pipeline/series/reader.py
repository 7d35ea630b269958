"""Traefik's access log read as it grows, from a position remembered on disk.

The position is the log's inode and the offset after the last whole line read, written
atomically after what was read is stored. When Traefik's log was rotated meanwhile
(`pipeline.traefik.process`), the rest of the rotated file is read first, then the new one
from its start. A read takes at most `max_bytes` (of a rotated file's rest, too): a backlog
is caught up over several reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.traefik.traffic import Entry, parse_line

MAX_READ_BYTES = 4 * 1024 * 1024  # a read's lines in memory at once: ~6,000 of Traefik's


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int


class AccessLogReader:
    def __init__(self, log: Path, remembered: Path, max_bytes: int = MAX_READ_BYTES) -> None:
        self.log = log
        self.remembered = remembered
        self.max_bytes = max_bytes
        self.position = self._load()
        self.more = False  # whether the last read stopped at `max_bytes` with more to read

    def read(self) -> list[Entry]:
        """The entries written since the last read (at most `max_bytes` of them); `save`
        once they are stored."""
        try:
            inode = os.stat(self.log).st_ino
        except FileNotFoundError:
            return []
        entries: list[Entry] = []
        position = self.position
        if position is not None and position.inode != inode:
            rotated = self.log.with_name(f"{self.log.name}.1")
            try:
                if os.stat(rotated).st_ino == position.inode:
                    entries, _, _ = _read_from(rotated, position.offset, self.max_bytes)
            except FileNotFoundError:
                pass
            position = None
        offset = position.offset if position is not None else 0
        more, offset, self.more = _read_from(self.log, offset, self.max_bytes)
        self.position = Position(inode, offset)
        return entries + more

    def save(self) -> None:
        if self.position is None:
            return
        staged = self.remembered.with_name(f".{self.remembered.name}.tmp")
        staged.write_text(
            json.dumps({"inode": self.position.inode, "offset": self.position.offset})
        )
        os.replace(staged, self.remembered)

    def _load(self) -> Position | None:
        try:
            data = json.loads(self.remembered.read_text())
            return Position(int(data["inode"]), int(data["offset"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None


def _read_from(path: Path, offset: int, max_bytes: int) -> tuple[list[Entry], int, bool]:
    """The whole lines of `path` from `offset` (from 0 when the file is shorter: it was
    truncated), the offset after the last of them, and whether there is more."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < offset:
            offset = 0
        handle.seek(offset)
        chunk = handle.read(max(max_bytes, 0))
    end = chunk.rfind(b"\n") + 1
    more = offset + len(chunk) < size
    if end == 0 and more:  # one line longer than a read: no line of ours, skipped
        return [], offset + len(chunk), more
    entries = [entry for raw in chunk[:end].split(b"\n") if (entry := parse_line(raw)) is not None]
    return entries, offset + end, more
