"""One lock per repository, so that packs are merged only while nobody reads them.

Every read, push and fetch holds the repository's lock shared; merging its packs takes it
exclusive, and only when it is free at once: a merge waits for nobody, and nobody waits for
it longer than the merge itself. A pack deleted under a reader that listed it before the
merge would make that reader miss objects.

flock(2) on a file inside the bare repository (git ignores files it does not know): the lock
goes with the process, so a daemon killed mid-way leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import NotFound

LOCK_NAME = "temps.lock"
ALTERNATES = "alternates"


@contextmanager
def shared(path: Path) -> Iterator[None]:
    """Held while the repository is read or written; waits while a merge runs. A repository
    that reads objects from others (a preview's, through git's alternates) holds theirs too:
    their packs must not be merged under its reads either."""
    fds = [_open(path)]
    try:
        fds.extend(_open(lender) for lender in lenders(path))
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def lenders(path: Path) -> list[Path]:
    """The repositories whose objects `path` reads besides its own (`objects/info/alternates`)."""
    try:
        text = (path / "objects" / "info" / ALTERNATES).read_text()
    except FileNotFoundError:
        return []
    return [Path(line).parent for line in text.splitlines() if line and not line.startswith("#")]


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Held alone: waits for every read, push and merge of the repository to end."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def exclusive_if_free(path: Path) -> Iterator[bool]:
    """Yields whether the repository is held alone; never waits."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    if not (path / "objects").is_dir():
        raise NotFound(f"no repository at {path}")  # and no lock file left in a stray folder
    return os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
