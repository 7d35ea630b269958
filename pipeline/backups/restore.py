"""A restore as a story: the backup checked again → the app in maintenance (or its
containers stopped) → each volume emptied, unpacked from its archive and compared with the
manifest → maintenance off (or the containers started) whatever happened.

Only a good backup is restored, and only after its stored archives still match their
manifest: a restore never writes what a verification would refuse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from pipeline.app import storage
from pipeline.backups import volumes as backup_volumes
from pipeline.backups.backup import live_of, owner_of, read_manifest, refuse_unmade
from pipeline.backups.destinations import folder
from pipeline.backups.kit import BackupKit
from pipeline.backups.manifest import differences
from pipeline.backups.verify import stored_file
from pipeline.errors import BackupFailed, Conflict, NotFound
from pipeline.hosting import sites
from pipeline.sqlite.models import App, BackupState
from pipeline.supervision import stopping

log = structlog.get_logger()
EMPTY_TIMEOUT = 600.0


@dataclass(frozen=True)
class Restored:
    backup: int
    volumes: tuple[str, ...]
    files: int
    seconds: float
    how: str  # "maintenance" or "stopped"


def restore(kit: BackupKit, app: App, backup_id: int, stop: bool) -> Restored:
    ctx = kit.ctx
    backup = ctx.store.backups.get(app, backup_id)
    if backup.state != BackupState.GOOD:
        raise Conflict(
            f"backup {backup_id} of {app.name!r} is {backup.state}, not good: only a verified "
            "backup is restored"
        )
    live = live_of(kit, app)
    assert live.image is not None
    with kit.alone(app.name):
        manifest = read_manifest(kit, backup)
        where = folder(app.name, backup.pk)
        changed = [
            line
            for volume in manifest.volumes
            for line in stored_file(kit.destination, where, volume)
        ]
        if changed:
            raise BackupFailed("the stored backup changed since it was made: " + "; ".join(changed))
        mounted = {record.name for record in ctx.store.mounts.of(owner_of(kit, app))}
        missing = [v.name for v in manifest.volumes if v.name not in mounted]
        if missing:
            raise NotFound(f"app {app.name!r} mounts no volume named {', '.join(missing)} now")
        owner = owner_of(kit, app).name
        refuse_unmade(
            kit, app, [storage.volume_name(ctx.settings, owner, v.name) for v in manifest.volumes]
        )
        started = time.monotonic()
        log.info("backup.restore_started", app=app.name, backup=backup.pk, stopped=stop)
        was_in_maintenance = app.in_maintenance
        if stop:
            stopping.stop(ctx, app.name, [])
        else:
            sites.set_maintenance(ctx.settings, ctx.store, app, True)
        files = 0
        try:
            for volume in manifest.volumes:
                name = storage.volume_name(ctx.settings, owner, volume.name)
                kit.archives.empty(name, live.image, EMPTY_TIMEOUT)
                with kit.destination.reading(f"{where}/{volume.file}") as stored:
                    backup_volumes.restore(kit.archives, stored, name, live.image)
                found = differences(
                    volume.files, backup_volumes.listing(kit.archives, name, live.image)
                )
                if found:
                    raise BackupFailed(
                        f"volume {volume.name} after the restore: {'; '.join(found)}"
                    )
                files += len(volume.files)
        finally:
            if stop:
                stopping.start(ctx, app.name, [])
            elif not was_in_maintenance:
                sites.set_maintenance(ctx.settings, ctx.store, ctx.store.get_app(app.name), False)
        seconds = round(time.monotonic() - started, 3)
        log.info("backup.restored", app=app.name, backup=backup.pk, files=files, seconds=seconds)
        return Restored(
            backup.pk,
            tuple(v.name for v in manifest.volumes),
            files,
            seconds,
            "stopped" if stop else "maintenance",
        )
