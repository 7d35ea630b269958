"""pipeline.disk: what a disk has left, worded, and a write refused for want of space as the
one error that names the disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pipeline import disk
from pipeline.errors import DiskFull


@pytest.mark.parametrize(
    ("size", "words"),
    [(0, "0.0 MB"), (3_250_000, "3.1 MB"), (512 * disk.MIB, "512.0 MB"),
     (9 * disk.GIB, "9216.0 MB"), (80 * disk.GIB, "80.0 GB"), (None, "unknown")],
)  # fmt: skip
def test_a_size_is_worded_in_megabytes_until_it_is_large(size: int | None, words: str) -> None:
    assert disk.worded(size) == words


def test_a_refused_write_names_the_disk_what_it_has_left_and_what_to_do(tmp_path: Path) -> None:
    error = disk.full(tmp_path)
    assert str(error).startswith(f"the disk holding {tmp_path} is full (")
    assert str(error).endswith(" free); nothing was deployed, free space and push again")
    assert error.path == str(tmp_path)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_write_refused_for_want_of_space_becomes_disk_full(tmp_path: Path, code: int) -> None:
    with pytest.raises(DiskFull, match="the disk holding") as caught, disk.writing(tmp_path):
        raise OSError(code, os.strerror(code))
    assert isinstance(caught.value.__cause__, OSError)


def test_any_other_write_error_goes_on_as_it_is(tmp_path: Path) -> None:
    with pytest.raises(PermissionError), disk.writing(tmp_path):
        raise PermissionError(errno.EACCES, "no")


def test_room_is_checked_against_what_the_disk_has_left(tmp_path: Path) -> None:
    disk.ensure_room(tmp_path, 1)
    free = disk.free_bytes(tmp_path)
    assert free is not None
    with pytest.raises(DiskFull, match=f"the disk holding {tmp_path} is full"):
        disk.ensure_room(tmp_path, free + 1024 * disk.GIB)
    disk.ensure_room(tmp_path / "not-there", 1 << 62)  # cannot be looked at: let through


def test_each_disk_is_named_once_with_all_it_holds(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    found = disk.disks(
        {"/srv/temps": tmp_path, "Docker's data": tmp_path / "docker", "gone": tmp_path / "no"}
    )
    assert len(found) == 1
    assert found[0].holds == ("/srv/temps", "Docker's data")
    assert str(found[0]).startswith("the disk holding /srv/temps and Docker's data has ")
    assert str(found[0]).endswith(" free")
