"""`temps restore-home`: a daemon's records rebuilt on a new host from a records backup,
offline, before the new daemon first starts.

The backup's database is checked as a verification checks it (sha256 against the manifest,
SQLite's integrity check, rows per table) and written into the new home as `temps.db`;
`secret.key` comes from the backup when it was made `--with-key`, or from a file the
operator carried apart. Without it the new daemon starts, lists every app and release, and
cannot open what was sealed (environments, webhook secrets) until the key is put back.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.backups import records
from pipeline.backups.directory import Directory
from pipeline.backups.manifest import NAME, Manifest
from pipeline.backups.verify import records_copy, stored_file
from pipeline.errors import BackupFailed, Conflict


@dataclass(frozen=True)
class RebuiltHome:
    home: Path
    tables: dict[str, int]
    key: str  # "from the backup", "from <file>", or "none"


def restore_home(backup: Path, home: Path, key_file: Path | None = None) -> RebuiltHome:
    """`backup`: the folder of one records backup (holding manifest.json)."""
    source = Directory(backup)
    try:
        manifest = Manifest.loads((backup / NAME).read_bytes())
    except OSError as exc:
        raise BackupFailed(f"no {NAME} in {backup}: {exc.strerror or exc}") from exc
    if manifest.kind != "records" or manifest.records is None:
        raise BackupFailed(f"{backup} is a backup of app {manifest.app!r}, not of the records")
    found: list[str] = []
    for archive in manifest.archives:
        found += stored_file(source, ".", archive)
    found = found or records_copy(source, ".", manifest.records)
    if found:
        raise BackupFailed("the records backup does not verify: " + "; ".join(found))
    database = home / records.FILE
    if database.exists():
        raise Conflict(f"{home} holds records already ({database}): choose a new home")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    _copy_private(backup / manifest.records.file, database)
    key = "none"
    if key_file is not None:
        _copy_private(key_file, home / records.KEY_FILE)
        key = f"from {key_file}"
    elif manifest.sealing_key is not None:
        _copy_private(backup / manifest.sealing_key.file, home / records.KEY_FILE)
        key = "from the backup"
    return RebuiltHome(home, manifest.records.tables, key)


def _copy_private(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as data:
        shutil.copyfileobj(data, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
