"""The records' online copy, its check, the records of backups, and a home rebuilt from a
records backup: real SQLite files migrated by Alembic."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.backups import records
from pipeline.backups.destinations import folder
from pipeline.backups.directory import Directory
from pipeline.backups.home import restore_home
from pipeline.backups.manifest import NAME, Archive, Manifest, RecordsArchive, sha256_of
from pipeline.backups.verify import records_copy, stored_file
from pipeline.errors import BackupFailed, Conflict
from pipeline.sqlite.models import BackupState
from pipeline.sqlite.store import Store
from tests.support.store import store_at


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    home.mkdir()
    with store_at(home / "temps.db") as store:
        yield store


def test_a_copy_made_while_the_store_is_open_holds_every_row(
    store: Store, home: Path, tmp_path: Path
) -> None:
    for name in ("one", "two", "three"):
        store.create_app(name)
    copy = tmp_path / "copy.db"
    records.copy(home / "temps.db", copy)
    tables = records.check(copy)
    assert tables["apps"] == 3 and "releases" in tables and "alembic_version" in tables
    assert records.compare_tables(tables, dict(tables)) == []
    assert records.compare_tables({**tables, "apps": 4}, tables) == [
        "table apps: 4 rows in the manifest, 3 found"
    ]


def test_a_damaged_copy_fails_its_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(BackupFailed):
        records.check(broken)


def test_backups_are_recorded_running_then_good_or_failed(store: Store) -> None:
    app = store.create_app("one")
    first = store.backups.start(app, "/backups")
    records_backup = store.backups.start(None, "/backups")
    assert first.state == BackupState.RUNNING
    store.backups.written(first.pk, "one/1/manifest.json", 1234)
    store.backups.verified(first.pk, "ok")
    done = store.backups.ended(first.pk, BackupState.GOOD)
    assert (done.state, done.size, done.verification) == (BackupState.GOOD, 1234, "ok")
    assert done.ended_at is not None and done.verified_at is not None
    assert [b.pk for b in store.backups.of(app)] == [first.pk]
    assert [b.pk for b in store.backups.of(None)] == [records_backup.pk]
    assert store.backups.interrupt_unfinished() == 1
    assert store.backups.get(None, records_backup.pk).state == BackupState.FAILED


def records_backup(store: Store, home: Path, where: Path, with_key: bool) -> Path:
    """A records backup as the daemon writes one, into `where`."""
    (home / "secret.key").write_bytes(b"k" * 32)
    destination = Directory(where)
    key = folder(None, 1)
    target = where / key
    target.mkdir(parents=True)
    copy = target / records.FILE
    records.copy(home / "temps.db", copy)
    with copy.open("rb") as stored:
        sha, size = sha256_of(stored)
    sealing = None
    if with_key:
        (target / records.KEY_FILE).write_bytes(b"k" * 32)
        with (target / records.KEY_FILE).open("rb") as stored:
            key_sha, key_size = sha256_of(stored)
        sealing = Archive(file=records.KEY_FILE, size=key_size, sha256=key_sha)
    manifest = Manifest(
        kind="records", backup=1, app=None, created_at=0.0, temps_version="test",
        records=RecordsArchive(
            file=records.FILE, size=size, sha256=sha, tables=records.check(copy)
        ),
        sealing_key=sealing,
    )  # fmt: skip
    (target / NAME).write_bytes(manifest.dumps())
    assert records_copy(destination, key, manifest.records) == []  # type: ignore[arg-type]
    return target


def test_a_new_home_gets_the_same_apps_and_the_key_only_when_the_backup_has_it(
    store: Store, home: Path, tmp_path: Path
) -> None:
    store.create_app("one")
    store.create_app("two")
    backup = records_backup(store, home, tmp_path / "backups", with_key=False)
    rebuilt = restore_home(backup, tmp_path / "new")
    assert rebuilt.key == "none" and not (tmp_path / "new" / "secret.key").exists()
    with sqlite3.connect(tmp_path / "new" / "temps.db") as db:
        names = sorted(row[0] for row in db.execute("SELECT name FROM apps"))
    assert names == ["one", "two"]
    assert (tmp_path / "new" / "temps.db").stat().st_mode & 0o777 == 0o600
    with pytest.raises(Conflict):
        restore_home(backup, tmp_path / "new")
    with_key = records_backup(store, home, tmp_path / "keyed", with_key=True)
    assert restore_home(with_key, tmp_path / "newer").key == "from the backup"
    assert (tmp_path / "newer" / "secret.key").read_bytes() == b"k" * 32


def test_a_changed_byte_fails_the_stored_file_and_the_home_is_not_rebuilt(
    store: Store, home: Path, tmp_path: Path
) -> None:
    store.create_app("one")
    backup = records_backup(store, home, tmp_path / "backups", with_key=False)
    manifest = Manifest.loads((backup / NAME).read_bytes())
    stored = backup / records.FILE
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    assert manifest.records is not None
    found = stored_file(Directory(backup), ".", manifest.records)
    assert found and "sha256 differs" in found[0]
    with pytest.raises(BackupFailed, match="does not verify"):
        restore_home(backup, tmp_path / "new")
    assert not (tmp_path / "new" / "temps.db").exists()
    assert json.loads((backup / NAME).read_text())["kind"] == "records"
