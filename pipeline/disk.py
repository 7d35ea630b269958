"""The disks temps writes to: how much room each has left, and a write refused for want of
it turned into one error, DiskFull, that names the disk and what it has left.

A full disk reaches temps three ways: OSError ENOSPC (or EDQUOT, a quota) from a file it
writes (`writing`), SQLite's SQLITE_FULL (`pipeline.sqlite.store` maps it with `full`), and
a deploy that would fill it, refused before it starts (`pipeline.steps.space`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import DiskFull

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
MIB = 1024 * 1024
GIB = 1024 * MIB


def free_bytes(path: Path) -> int | None:
    """What may still be written on the file system holding `path` (df's "Avail": the
    blocks kept for root are not counted); None when `path` cannot be looked at."""
    try:
        found = os.statvfs(path)
    except OSError:
        return None
    return found.f_bavail * found.f_frsize


def worded(size: int | None) -> str:
    """A size as an operator reads it: "3.1 MB", "74.2 GB" (binary units)."""
    if size is None:
        return "unknown"
    if size >= 10 * GIB:
        return f"{size / GIB:.1f} GB"
    return f"{size / MIB:.1f} MB"


def full(path: Path) -> DiskFull:
    """The error for a write under `path` refused for want of space, with what is left."""
    return DiskFull(str(path), worded(free_bytes(path)))


def is_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in FULL_ERRNOS


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Files written under `path` in the block: one refused for want of space raises
    DiskFull naming the disk; any other OSError goes on as it is."""
    try:
        yield
    except OSError as exc:
        if is_full(exc):
            raise full(path) from exc
        raise


def ensure_room(path: Path, needed: int) -> None:
    """Raise DiskFull when the disk holding `path` has less than `needed` bytes left; a path
    that cannot be looked at is let through (the write then says what is wrong)."""
    free = free_bytes(path)
    if free is not None and free < needed:
        raise DiskFull(str(path), worded(free))


@dataclass(frozen=True)
class Disk:
    """One file system, by what temps keeps on it, and what it has left."""

    holds: tuple[str, ...]  # what is kept there, as a message names it
    free: int

    def __str__(self) -> str:
        return f"the disk holding {' and '.join(self.holds)} has {worded(self.free)} free"


def disks(paths: Mapping[str, Path]) -> list[Disk]:
    """The file systems holding `paths` (by what each holds: "/srv/temps", "Docker's data
    (/var/lib/docker)"), each once however many of them it holds. A path that cannot be
    looked at from here (a remote engine's) is left out."""
    found: dict[int, tuple[list[str], int]] = {}
    for holds, path in paths.items():
        try:
            device = os.stat(path).st_dev
        except OSError:
            continue
        free = free_bytes(path)
        if free is None:
            continue
        found.setdefault(device, ([], free))[0].append(holds)
    return [Disk(tuple(holds), free) for holds, free in found.values()]
