"""The API of an app's storage: named volumes and where each is mounted (admin only to
change: a volume holds data every release of the app shares)."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.app import storage
from pipeline.sqlite.models import Mount
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class MountRequest(Body):
    name: str
    path: str


class MountView(View):
    name: str
    path: str  # where it is mounted in each container
    volume: str  # the Docker volume
    created_at: float


def mount_view(daemon: DaemonDep, app: str, mount: Mount) -> MountView:
    volume = storage.volume_name(daemon.settings, app, mount.name)
    return MountView(name=mount.name, path=mount.path, volume=volume, created_at=mount.created_at)


@router.get("/apps/{name}/storage")
def list_mounts(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[MountView]:
    app = app_for(daemon, who, name)
    return [mount_view(daemon, name, mount) for mount in daemon.store.mounts.of(app)]


@router.post("/apps/{name}/storage", status_code=201)
def add_mount(name: str, body: MountRequest, daemon: DaemonDep, who: PrincipalDep) -> MountView:
    """Mounted in every container of the app from its next deploy on."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    return mount_view(daemon, name, storage.mount(daemon.store, app, body.name, body.path))


@router.delete("/apps/{name}/storage/{volume}")
def remove_mount(name: str, volume: str, daemon: DaemonDep, who: PrincipalDep) -> MountView:
    """Not mounted from the next deploy on; the volume and its data are kept."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    return mount_view(daemon, name, daemon.store.mounts.remove(app, volume))
