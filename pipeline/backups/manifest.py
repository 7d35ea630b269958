"""A backup's manifest: what it holds, each archive's size and sha256, and a checksum of every
file inside each volume, which a verification and a restore compare against.

Stored as JSON beside the archives (`manifest.json`). A file's entry is its sha256; a
directory's `dir`; a symbolic link's `link:<target>`; anything else `other:<type>`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import BackupFailed

NAME = "manifest.json"
Files = dict[str, str]  # a path inside the volume -> its checksum entry
READ = 1024 * 1024


class Archive(BaseModel):
    """One stored file of a backup."""

    model_config = ConfigDict(frozen=True)

    file: str  # its name at the destination, beside the manifest
    size: int
    sha256: str


class VolumeArchive(Archive):
    name: str  # the app's name for the volume (`temps storage mount myapp NAME:/path`)
    volume: str  # the Docker volume it was read from
    path: str  # where the app mounts it
    files: Files  # what a restore of it must give back, file by file


class RecordsArchive(Archive):
    tables: dict[str, int]  # rows of each table in the copy


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["volumes", "records"]
    backup: int  # the id of its record in the daemon that made it
    app: str | None  # None for the records
    created_at: float
    temps_version: str
    volumes: tuple[VolumeArchive, ...] = ()
    records: RecordsArchive | None = None
    sealing_key: Archive | None = None  # the home's secret.key, only when asked for
    dump_command: str | None = None  # `[backup] command`, run before the volumes were read

    @property
    def archives(self) -> tuple[Archive, ...]:
        extra = (self.records, self.sealing_key)
        return (*self.volumes, *(archive for archive in extra if archive is not None))

    @property
    def size(self) -> int:
        return sum(archive.size for archive in self.archives)

    def dumps(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def loads(cls, data: bytes) -> Manifest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise BackupFailed(f"the manifest is not one temps wrote: {exc}") from exc


def temps_version() -> str:
    try:
        return metadata.version("temps")
    except metadata.PackageNotFoundError:
        return "unknown"


def sha256_of(path_or_stream: IO[bytes]) -> tuple[str, int]:
    """The sha256 and size of everything a stream reads."""
    digest, size = hashlib.sha256(), 0
    while chunk := path_or_stream.read(READ):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (a tar stream from the engine)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def stream_of(chunks: Iterable[bytes]) -> io.BufferedReader:
    return io.BufferedReader(ChunkReader(chunks), READ)


def file_sums(tar: IO[bytes], top: str) -> Files:
    """The checksum entry of every file of a tar stream whose entries sit under `top/`, by
    their path below it. Read once, front to back."""
    sums: Files = {}
    prefix = f"{top}/"
    try:
        with tarfile.open(fileobj=tar, mode="r|") as archive:
            for member in archive:
                if member.name == top or not member.name.startswith(prefix):
                    continue
                path = member.name[len(prefix) :].rstrip("/")
                sums[path] = _entry(archive, member)
    except tarfile.TarError as exc:
        raise BackupFailed(f"not a readable tar archive: {exc}") from exc
    return sums


def _entry(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return f"link:{member.linkname}"
    if member.islnk():  # a hard link: the same content as the file it names
        return f"hardlink:{member.linkname}"
    if not member.isfile():
        return f"other:{member.type.decode(errors='replace')}"
    content = archive.extractfile(member)
    assert content is not None
    return sha256_of(content)[0]


def differences(expected: Files, found: Files, limit: int = 5) -> list[str]:
    """What differs between two file listings, the first `limit` paths of it worded."""
    lines = []
    for path in sorted(expected.keys() | found.keys()):
        want, got = expected.get(path), found.get(path)
        if want == got:
            continue
        if got is None:
            lines.append(f"{path}: missing")
        elif want is None:
            lines.append(f"{path}: not in the manifest")
        else:
            lines.append(f"{path}: checksum differs")
    if len(lines) > limit:
        lines = [*lines[:limit], f"and {len(lines) - limit} more"]
    return lines
