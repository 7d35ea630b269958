"""The records on a disk that fills up: a write SQLite has no room for is refused as DiskFull
naming the disk, rolled back whole, and the file stays sound; once there is room the next
write goes in. The disk is a real tmpfs, filled with a real file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import DiskFull
from pipeline.settings import Settings
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import Store
from tests.support.disk import fill, small_disk
from tests.support.store import open_store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

MAX_WRITES = 2000  # enough to use up what SQLite had set aside in its files


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", 8) as mounted:
        yield mounted / "home"


def numbers(settings: Settings) -> list[int]:
    with sqlite3.connect(settings.db_path) as records:
        return [n for (n,) in records.execute("SELECT number FROM releases ORDER BY number")]


def integrity(settings: Settings) -> str:
    with sqlite3.connect(settings.db_path) as records:
        return str(records.execute("PRAGMA integrity_check").fetchone()[0])


def write_until_refused(store: Store) -> tuple[int, DiskFull]:
    """New releases until one is refused: (how many went in, the refusal)."""
    app = store.get_app("shop")
    for written in range(MAX_WRITES):
        try:
            store.create_release(app, source=ReleaseSource.PUSH, commit=f"{written:040x}")
        except DiskFull as refused:
            return written, refused
    raise AssertionError(f"{MAX_WRITES} releases written on a full disk")


def test_a_write_the_disk_has_no_room_for_is_refused_naming_it_and_rolled_back(
    home: Path,
) -> None:
    settings = Settings(home=home)
    settings.make_dirs()
    store = open_store(settings)
    try:
        store.create_release(store.create_app("shop"), source=ReleaseSource.PUSH, commit="a" * 40)
        filler = fill(home.parent)

        written, refused = write_until_refused(store)

        assert str(refused).startswith(f"the disk holding {home} is full (")
        assert str(refused).endswith("free); nothing was deployed, free space and push again")
        assert numbers(settings) == list(range(1, written + 2)), "a refused write was kept"
        assert integrity(settings) == "ok"
        # Reads go on, and once there is room the next write goes in.
        assert store.get_app("shop").name == "shop"
        filler.unlink()
        store.create_release(store.get_app("shop"), source=ReleaseSource.PUSH, commit="b" * 40)
        assert numbers(settings) == list(range(1, written + 3))
    finally:
        store.close()
    assert integrity(settings) == "ok"
