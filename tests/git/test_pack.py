"""The pack walk that bounds a push before dulwich unpacks it: real packs made by git, and
hand-made ones that lie about their sizes."""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pipeline.errors import InvalidInput, TooLarge
from pipeline.git.pack import PackLimits, check_pack
from tests.support.apprepo import git, git_env

ROOMY = PackLimits(max_object_bytes=10**9, max_unpacked_bytes=10**10)
BLOB = 3


def real_pack(tmp_path: Path) -> tuple[bytes, list[int]]:
    """A pack of a repo whose file changes a little per commit (so git stores deltas), and
    the size of every object in it as git reports them."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "T")
    git(repo, "config", "user.email", "t@example.invalid")
    text = "".join(f"line {n} of a file that changes a little\n" for n in range(2000))
    for commit in range(6):
        (repo / "app.txt").write_text(text + f"change {commit}\n")
        (repo / f"other{commit}.txt").write_text(f"{commit}\n" * 100)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", str(commit))
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs", "--delta-base-offset"],
        cwd=repo,
        input=b"main\n",
        capture_output=True,
        env=git_env(),
        check=True,
    ).stdout
    sizes = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectsize)")
    return pack, [int(size) for size in sizes.split()]


def hand_pack(*objects: tuple[int, int, bytes]) -> bytes:
    """A pack of (type, declared size, data to compress) objects, with git's trailer."""
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(objects)))
    for kind, declared, data in objects:
        byte, size = (kind << 4) | (declared & 15), declared >> 4
        while size:
            out.append(byte | 0x80)
            byte, size = size & 0x7F, size >> 7
        out.append(byte)
        if kind == 7:
            out += b"\x11" * 20
        out += zlib.compress(data)
    return bytes(out + hashlib.sha1(out).digest())


def size_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def walk(pack: bytes, limits: PackLimits = ROOMY) -> tuple[int, int]:
    body = io.BytesIO(b"prefix" + pack)
    found = check_pack(body, len(b"prefix"), limits)
    assert body.tell() == 0, "the body was not rewound for dulwich"
    return found.objects, found.unpacked_bytes


def test_a_real_pack_with_deltas_unpacks_to_what_git_says(tmp_path: Path) -> None:
    pack, sizes = real_pack(tmp_path)
    objects, unpacked = walk(pack)
    assert objects == len(sizes)
    assert unpacked == sum(sizes)


def test_the_limits_refuse_a_real_pack_that_unpacks_past_them(tmp_path: Path) -> None:
    pack, sizes = real_pack(tmp_path)
    with pytest.raises(TooLarge, match="max-object-bytes"):
        walk(pack, PackLimits(max_object_bytes=max(sizes) - 1, max_unpacked_bytes=10**9))
    with pytest.raises(TooLarge, match="max-unpacked-bytes"):
        walk(pack, PackLimits(max_object_bytes=10**9, max_unpacked_bytes=sum(sizes) - 1))


def test_a_small_pack_of_a_huge_blob_is_refused_before_it_is_inflated() -> None:
    huge = 400 * 1024 * 1024
    # Only the header says 400 MB: refused on it, with nothing inflated.
    pack = hand_pack((BLOB, huge, b"\0" * 1024))
    assert len(pack) < 2048
    with pytest.raises(TooLarge, match=f"object of {huge} bytes"):
        walk(pack, PackLimits(max_object_bytes=100 * 1024 * 1024, max_unpacked_bytes=10**10))


def test_a_delta_that_makes_a_huge_object_is_refused() -> None:
    delta = size_varint(10) + size_varint(400 * 1024 * 1024) + b"\x90\x0a"
    pack = hand_pack((BLOB, 10, b"0123456789"), (7, len(delta), delta))
    with pytest.raises(TooLarge, match="max-object-bytes"):
        walk(pack, PackLimits(max_object_bytes=100 * 1024 * 1024, max_unpacked_bytes=10**10))


def test_an_object_larger_than_its_header_says_is_malformed() -> None:
    pack = hand_pack((BLOB, 10, b"x" * 100_000))
    with pytest.raises(InvalidInput, match="larger than it says"):
        walk(pack)


@pytest.mark.parametrize(
    "pack",
    [b"NOPE" + b"\0" * 8, b"PACK" + struct.pack(">II", 9, 1), b"PACK" + struct.pack(">II", 2, 3)],
    ids=["not-a-pack", "unknown-version", "ends-early"],
)
def test_garbage_is_malformed(pack: bytes) -> None:
    with pytest.raises(InvalidInput):
        walk(pack)


def test_no_pack_at_all_is_a_ref_deletion() -> None:
    assert walk(b"") == (0, 0)
