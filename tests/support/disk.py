"""A small file system a test makes, to put a home on and fill up: tmpfs, so nothing is
written to the machine's own disk, unmounted however the test ends. Needs root (tests run as
root: tests/run.sh)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MIB = 1024 * 1024


@contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` MB mounted at `path` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        # Lazily: a daemon's Traefik or a stray handle must not keep the mount behind.
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(path: Path) -> int:
    """What `df` shows as available on the file system holding `path`."""
    found = os.statvfs(path)
    return found.f_bavail * found.f_frsize


def fill(disk: Path, leave: int = 0, name: str = "filler") -> Path:
    """Take the free space of the file system at `disk` but `leave` bytes; returns the file
    that holds it (remove it to give the space back)."""
    filler = disk / name
    with filler.open("ab") as out:
        try:
            while (room := free_bytes(disk) - leave) > 0:
                out.write(b"\0" * min(room, MIB))
                out.flush()
        except OSError:
            pass  # full
    return filler
