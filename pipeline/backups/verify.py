"""A backup counts only once restored: each stored archive is checked against its manifest
(size and sha256: a single byte changed fails it), then restored into a scratch volume (a
scratch file for the records) whose every file is checksummed and compared with the
manifest's listing. The scratch is removed whatever was found.
"""

from __future__ import annotations

from pipeline.backups import records
from pipeline.backups import volumes as backup_volumes
from pipeline.backups.destinations import Destination
from pipeline.backups.manifest import Archive, Manifest, RecordsArchive, differences, sha256_of
from pipeline.docker.volumes import VolumeArchives

OK = "ok"


def verify(
    manifest: Manifest,
    destination: Destination,
    folder: str,
    archives: VolumeArchives | None,
    image: str | None,
) -> list[str]:
    """What is wrong with the stored backup; nothing when it restores to its manifest."""
    found: list[str] = []
    for archive in manifest.archives:
        found += stored_file(destination, folder, archive)
    if found:
        return found  # restoring a changed archive would only say it again, less clearly
    if manifest.records is not None:
        found += records_copy(destination, folder, manifest.records)
    for volume in manifest.volumes:
        assert archives is not None and image is not None
        scratch = archives.make_scratch()
        try:
            with destination.reading(f"{folder}/{volume.file}") as stored:
                backup_volumes.restore(archives, stored, scratch, image)
            listing = backup_volumes.listing(archives, scratch, image)
        finally:
            archives.remove(scratch)
        found += [f"{volume.name}: {line}" for line in differences(volume.files, listing)]
    return found


def stored_file(destination: Destination, folder: str, archive: Archive) -> list[str]:
    with destination.reading(f"{folder}/{archive.file}") as stored:
        sha256, size = sha256_of(stored)
    if size != archive.size:
        return [f"{archive.file}: {size} bytes stored, {archive.size} in the manifest"]
    if sha256 != archive.sha256:
        return [f"{archive.file}: its sha256 differs from the manifest's (the file changed)"]
    return []


def records_copy(destination: Destination, folder: str, archive: RecordsArchive) -> list[str]:
    with (
        destination.reading(f"{folder}/{archive.file}") as stored,
        records.scratch_copy(stored) as copy,
    ):
        return records.compare_tables(archive.tables, records.check(copy))


def worded(found: list[str]) -> str:
    """The verification's result as the record keeps it."""
    return OK if not found else "; ".join(found)
