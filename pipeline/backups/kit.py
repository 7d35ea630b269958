"""What the backup stories need, made once by the daemon: its context, the volumes' archiver,
the destination, and one lock per app (and one for the records) so that a backup and a
restore of the same thing never overlap."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.backups.destinations import RECORDS, Destination
from pipeline.backups.directory import Directory
from pipeline.context import Context
from pipeline.docker.volumes import VolumeArchives
from pipeline.errors import Conflict


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
        return cls(ctx, archives, destination or Directory(settings.backups_dir))

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
