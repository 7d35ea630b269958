"""Where backups are stored: a directory of this host's (`--backup-dir`), or an S3-compatible
bucket (`--backup-s3-url`). Keys are `<app>/<backup id>/<file>`, `_records/<id>/<file>`
for the daemon's records."""

from __future__ import annotations

import contextlib
from typing import IO, Protocol

RECORDS = "_records"  # the key prefix of the records' backups: no app is named with '_'


class Destination(Protocol):
    def __str__(self) -> str:
        """Where it is, for the records and the user."""
        ...

    def writing(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A file to write; stored under `key` once its block ends without an error."""
        ...

    def reading(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def remove(self, prefix: str) -> None:
        """Every file whose key starts with `prefix/`."""
        ...


def folder(app: str | None, backup_id: int) -> str:
    return f"{app or RECORDS}/{backup_id}"
