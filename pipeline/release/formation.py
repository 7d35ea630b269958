"""An app's formation: how many containers of each process type its releases run.

`web` is served through Traefik: a release's slot holds that many web containers, each gated,
switched in one route change and drained together. Every other process type of the Procfile
runs in the background, one container each unless the formation says otherwise. The app's
formation is what its next release runs with; a release keeps the formation it ran with, and
a rollback brings it back.

A release's record keeps its containers by process type (`pipeline.release.records.SlotRecord`);
on Swarm a web entry also names the `address` of the node its task runs on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.app.config import PROCESS_NAME, AppConfig
from pipeline.errors import InvalidInput
from pipeline.release.records import WEB, SlotRecord
from pipeline.runtime import Instance, Slot
from pipeline.sqlite.models import Release

MAX_CONTAINERS = 20  # of one process type


def web_count(formation: Mapping[str, int] | None) -> int:
    """How many web containers `formation` asks for: one unless it says otherwise."""
    return int((formation or {}).get(WEB, 1))


def checked(
    current: Mapping[str, int], changes: Mapping[str, object], known: set[str] | None = None
) -> dict[str, int]:
    """`current` with `changes` applied, each count checked; `known`: the process types the
    live release declares, when one is live."""
    merged = {WEB: web_count(current), **{k: int(v) for k, v in current.items()}}
    for process, count in changes.items():
        if not re.match(PROCESS_NAME, process):
            raise InvalidInput(
                f"invalid process type {process[:64]!r}: lowercase letters, digits, '-' and '_'"
            )
        if known is not None and process != WEB and process not in known:
            declared = ", ".join(sorted(known | {WEB}))
            raise InvalidInput(
                f"unknown process type {process!r}: the live release runs {declared} "
                "(process types come from the Procfile)"
            )
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidInput(f"the count of {process} must be a whole number, got {count!r}")
        least = 1 if process == WEB else 0
        if not least <= count <= MAX_CONTAINERS:
            raise InvalidInput(
                f"{process} runs {least} to {MAX_CONTAINERS} containers, got {count}"
            )
        merged[process] = count
    return merged


def background(config: AppConfig, wanted: Mapping[str, int] | None) -> dict[str, int]:
    """How many containers each background process type of a release runs: one each unless
    the formation says otherwise."""
    counts = wanted or {}
    return {p: int(counts.get(p, 1)) for p in config.processes if p != WEB}


def slot_record(slot: Slot, release: Release | None = None) -> SlotRecord:
    """How a release's record keeps its slot; the background processes `release` records
    are kept."""
    known = release.slot if release is not None else None
    return known.with_slot(slot) if known is not None else SlotRecord.of(slot)


def with_workers(release: Release, workers: dict[str, list[str]]) -> SlotRecord:
    """The release's record with `workers` as its background processes (none: {})."""
    known = release.slot or SlotRecord.of(None)
    return known.with_workers(workers)


def slot_of(release: Release) -> Slot | None:
    """The web containers a release runs in, as recorded (None before it booted)."""
    slot = release.slot.slot if release.slot is not None else None
    if slot is not None:
        return slot
    if release.container is None or release.host_port is None:
        return None
    return Slot((Instance(release.container, release.host_port),))


def workers_of(release: Release) -> dict[str, list[str]]:
    """The background containers a release runs, by process type."""
    return release.slot.workers if release.slot is not None else {}


def containers_of(release: Release) -> list[str]:
    """Every container the release may have started, booted or not."""
    slot = slot_of(release)
    names = [instance.container for instance in slot.instances] if slot else []
    if release.container is not None and release.container not in names:
        names.insert(0, release.container)
    return names + [name for names in workers_of(release).values() for name in names]
