"""A volume into an archive at a destination and back, with the checksum of every file.

The engine's tar stream of the volume is written to the destination as it comes, and read
at the same time by a second thread that checksums each file inside it: one pass over the
volume gives the archive, its sha256 and the manifest's file listing.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import IO

from pipeline.backups.destinations import Destination
from pipeline.backups.manifest import Files, VolumeArchive, file_sums, stream_of
from pipeline.docker.volumes import MOUNT, VolumeArchives
from pipeline.errors import BackupFailed
from pipeline.runtime import Mount

TOP = MOUNT.strip("/")  # the archive's entries sit under it
QUEUED_CHUNKS = 16
READ = 1024 * 1024


def archive(
    archives: VolumeArchives,
    destination: Destination,
    key: str,
    name: str,
    mount: Mount,
    image: str,
) -> VolumeArchive:
    """Read `mount`'s volume into `key` at the destination."""
    digest, size = hashlib.sha256(), 0
    with destination.writing(key) as out, archives.reading(mount.volume, image) as chunks:
        with Sums() as sums:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                sums.feed(chunk)
        files = sums.result()
    return VolumeArchive(
        file=key.rsplit("/", 1)[-1],
        size=size,
        sha256=digest.hexdigest(),
        name=name,
        volume=mount.volume,
        path=mount.path,
        files=files,
    )


def restore(archives: VolumeArchives, stored: IO[bytes], volume: str, image: str) -> None:
    """Unpack a stored archive into `volume` (emptied by the caller when it must be)."""
    archives.write(volume, image, chunks_of(stored))


def listing(archives: VolumeArchives, volume: str, image: str) -> Files:
    """The checksum entry of every file in the volume as it is now."""
    with archives.reading(volume, image) as chunks:
        return file_sums(stream_of(chunks), TOP)


def chunks_of(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(READ):
        yield chunk


class Sums:
    """`file_sums` of a stream fed chunk by chunk, on a thread of its own."""

    _END = b""

    def __init__(self) -> None:
        self._chunks: queue.Queue[bytes] = queue.Queue(QUEUED_CHUNKS)
        self._files: Files = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="backup-sums", daemon=True)

    def __enter__(self) -> Sums:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._chunks.put(self._END)
        self._thread.join()

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.put(chunk)

    def _stream(self) -> Iterable[bytes]:
        while chunk := self._chunks.get():
            yield chunk

    def _read(self) -> None:
        stream = self._stream()
        try:
            self._files = file_sums(stream_of(stream), TOP)
        except BaseException as exc:  # reported by result(); the feeder must not block
            self._error = exc
        for _rest in stream:  # what the tar reader left (padding), so feed() never blocks
            pass

    def result(self) -> Files:
        if self._error is not None:
            if isinstance(self._error, BackupFailed):
                raise self._error
            raise BackupFailed(f"could not list the volume's files: {self._error}")
        return self._files
