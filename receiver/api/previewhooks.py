"""What a delivery does for previews: a push of a branch other than the deploy branch, a
deleted branch, a pull (merge) request opened, given new commits, reopened or closed.

The preview is the one a `git push` of the branch makes (`pipeline.previews`), deployed from
the app's upstream (the URL and token an admin set; never the payload's). The answer is 202
with the preview's release queued, or with the destroy started: never after the deploy.
"""

from __future__ import annotations

from typing import Literal

import structlog

from pipeline.app.names import BRANCHES
from pipeline.app.webhooks import Intent, PushEvent, RequestEvent
from pipeline.errors import Conflict, InvalidInput, TempsError
from pipeline.previews import branches, limits, requests
from pipeline.previews.ending import end_preview
from pipeline.sqlite.models import App, ReleaseSource
from receiver.api.views import ReleaseDetail, View, release_view
from receiver.daemon import Daemon

log = structlog.get_logger()


class Ignored(View):
    ignored: str  # why: the event, or the branch pushed


class PreviewRelease(ReleaseDetail):
    """The release a delivery queued for a preview, and the preview it deploys."""

    preview: str  # the preview's app name, `pr-42--myapp`
    url: str


class Destroying(View):
    """The preview whose destroy a deleted branch or a closed request started."""

    destroying: str  # the preview's app name
    ref: str
    deployed: Literal[False]


Outcome = Ignored | PreviewRelease | Destroying


def branch_pushed(daemon: Daemon, app: App, claimed: int, push: PushEvent) -> Outcome:
    """A push of a branch other than the deploy branch (`refs/heads/feature-x`)."""
    assert push.ref.startswith(BRANCHES)
    if push.deleted:
        return _end(daemon, app, claimed, push.ref, f"branch {push.ref} deleted")
    why_not = branches.wanted(daemon.settings, daemon.store, app, push.ref)
    if why_not is not None:
        return _ignored(daemon, claimed, f"push to {push.ref}, not the deploy branch: {why_not}")
    return _deploy(daemon, app, claimed, push.ref, push.after, trusted=True)


def request_changed(daemon: Daemon, app: App, claimed: int, request: RequestEvent) -> Outcome:
    """A pull (merge) request event: deploy its head, destroy its preview, or nothing."""
    if request.intent == Intent.DESTROY:
        return _end(daemon, app, claimed, request.ref, f"{request.label} {request.action}")
    if request.intent == Intent.NOTHING or request.head is None:
        return _ignored(daemon, claimed, f"{request.label} {request.action}: nothing to deploy")
    try:
        config = branches.settings_of(daemon.settings, app)
    except InvalidInput as exc:
        return _ignored(daemon, claimed, f"{request.label}: {exc}")
    why_not = requests.refused(config, request)
    if why_not is not None:
        return _ignored(daemon, claimed, why_not)
    return _deploy(daemon, app, claimed, request.ref, request.head, trusted=not request.fork)


def _deploy(
    daemon: Daemon, app: App, claimed: int, ref: str, commit: str, *, trusted: bool
) -> PreviewRelease:
    settings, store = daemon.settings, daemon.store
    if not app.repo_url:
        # The upstream is an admin's choice, never the payload's: a payload may name any host.
        store.deliveries.forget(claimed)  # once the URL is set, a retry deploys
        raise Conflict(
            f"app {app.name!r} has no repository URL to fetch from: an admin sets it with "
            f"PUT /api/apps/{app.name}/source"
        )

    def make_room() -> None:
        config = branches.settings_of(settings, app)
        limits.make_room(store, daemon.destroyer, app, config, settings.max_previews, _quiet)

    try:
        sealer = daemon.deployer.ctx.sealer
        preview, made = branches.preview_for(
            settings, store, sealer, app, ref, make_room, trusted=trusted
        )
        release = daemon.deployer.submit(preview, source=ReleaseSource.WEBHOOK, commit=commit)
    except TempsError:
        # Refused (a cap, Docker away): not recorded, so that the sender's retry can deploy.
        store.deliveries.forget(claimed)
        raise
    if made:
        log.info("preview.made", app=preview.name, parent=app.name, ref=ref, trusted=trusted)
    store.deliveries.settle(claimed, f"queued: {preview.name}", release.id)
    detail = release_view(store, release)
    return PreviewRelease.model_validate(
        {**dict(detail), "preview": preview.name, "url": settings.app_url(preview.name)}
    )


def _end(daemon: Daemon, app: App, claimed: int, ref: str, why: str) -> Ignored | Destroying:
    ending = end_preview(daemon.store, daemon.destroyer, app, ref, why, _quiet)
    if ending is None:
        return _ignored(daemon, claimed, f"{why}: it has no preview")
    preview, _ = ending  # the answer does not wait: a destroy drains, and takes its time
    daemon.store.deliveries.settle(claimed, f"destroying: {preview.name}")
    return Destroying(destroying=preview.name, ref=ref, deployed=False)


def _ignored(daemon: Daemon, claimed: int, why: str) -> Ignored:
    daemon.store.deliveries.settle(claimed, f"ignored: {why}")
    return Ignored(ignored=why)


def _quiet(text: str) -> None:
    """A delivery has nobody to tell as a push has: what matters is logged."""
