"""An app's storage: named volumes, each mounted at one path in every container of every
release (web, release phase), set by an admin and never a path of the host.

A volume outlives the releases that mount it: deploys, rollbacks and daemon restarts leave
its data where it is, and unmounting it keeps the volume (and its data) for a later mount of
the same name. A mount takes effect from the next deploy. With blue-green both releases see
the same data during the switch and the bake window: apps that must not share it with their
previous version deploy with `recreate`.
"""

from __future__ import annotations

import posixpath
import re

from pipeline.errors import InvalidInput
from pipeline.runtime import Mount
from pipeline.settings import Settings
from pipeline.sqlite.models import App
from pipeline.sqlite.models import Mount as MountRecord
from pipeline.sqlite.store import Store

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# What the kernel and the image own: a volume there would hide or break them.
RESERVED = ("/proc", "/sys", "/dev", "/etc", "/bin", "/sbin", "/usr", "/lib", "/lib64", "/boot")
MAX_MOUNTS = 16


def volume_name(settings: Settings, app: str, name: str) -> str:
    """The Docker volume: the home's id keeps two homes on one engine apart."""
    return f"temps-{settings.instance_id}-{app}-{name}"


def mounts_of(settings: Settings, store: Store, app: App) -> tuple[Mount, ...]:
    """The app's mounts; a preview made with `[preview] volumes = true` mounts its app's."""
    owner = app
    if app.shares_volumes and app.preview_of is not None:
        owner = store.get_app_by_id(app.preview_of)
    return tuple(
        Mount(volume_name(settings, owner.name, record.name), record.path)
        for record in store.mounts.of(owner)
    )


def checked_path(path: str) -> str:
    if not path.startswith("/") or "\x00" in path or len(path) > 255:
        raise InvalidInput(f"a mount path must be an absolute path, got {path!r}")
    normal = posixpath.normpath(path)
    if normal != (path.rstrip("/") or "/") or ".." in path.split("/"):
        raise InvalidInput(f"a mount path must be written plainly (no '..', '//'), got {path!r}")
    if normal == "/" or any(normal == r or normal.startswith(r + "/") for r in RESERVED):
        raise InvalidInput(f"{normal} belongs to the system: mount the volume elsewhere")
    return normal


def mount(store: Store, app: App, name: str, path: str) -> MountRecord:
    if not NAME.match(name):
        raise InvalidInput(
            f"invalid volume name {name!r}: 1-31 characters a-z, 0-9 and '-', starting with a "
            "letter"
        )
    if len(store.mounts.of(app)) >= MAX_MOUNTS:
        raise InvalidInput(f"app {app.name!r} already mounts {MAX_MOUNTS} volumes")
    return store.mounts.add(app, name, checked_path(path))
