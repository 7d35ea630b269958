"""Keep the newest `keep_releases` images of an app, and every image a listed release uses;
keep the logs of its newest `keep_release_logs` releases."""

from __future__ import annotations

import structlog

from pipeline.context import Context
from pipeline.errors import TempsError
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import Release


def prune_images(ctx: Context, finished: Release) -> None:
    """Run once a deploy has answered its pusher: housekeeping nobody should wait for."""
    app = ctx.store.get_app_by_id(finished.app_id)
    log = structlog.get_logger().bind(app=app.name, release=f"v{finished.number}")
    basis = ctx.store.live_release(app) or finished
    keep_count = basis.config.deploy.keep_releases
    keep: set[str] = set()
    for release in ctx.store.image_uses(app):
        if release.image is None or release.state in (S.FAILED, S.SUPERSEDED):
            continue
        # The live release's image, and a kept one's (skew protection): their containers run.
        if len(keep) >= keep_count and release.state != S.LIVE and not release.kept:
            continue
        keep.add(release.image)
    deleted = ctx.store.delete_old_logs(app, ctx.settings.keep_release_logs)
    if deleted:
        log.info("deploy.logs_deleted", lines=deleted)
    ctx.store.make_durable()
    try:
        removed = ctx.runtime.prune_images(app.name, keep)
    except TempsError as exc:
        log.warning("deploy.prune_failed", error=str(exc))
        return
    if removed:
        log.info("deploy.pruned", images=removed)
