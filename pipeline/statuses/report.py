"""A release's state, reported on its commit at each change a user sees: its deploy starts,
it is live, it failed, or it never ran to an end. A preview reports with its app's settings,
under its own context and at its own URL."""

from __future__ import annotations

import structlog

from pipeline.app.names import branch_of
from pipeline.app.sealing import Sealer
from pipeline.context import Context
from pipeline.sqlite.models import App, Release
from pipeline.sqlite.store import Store
from pipeline.statuses.destination import DEFAULT_API_URLS, Destination, Provider
from pipeline.statuses.status import status_of

log = structlog.get_logger()


def report(ctx: Context, app: App, release: Release) -> None:
    """Queue the status of `release` (as it is now) of `app` for its commit, when the app
    reports statuses. Never raises: a status is never worth a deploy."""
    try:
        destination = destination_of(ctx.sealer, settings_app(ctx.store, app))
        if destination is None:
            return
        url = ctx.settings.app_url(app.name)
        branch = branch_of(app.preview_ref) if app.preview_ref else app.branch
        status = status_of(release, url, app.is_preview, branch)
        if status is not None:
            ctx.statuses.send(destination, status, app.name, f"v{release.number}")
    except Exception:
        log.exception("status.unreported", app=app.name, release=f"v{release.number}")


def settings_app(store: Store, app: App) -> App:
    """The app whose status settings `app` reports with: its own, or a preview's app's."""
    return store.get_app_by_id(app.preview_of) if app.preview_of is not None else app


def destination_of(sealer: Sealer, app: App) -> Destination | None:
    if not (app.status_provider and app.status_repository and app.status_token_sealed):
        return None
    provider = Provider(app.status_provider)
    return Destination(
        provider=provider,
        api_url=app.status_api_url or DEFAULT_API_URLS[provider],
        repository=app.status_repository,
        token=sealer.unseal(app.status_token_sealed),
    )
