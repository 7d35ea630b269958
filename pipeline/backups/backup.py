"""A backup as a story: recorded as running → the app's dump command → each volume read into
an archive → the manifest → restored into scratch and compared → good, or failed loudly
(an error in the log and the app's notification). Good ones past retention are removed.

Consistency: the dump command (`[backup] command` in temps.toml) is the consistency point.
The app keeps serving while its volumes are read, so files it changes meanwhile may be
caught half-written; what must be consistent (a database) is dumped by the command into a
volume first, and the dump is what the backup holds whole.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

import structlog

from pipeline.app import storage
from pipeline.backups import records, retention, verify
from pipeline.backups.destinations import folder
from pipeline.backups.kit import BackupKit
from pipeline.backups.manifest import (
    NAME,
    Archive,
    Manifest,
    RecordsArchive,
    sha256_of,
    temps_version,
)
from pipeline.backups.volumes import archive
from pipeline.errors import BackupFailed, Conflict, DeployError, TempsError
from pipeline.runtime import ContainerSpec, Limits
from pipeline.sqlite.models import App, Backup, BackupState, Release
from pipeline.steps import notify

log = structlog.get_logger()


def create(kit: BackupKit, app: App) -> Backup:
    """Back up the app's volumes; the record says good only once it verified."""
    live = live_of(kit, app)
    mounts = storage.mounts_of(kit.ctx.settings, kit.ctx.store, app)
    if not mounts:
        raise Conflict(f"app {app.name!r} has no volumes to back up (`temps storage mount`)")
    refuse_unmade(kit, app, [mount.volume for mount in mounts])
    with kit.alone(app.name):
        backup = kit.ctx.store.backups.start(app, str(kit.destination))
        where = folder(app.name, backup.pk)
        log.info("backup.started", app=app.name, backup=backup.pk, destination=where)
        started = time.monotonic()
        try:
            command = live.config.backup.command
            if command:
                run_dump(kit, app, live, command, live.config.backup.timeout)
            names = [record.name for record in kit.ctx.store.mounts.of(owner_of(kit, app))]
            assert live.image is not None
            archived = tuple(
                archive(
                    kit.archives, kit.destination, f"{where}/{name}.tar", name, mount, live.image
                )
                for name, mount in zip(names, mounts, strict=True)
            )
            manifest = Manifest(
                kind="volumes",
                backup=backup.pk,
                app=app.name,
                created_at=time.time(),
                temps_version=temps_version(),
                volumes=archived,
                dump_command=command or None,
            )
            write_manifest(kit, backup, where, manifest)
            found = verify.verify(manifest, kit.destination, where, kit.archives, live.image)
        except TempsError as error:
            return failed(kit, app, backup, str(error), started)
        return judged(kit, app, backup, found, started)


def scheduled(kit: BackupKit, app: App) -> str | None:
    """A backup the app's `[backup] schedule` asked for: None once it verified, else why
    it is not good (a failed one was reported loudly by `create`)."""
    try:
        made = create(kit, app)
    except TempsError as error:
        log.error("backup.not_made", app=app.name, reason=str(error))
        return str(error)
    return None if made.state == BackupState.GOOD else (made.reason or "the backup failed")


def create_records(kit: BackupKit, with_key: bool) -> Backup:
    """Back up the daemon's records (and its sealing key, only when asked)."""
    settings = kit.ctx.settings
    with kit.alone(None):
        backup = kit.ctx.store.backups.start(None, str(kit.destination))
        where = folder(None, backup.pk)
        log.info("backup.started", app=None, backup=backup.pk, destination=where)
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="temps-records-") as scratch:
                copy = Path(scratch) / records.FILE
                records.copy(settings.db_path, copy)
                tables = records.check(copy)
                stored = store_file(kit, copy, f"{where}/{records.FILE}")
            key = None
            if with_key:
                key = store_file(kit, settings.secret_key_path, f"{where}/{records.KEY_FILE}")
            manifest = Manifest(
                kind="records",
                backup=backup.pk,
                app=None,
                created_at=time.time(),
                temps_version=temps_version(),
                records=RecordsArchive(**stored.model_dump(), tables=tables),
                sealing_key=key,
            )
            write_manifest(kit, backup, where, manifest)
            found = verify.verify(manifest, kit.destination, where, None, None)
        except TempsError as error:
            return failed(kit, None, backup, str(error), started)
        return judged(kit, None, backup, found, started)


def verify_again(kit: BackupKit, app: App | None, backup_id: int) -> Backup:
    """Check a stored backup again, as its creation did: one that no longer restores to its
    manifest is failed from then on."""
    backup = kit.ctx.store.backups.get(app, backup_id)
    if backup.state == BackupState.RUNNING or backup.manifest is None:
        raise Conflict(f"backup {backup_id} has no manifest to verify against yet")
    name = app.name if app is not None else None
    with kit.alone(name):
        where = folder(name, backup.pk)
        try:
            manifest = read_manifest(kit, backup)
            image = live_of(kit, app).image if app is not None else None
            found = verify.verify(manifest, kit.destination, where, kit.archives, image)
        except TempsError as error:
            found = [str(error)]
        result = kit.ctx.store.backups.verified(backup.pk, verify.worded(found))
        if found:
            log.error("backup.verify_failed", app=name, backup=backup.pk, found=found)
            result = kit.ctx.store.backups.ended(backup.pk, BackupState.FAILED, "; ".join(found))
            if app is not None:
                notify.send_backup_failed(kit.ctx.sealer, app, backup.pk, "; ".join(found))
        else:
            log.info("backup.verified", app=name, backup=backup.pk)
        return result


def judged(
    kit: BackupKit, app: App | None, backup: Backup, found: list[str], started: float
) -> Backup:
    store = kit.ctx.store.backups
    store.verified(backup.pk, verify.worded(found))
    if found:
        return failed(kit, app, backup, "verification: " + "; ".join(found), started)
    done = store.ended(backup.pk, BackupState.GOOD)
    log.info(
        "backup.finished",
        app=app.name if app else None,
        backup=backup.pk,
        state=str(done.state),
        size=done.size,
        seconds=round(time.monotonic() - started, 3),
    )
    try:
        retention.prune(kit, app)
    except TempsError as error:  # the new backup is good all the same; pruned next time
        log.warning("backup.prune_failed", app=app.name if app else None, error=str(error))
    return done


def failed(kit: BackupKit, app: App | None, backup: Backup, reason: str, started: float) -> Backup:
    """Loudly: an error in the log, and the app's notification."""
    done = kit.ctx.store.backups.ended(backup.pk, BackupState.FAILED, reason)
    log.error(
        "backup.failed",
        app=app.name if app else None,
        backup=backup.pk,
        reason=reason,
        seconds=round(time.monotonic() - started, 3),
    )
    if app is not None:
        notify.send_backup_failed(kit.ctx.sealer, app, backup.pk, reason)
    return done


def run_dump(kit: BackupKit, app: App, live: Release, command: str, timeout: float) -> None:
    """`[backup] command` in a one-off container of the live release, with its volumes."""
    ctx = kit.ctx
    assert live.image is not None
    spec = ContainerSpec(
        name=ctx.runtime.container_name(app.name, live.number, f"backup-{secrets.token_hex(3)}"),
        image=live.image,
        env={**ctx.sealer.open_env(live.env), "PORT": str(live.config.port)},
        labels={"temps.app": app.name, "temps.release": str(live.number)},
        limits=Limits(),
        mounts=storage.mounts_of(ctx.settings, ctx.store, app),
    )
    lines: list[str] = []
    try:
        code = ctx.runtime.run_once(spec, command, lines.append, timeout)
    except DeployError as error:
        raise BackupFailed(f"the backup command: {error.reason}") from error
    if code != 0:
        tail = " | ".join(line.strip() for line in lines[-3:])
        raise BackupFailed(f"the backup command exited {code}: {tail}")
    log.info("backup.dumped", app=app.name, command=command)


def store_file(kit: BackupKit, path: Path, key: str) -> Archive:
    with path.open("rb") as source, kit.destination.writing(key) as out:
        while chunk := source.read(1024 * 1024):
            out.write(chunk)
    with path.open("rb") as source:
        sha256, size = sha256_of(source)
    return Archive(file=key.rsplit("/", 1)[-1], size=size, sha256=sha256)


def write_manifest(kit: BackupKit, backup: Backup, where: str, manifest: Manifest) -> None:
    with kit.destination.writing(f"{where}/{NAME}") as out:
        out.write(manifest.dumps())
    kit.ctx.store.backups.written(backup.pk, f"{where}/{NAME}", manifest.size)


def read_manifest(kit: BackupKit, backup: Backup) -> Manifest:
    assert backup.manifest is not None
    with kit.destination.reading(backup.manifest) as stored:
        return Manifest.loads(stored.read())


def live_of(kit: BackupKit, app: App) -> Release:
    """The live release, whose image the helpers and the dump command run from."""
    live = kit.ctx.store.live_release(app)
    if live is None or live.image is None:
        raise Conflict(f"app {app.name!r} has no live release: deploy it before backing it up")
    return live


def refuse_unmade(kit: BackupKit, app: App, volumes: list[str]) -> None:
    """A volume mounted since the last deploy is made by the next one: reading it now
    would make it, unlabelled and empty."""
    unmade = [volume for volume in volumes if not kit.archives.exists(volume)]
    if unmade:
        raise Conflict(
            f"app {app.name!r} has volumes not made yet ({', '.join(unmade)}): they are made "
            "by its next deploy"
        )


def owner_of(kit: BackupKit, app: App) -> App:
    """Whose volumes an app mounts: a preview sharing its app's, that app's."""
    if app.shares_volumes and app.preview_of is not None:
        return kit.ctx.store.get_app_by_id(app.preview_of)
    return app
