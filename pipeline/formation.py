"""An app's formation: how many containers of each process type its releases run.

Today the one process type is `web`, served through Traefik: a release's slot holds that many
web containers, each gated, switched in one route change and drained together. The app's
formation is what its next release runs with; a release keeps the formation it ran with, and a
rollback brings it back.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import InvalidInput
from pipeline.runtime import Instance, Slot
from pipeline.sqlite.models import Release

WEB = "web"
PROCESS = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MAX_CONTAINERS = 20  # of one process type


def web_count(formation: dict[str, Any] | None) -> int:
    """How many web containers `formation` asks for: one unless it says otherwise."""
    return int((formation or {}).get(WEB, 1))


def checked(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, int]:
    """`current` with `changes` applied, each count checked."""
    merged = {WEB: web_count(current), **{k: int(v) for k, v in current.items()}}
    for process, count in changes.items():
        if process != WEB:
            raise InvalidInput(
                f"unknown process type {process!r}: an app runs web containers only (Procfile "
                "process types are not supported yet)"
            )
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidInput(f"the count of {process} must be a whole number, got {count!r}")
        if not 1 <= count <= MAX_CONTAINERS:
            raise InvalidInput(f"{process} runs 1 to {MAX_CONTAINERS} containers, got {count}")
        merged[process] = count
    return merged


def slot_record(slot: Slot) -> dict[str, Any]:
    """How a release's record keeps its slot."""
    return {WEB: [{"container": i.container, "host_port": i.host_port} for i in slot.instances]}


def slot_of(release: Release) -> Slot | None:
    """The containers a release runs in, as recorded (None before it booted)."""
    web = (release.slot or {}).get(WEB)
    if web:
        return Slot(tuple(Instance(entry["container"], int(entry["host_port"])) for entry in web))
    if release.container is None or release.host_port is None:
        return None
    return Slot((Instance(release.container, release.host_port),))


def containers_of(release: Release) -> list[str]:
    """Every container the release may have started, booted or not."""
    slot = slot_of(release)
    names = [instance.container for instance in slot.instances] if slot else []
    if release.container is not None and release.container not in names:
        names.insert(0, release.container)
    return names
