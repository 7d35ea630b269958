"""The S3 destination against an S3-compatible server on loopback (moto in server mode):
archives go in and come back byte for byte, a changed byte fails the stored file's check,
a backup's folder is removed whole, and keys that do not open are refused."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipeline.backups.directory import Directory
from pipeline.backups.manifest import Archive, sha256_of
from pipeline.backups.s3 import Bucket
from pipeline.backups.verify import stored_file
from pipeline.errors import BackupFailed, InvalidInput, NotFound
from tests.support.ports import free_port

KEYS = ("testing-access", "testing-secret")


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_url: str, request: pytest.FixtureRequest) -> Bucket:
    name = f"backups-{request.node.name[:30].replace('_', '-').lower()}"
    client = boto3.client(
        "s3", endpoint_url=s3_url, aws_access_key_id=KEYS[0],
        aws_secret_access_key=KEYS[1], region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket=name)
    return Bucket(s3_url, name, lambda: KEYS)


def test_an_archive_goes_in_and_comes_back_byte_for_byte(bucket: Bucket) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB
    with bucket.writing("myapp/1/data.tar") as out:
        for start in range(0, len(data), 1 << 20):
            out.write(data[start : start + (1 << 20)])
    with bucket.reading("myapp/1/data.tar") as stored:
        sha, size = sha256_of(stored)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    archive = Archive(file="data.tar", size=size, sha256=sha)
    assert stored_file(bucket, "myapp/1", archive) == []

    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    with bucket.writing("myapp/1/data.tar") as out:
        out.write(bytes(changed))
    (found,) = stored_file(bucket, "myapp/1", archive)
    assert "sha256 differs" in found


def test_a_backup_folder_is_removed_whole_and_others_stay(bucket: Bucket) -> None:
    for key in ("myapp/1/a", "myapp/1/b", "myapp/12/a"):
        with bucket.writing(key) as out:
            out.write(b"x")
    bucket.remove("myapp/1")
    with pytest.raises(NotFound), bucket.reading("myapp/1/a"):
        pass
    with bucket.reading("myapp/12/a") as stored:
        assert stored.read() == b"x"


def test_wrong_keys_and_a_missing_bucket_fail_with_a_reason(s3_url: str) -> None:
    missing = Bucket(s3_url, "no-such-bucket", lambda: KEYS)
    with pytest.raises(BackupFailed, match="no-such-bucket"), missing.writing("k") as out:
        out.write(b"x")
    with (
        pytest.raises(BackupFailed, match="s3-login"),
        Bucket(s3_url, "b", lambda: None).writing("k"),
    ):
        pass
    with pytest.raises(InvalidInput):
        Bucket("ftp://host", "b", lambda: KEYS)


def test_the_directory_destination_keeps_the_same_contract(tmp_path: Path) -> None:
    directory = Directory(tmp_path)
    with directory.writing("myapp/1/a") as out:
        out.write(b"abc")
    with directory.reading("myapp/1/a") as stored:
        assert stored.read() == b"abc"
    directory.remove("myapp/1")
    with pytest.raises(NotFound), directory.reading("myapp/1/a"):
        pass
    with pytest.raises(BackupFailed), directory.writing("../outside"):
        pass
