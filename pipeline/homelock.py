"""One daemon per home: an exclusive lock on a file in it, held for the daemon's life.

Two daemons on one home would run two deploy lanes for the same app, each sure it owns the
containers and the routes. The kernel drops the lock when the process ends, however it ends,
so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import TempsError


@dataclass
class HomeLock:
    path: Path
    fd: int

    @classmethod
    def take(cls, path: Path) -> HomeLock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TempsError(
                f"another temps daemon (pid {holder}) runs on the home {path.parent}; "
                "stop it first, or give this one its own --home"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = -1
