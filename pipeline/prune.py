"""Keep the newest `keep_releases` images of an app, and every image a listed release uses."""

from __future__ import annotations

import json

from pipeline.appconfig import AppConfig
from pipeline.context import Job
from pipeline.errors import TempsError
from pipeline.states import ReleaseState as S


def prune_images(job: Job) -> None:
    ctx = job.ctx
    live = ctx.store.live_release(job.app)
    basis = live or job.release
    keep_count = AppConfig.from_dict(json.loads(basis.config)).deploy.keep_releases
    keep: set[str] = set()
    for release in ctx.store.releases(job.app, limit=1000):
        if release.image is None or release.state in (S.FAILED, S.SUPERSEDED):
            continue
        if len(keep) >= keep_count and release.state != S.LIVE:
            continue
        keep.add(release.image)
    try:
        removed = ctx.runtime.prune_images(job.app.name, keep)
    except TempsError as exc:
        job.log.warning("deploy.prune_failed", error=str(exc))
        return
    if removed:
        job.log.info("deploy.pruned", images=removed)
