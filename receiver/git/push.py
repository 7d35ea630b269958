"""What a `git push` does to each ref: main deploys inside the push; another branch deploys
its preview when the app wants previews (`receiver/git/previews.py`), and is stored otherwise."""

from __future__ import annotations

from pipeline.git import repo as gitrepo
from pipeline.git.serve import ZERO_SHA, Progress, RefCallback
from pipeline.sqlite.models import App
from receiver.daemon import Daemon
from receiver.git.follow import deploy_and_follow
from receiver.git.previews import previews_on_push

MAIN = "refs/heads/main"


def deploy_on_push(daemon: Daemon, app: App) -> RefCallback:
    def on_ref(ref: str, old: str, new: str, progress: Progress) -> str | None:
        if app.is_preview:
            parent = daemon.store.get_app_by_id(app.preview_of or 0)
            return (
                f"{app.name} is the preview of {app.preview_ref} of {parent.name}: push that "
                f"branch to {parent.name}.git; nothing was deployed"
            )
        if ref != MAIN:
            return previews_on_push(daemon, app, ref, old, new, progress)
        if new == ZERO_SHA:
            return "deleting main is not allowed: it is what runs"
        forced = old != ZERO_SHA and not gitrepo.is_fast_forward(
            daemon.settings.repo_path(app.name), old, new
        )
        return deploy_and_follow(daemon, app, new, progress, forced=forced)

    return on_ref
