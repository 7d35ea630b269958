"""Background processes: every Procfile process type but `web`.

They get no traffic, so no gate and no drain: a release's workers start once its web slot is
live, and the workers of the release it replaces get SIGTERM, then SIGKILL after their
`stop_timeout`, time to finish the job in hand. By default the new workers start first (no
pause in the work); `[deploy] worker_overlap = false` stops the old ones first, for workers
that must never run twice. Docker restarts a worker that exits (`unless-stopped`, with its
back-off); the formation view shows its restarts.
"""

from __future__ import annotations

import dataclasses

from pipeline.context import Deploy
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.sqlite.models import Release
from pipeline.steps.boot import free_name
from pipeline.steps.build import built_of, spec_of
from pipeline.steps.retire import Leaving, drain_and_stop, retire_in_background


def replace(deploy: Deploy, leaving: Release | None, coming: Release) -> None:
    """`coming`'s workers take over from `leaving`'s (the release that served until now).
    A worker that will not start is reported; the web switch stands."""
    overlap = coming.config.deploy.worker_overlap
    old = _leaving(deploy, leaving)
    if old and not overlap:
        deploy.say("-----> worker_overlap = false: stopping the old workers first")
        for one in old:
            drain_and_stop(deploy.ctx, one, deploy.say)
    wanted = formation.background(coming.config, coming.formation)
    stopped = deploy.ctx.store.get_app(deploy.app.name).stopped  # `temps ps stop`: kept so
    try:
        start(deploy, coming, {p: n for p, n in wanted.items() if p not in stopped})
    except TempsError as error:
        deploy.log.error("workers.start_failed", error=str(error))
        deploy.say(f"-----> the workers of v{coming.number} did not all start: {error}")
    if old and overlap:
        for one in old:
            retire_in_background(deploy.ctx, deploy.app.name, one, deploy.say)


def _leaving(deploy: Deploy, release: Release | None) -> list[Leaving]:
    """The release's workers, taken off its record (its web slot stays, baking perhaps)."""
    if release is None:
        return []
    release = deploy.ctx.store.get_release(release.pk)
    running = formation.workers_of(release)
    if not running:
        return []
    deploy.ctx.store.set_details(release.pk, slot=formation.with_workers(release, {}))
    return [_worker(release, process, name) for process, names in running.items() for name in names]


def _worker(release: Release, process: str, name: str) -> Leaving:
    leaving = Leaving.of(release, name, ())
    assert leaving is not None
    return dataclasses.replace(leaving, label=f"v{release.number} {process}")


def start(deploy: Deploy, release: Release, counts: dict[str, int]) -> dict[str, list[str]]:
    """Start `counts` workers of each process type for `release`, and record them."""
    ctx = deploy.ctx
    built = built_of(release)
    release = ctx.store.get_release(release.pk)
    running = formation.workers_of(release)
    for process, count in counts.items():
        names = running.setdefault(process, [])
        while len(names) < count:
            name = free_name(deploy, release.number, process)
            deploy.say(f"-----> Starting {process} {name}")
            ctx.runtime.start(spec_of(deploy, built, name, process, release))
            names.append(name)
            ctx.store.set_details(release.pk, slot=formation.with_workers(release, running))
    return running


def stop_some(deploy: Deploy, release: Release, counts: dict[str, int]) -> None:
    """Down to `counts` workers of each process type: the last ones get SIGTERM."""
    release = deploy.ctx.store.get_release(release.pk)
    running = formation.workers_of(release)
    for process, count in counts.items():
        names = running.get(process, [])
        gone, running[process] = names[count:], names[:count]
        deploy.ctx.store.set_details(release.pk, slot=formation.with_workers(release, running))
        for name in gone:
            leaving = _worker(release, process, name)
            retire_in_background(deploy.ctx, deploy.app.name, leaving, deploy.say)
