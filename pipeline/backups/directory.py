"""A directory as a backup destination: each backup's files under `<dir>/<key>`.

A file is written beside its final name and renamed into place once synced: a backup cut
short leaves a `.partial` file, never a truncated archive under the name a manifest gives.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipeline.errors import BackupFailed, NotFound


class Directory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BackupFailed(f"{key!r} is not a name inside {self.root}")
        return path

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[IO[bytes]]:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with partial.open("wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            partial.chmod(0o600)
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackupFailed(f"could not write {path}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[IO[bytes]]:
        path = self._path(key)
        try:
            stream = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"{path} is not there any more") from exc
        except OSError as exc:
            raise BackupFailed(f"could not read {path}: {exc.strerror or exc}") from exc
        with stream:
            yield stream

    def remove(self, prefix: str) -> None:
        """Every file under `prefix` (one backup's folder)."""
        shutil.rmtree(self._path(prefix), ignore_errors=True)
