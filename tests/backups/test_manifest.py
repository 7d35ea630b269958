"""The manifest's file listing read from tar streams, its differences, its JSON."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from pipeline.backups.manifest import (
    Manifest,
    VolumeArchive,
    differences,
    file_sums,
    stream_of,
)
from pipeline.errors import BackupFailed


def tar_of(files: dict[str, bytes], top: str = "volume") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        root = tarfile.TarInfo(top)
        root.type = tarfile.DIRTYPE
        archive.addfile(root)
        for name, content in files.items():
            if name.endswith("/"):
                entry = tarfile.TarInfo(f"{top}/{name.rstrip('/')}")
                entry.type = tarfile.DIRTYPE
                archive.addfile(entry)
                continue
            entry = tarfile.TarInfo(f"{top}/{name}")
            entry.size = len(content)
            archive.addfile(entry, io.BytesIO(content))
        link = tarfile.TarInfo(f"{top}/latest")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.txt"
        archive.addfile(link)
    return out.getvalue()


def test_each_file_has_its_sha256_each_directory_and_link_their_kind() -> None:
    data = tar_of({"a.txt": b"hello", "sub/": b"", "sub/b.bin": b"\x00" * 70_000})
    sums = file_sums(io.BytesIO(data), "volume")
    assert sums == {
        "a.txt": hashlib.sha256(b"hello").hexdigest(),
        "sub": "dir",
        "sub/b.bin": hashlib.sha256(b"\x00" * 70_000).hexdigest(),
        "latest": "link:a.txt",
    }


def test_a_stream_in_small_chunks_gives_the_same_listing() -> None:
    data = tar_of({"a.txt": b"hello" * 1000, "b": b"x"})
    chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
    assert file_sums(stream_of(chunks), "volume") == file_sums(io.BytesIO(data), "volume")


def test_what_is_not_a_tar_is_refused() -> None:
    with pytest.raises(BackupFailed, match="not a readable tar"):
        file_sums(io.BytesIO(b"not a tar at all" * 64), "volume")


def test_differences_name_missing_extra_and_changed_files_and_stop_at_a_limit() -> None:
    expected = {"a": "1", "b": "2", "c": "3"}
    found = {"a": "1", "b": "9", "d": "4"}
    assert differences(expected, found) == [
        "b: checksum differs",
        "c: missing",
        "d: not in the manifest",
    ]
    many = {str(n): "x" for n in range(12)}
    assert differences(many, {}, limit=3)[-1] == "and 9 more"
    assert differences(expected, dict(expected)) == []


def test_a_manifest_reads_back_as_it_was_written() -> None:
    volume = VolumeArchive(
        file="data.tar", size=10, sha256="ab", name="data", volume="v", path="/data",
        files={"x": "dir"},
    )  # fmt: skip
    manifest = Manifest(
        kind="volumes", backup=3, app="myapp", created_at=1.5, temps_version="0.1.0",
        volumes=(volume,),
    )  # fmt: skip
    again = Manifest.loads(manifest.dumps())
    assert again == manifest and again.size == 10 and again.archives == (volume,)
    with pytest.raises(BackupFailed):
        Manifest.loads(b'{"kind": "other"}')


def test_sums_fed_chunk_by_chunk_on_a_thread_match_a_whole_read() -> None:
    from pipeline.backups.volumes import Sums

    data = tar_of({"a.txt": b"hello" * 50_000, "sub/": b"", "sub/b": b"x" * 3})
    with Sums() as sums:
        for start in range(0, len(data), 4096):
            sums.feed(data[start : start + 4096])
    assert sums.result() == file_sums(io.BytesIO(data), "volume")


def test_sums_of_what_is_not_a_tar_fail_without_blocking_the_feeder() -> None:
    from pipeline.backups.volumes import Sums

    with Sums() as sums:
        for _ in range(100):  # more chunks than the queue holds
            sums.feed(b"not a tar" * 1000)
    with pytest.raises(BackupFailed):
        sums.result()
