"""The daemon's records, copied while it runs with SQLite's online backup API.

`sqlite3.Connection.backup` copies the database page by page under a read transaction, so
the copy is one consistent moment of it (WAL included) while deploys keep writing. A copy
counts only once it opens, passes `PRAGMA integrity_check` and holds as many rows in each
table as the manifest says.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipeline.errors import BackupFailed

FILE = "temps.db"
KEY_FILE = "secret.key"
PAGES_PER_STEP = 4096  # a step holds the read transaction; writers in WAL never wait on it


def copy(database: Path, target: Path) -> None:
    """An online copy of `database` into `target`, which must not exist yet."""
    try:
        source = sqlite3.connect(database)
        try:
            copied = sqlite3.connect(target)
            try:
                source.backup(copied, pages=PAGES_PER_STEP)
            finally:
                copied.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupFailed(f"could not copy the records: {exc}") from exc


def check(path: Path) -> dict[str, int]:
    """The rows of each table of a copy that passes SQLite's integrity check."""
    try:
        database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = [row[0] for row in database.execute("PRAGMA integrity_check")]
            if found != ["ok"]:
                raise BackupFailed(f"the records' copy fails its integrity check: {found[:3]}")
            tables = [
                row[0]
                for row in database.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            return {
                table: int(database.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
                for table in tables
            }
        finally:
            database.close()
    except sqlite3.Error as exc:
        raise BackupFailed(f"the records' copy does not open as a database: {exc}") from exc


def compare_tables(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    return [
        f"table {table}: {expected.get(table)} rows in the manifest, {found.get(table)} found"
        for table in sorted(expected.keys() | found.keys())
        if expected.get(table) != found.get(table)
    ]


@contextlib.contextmanager
def scratch_copy(stored: IO[bytes]) -> Iterator[Path]:
    """A stored copy written to a scratch file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="temps-records-") as folder:
        path = Path(folder) / FILE
        with path.open("wb") as out:
            shutil.copyfileobj(stored, out, 1024 * 1024)
        yield path
