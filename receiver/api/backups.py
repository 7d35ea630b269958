"""The API of backups (admin only): an app's volumes, or the daemon's records, archived to
the backup destination and verified by a restore into scratch before they count; listed,
verified again, and restored into the app's volumes.

Each call answers when its work is done: a backup of a large volume takes as long as
reading, writing and restoring it once into scratch (the client waits; README, "Backups").
"""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.backups import backup as backups
from pipeline.backups import restore as restoring
from pipeline.backups.kit import save_s3_keys
from pipeline.sqlite.models import Backup, BackupState
from receiver.api.apps import Body, DaemonDep, Number, PrincipalDep, app_to_change
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class BackupView(View):
    id: int
    app: str | None  # None: the daemon's records
    state: BackupState
    destination: str
    started_at: float
    ended_at: float | None
    size: int | None
    manifest: str | None
    verified_at: float | None
    verification: str | None  # "ok", or what the last verification found wrong
    reason: str | None


class RecordsRequest(Body):
    with_key: bool = False  # the home's secret.key too (README, "Backups": the trade-off)


class S3KeysRequest(Body):
    access_key: str
    secret_key: str


class RestoreRequest(Body):
    stop: bool = False  # stop the app's containers instead of putting it in maintenance


class RestoredView(View):
    app: str
    backup: int
    volumes: list[str]
    files: int
    seconds: float
    how: str


def backup_view(daemon: Daemon, backup: Backup) -> BackupView:
    app = None if backup.app_id is None else daemon.store.get_app_by_id(backup.app_id).name
    return BackupView(
        id=backup.pk,
        app=app,
        state=backup.state,
        destination=backup.destination,
        started_at=backup.started_at,
        ended_at=backup.ended_at,
        size=backup.size,
        manifest=backup.manifest,
        verified_at=backup.verified_at,
        verification=backup.verification,
        reason=backup.reason,
    )


@router.get("/apps/{name}/backups")
def list_backups(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[BackupView]:
    who.require_admin()
    app = daemon.store.get_app(name)
    return [backup_view(daemon, b) for b in daemon.store.backups.of(app)]


@router.post("/apps/{name}/backups", status_code=201)
def create_backup(name: str, daemon: DaemonDep, who: PrincipalDep) -> BackupView:
    """Archive the app's volumes (after its `[backup] command`), then verify the archives
    by a restore into scratch volumes: `state` is good only then."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    return backup_view(daemon, backups.create(daemon.backups, app))


@router.post("/apps/{name}/backups/{backup_id}/verify")
def verify_backup(name: str, backup_id: Number, daemon: DaemonDep, who: PrincipalDep) -> BackupView:
    who.require_admin()
    app = daemon.store.get_app(name)
    return backup_view(daemon, backups.verify_again(daemon.backups, app, backup_id))


@router.post("/apps/{name}/backups/{backup_id}/restore")
def restore_backup(
    name: str,
    backup_id: Number,
    daemon: DaemonDep,
    who: PrincipalDep,
    body: RestoreRequest | None = None,
) -> RestoredView:
    """Replace the app's volumes with the backup's content, in maintenance (or stopped)."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    stop = body.stop if body is not None else False
    done = restoring.restore(daemon.backups, app, backup_id, stop)
    return RestoredView(
        app=name,
        backup=done.backup,
        volumes=list(done.volumes),
        files=done.files,
        seconds=done.seconds,
        how=done.how,
    )


@router.get("/backups/records")
def list_records_backups(daemon: DaemonDep, who: PrincipalDep) -> list[BackupView]:
    who.require_admin()
    return [backup_view(daemon, b) for b in daemon.store.backups.of(None)]


@router.post("/backups/records", status_code=201)
def create_records_backup(
    daemon: DaemonDep, who: PrincipalDep, body: RecordsRequest | None = None
) -> BackupView:
    """An online copy of the daemon's database, checked (integrity and rows) once stored."""
    who.require_admin()
    with_key = body.with_key if body is not None else False
    return backup_view(daemon, backups.create_records(daemon.backups, with_key))


@router.post("/backups/records/{backup_id}/verify")
def verify_records_backup(backup_id: Number, daemon: DaemonDep, who: PrincipalDep) -> BackupView:
    who.require_admin()
    return backup_view(daemon, backups.verify_again(daemon.backups, None, backup_id))


@router.put("/backups/s3-keys", status_code=204)
def set_s3_keys(body: S3KeysRequest, daemon: DaemonDep, who: PrincipalDep) -> None:
    """The S3 destination's access keys, sealed into the home; used from the next call on."""
    who.require_admin()
    ctx = daemon.backups.ctx
    save_s3_keys(ctx.settings, ctx.sealer, (body.access_key, body.secret_key))
