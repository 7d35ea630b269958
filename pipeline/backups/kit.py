"""What the backup stories need, made once by the daemon: its context, the volumes' archiver,
the destination, and one lock per app (and one for the records) so that a backup and a
restore of the same thing never overlap."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.app.sealing import Sealer
from pipeline.backups.destinations import RECORDS, Destination
from pipeline.backups.directory import Directory
from pipeline.backups.s3 import Bucket, Keys
from pipeline.context import Context
from pipeline.docker.volumes import VolumeArchives
from pipeline.errors import Conflict, TempsError
from pipeline.settings import Settings


@dataclass
class BackupKit:
    ctx: Context
    archives: VolumeArchives
    destination: Destination
    _busy: set[str] = field(default_factory=set)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, ctx: Context, destination: Destination | None = None) -> BackupKit:
        settings = ctx.settings
        archives = VolumeArchives(settings.instance, settings.instance_id)
        return cls(ctx, archives, destination or destination_of(settings, ctx.sealer))

    @contextlib.contextmanager
    def alone(self, app: str | None) -> Iterator[None]:
        """Refuse (409) a second backup or restore of the same app while one runs."""
        key = app or RECORDS
        with self._guard:
            if key in self._busy:
                what = "the records" if app is None else f"app {app!r}"
                raise Conflict(f"a backup or restore of {what} is running already")
            self._busy.add(key)
        try:
            yield
        finally:
            with self._guard:
                self._busy.discard(key)


def destination_of(settings: Settings, sealer: Sealer) -> Destination:
    if settings.backup_s3_url:
        return Bucket(
            settings.backup_s3_url,
            settings.backup_s3_bucket,
            lambda: load_s3_keys(settings, sealer),
        )
    return Directory(settings.backups_dir)


def save_s3_keys(settings: Settings, sealer: Sealer, keys: Keys) -> None:
    """Sealed into the home (0600): a copy of the file alone reveals nothing."""
    path = settings.backup_s3_keys_path
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(sealer.seal(json.dumps(list(keys))))
    os.replace(partial, path)


def load_s3_keys(settings: Settings, sealer: Sealer) -> Keys | None:
    try:
        sealed = settings.backup_s3_keys_path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        access, secret = json.loads(sealer.unseal(sealed))
    except (TempsError, ValueError) as exc:
        raise TempsError(f"{settings.backup_s3_keys_path} does not open: {exc}") from exc
    return str(access), str(secret)
