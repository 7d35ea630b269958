"""What a push of a branch other than main does: with `[preview]` on in main's `temps.toml`,
the branch deploys as a preview of the app (made at its first push), followed in the push as
main's deploys are; deleting the branch destroys its preview. Otherwise the branch is stored
and nothing is deployed."""

from __future__ import annotations

from pipeline.app.names import branch_of
from pipeline.errors import TempsError
from pipeline.git import repo as gitrepo
from pipeline.git.serve import ZERO_SHA, Progress
from pipeline.previews import branches, limits
from pipeline.previews.ending import end_preview, summary
from pipeline.sqlite.models import App
from receiver.daemon import Daemon
from receiver.git.follow import deploy_and_follow


def previews_on_push(
    daemon: Daemon, app: App, ref: str, old: str, new: str, progress: Progress
) -> str | None:
    """None accepts the ref, a reason refuses it, as `deploy_on_push`."""
    settings, store = daemon.settings, daemon.store
    if new == ZERO_SHA:
        return _destroy_preview(daemon, app, ref, progress)
    why_not = branches.wanted(settings, store, app, ref)
    if why_not is not None:
        progress(f"temps: only main deploys; {ref} stored, not deployed ({why_not})\n")
        return None

    def make_room() -> None:
        config = branches.settings_of(settings, app)
        limits.make_room(store, daemon.destroyer, app, config, settings.max_previews, progress)

    try:
        preview, made = branches.preview_for(
            settings, store, daemon.deployer.ctx.sealer, app, ref, make_room
        )
        preview = branches.without_workers(settings, store, preview, new)
    except TempsError as exc:
        return str(exc)
    if made:
        progress(f"-----> temps: {ref} is previewed as the app {preview.name}\n")
    forced = old != ZERO_SHA and not gitrepo.is_fast_forward(settings.repo_path(app.name), old, new)
    refused = deploy_and_follow(
        daemon, preview, new, progress, forced=forced, branch=branch_of(ref)
    )
    if refused is not None:
        return refused
    branches.deployed(settings, preview, new)
    progress(f"-----> temps: preview of {branch_of(ref)}: {settings.app_url(preview.name)}\n")
    return None


def _destroy_preview(daemon: Daemon, app: App, ref: str, progress: Progress) -> str | None:
    ending = end_preview(daemon.store, daemon.destroyer, app, ref, f"{ref} deleted", progress)
    if ending is None:
        return None
    preview, running = ending
    try:
        destroyed = running.result()
    except TempsError as exc:
        # The branch stays, so that deleting it again finishes the destroy.
        return f"the preview {preview.name} was not destroyed: {exc}"
    progress(f"-----> temps: preview {preview.name} destroyed ({summary(destroyed)})\n")
    return None
