"""What a `git push` does to each ref: main deploys inside the push, others are stored."""

from __future__ import annotations

import contextlib

from pipeline.errors import Conflict, DiskFull, RecordsBusy, RuntimeUnavailable
from pipeline.git import repo as gitrepo
from pipeline.git.serve import ZERO_SHA, Progress, RefCallback
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import App, ReleaseSource
from receiver.daemon import Daemon

MAIN = "refs/heads/main"
FORCED = "-----> Force push: main was rewritten, not extended"
KEEPALIVE_SECONDS = 15.0


def deploy_on_push(daemon: Daemon, app: App) -> RefCallback:
    def on_ref(ref: str, old: str, new: str, progress: Progress) -> str | None:
        if ref != MAIN:
            if new != ZERO_SHA:
                progress(f"temps: only main deploys; {ref} stored, not deployed\n")
            return None
        if new == ZERO_SHA:
            return "deleting main is not allowed: it is what runs"
        forced = old != ZERO_SHA and not gitrepo.is_fast_forward(
            daemon.settings.repo_path(app.name), old, new
        )
        return _deploy_and_follow(daemon, app, new, progress, forced=forced)

    return on_ref


def _deploy_and_follow(
    daemon: Daemon, app: App, commit: str, progress: Progress, *, forced: bool
) -> str | None:
    try:
        release = daemon.deployer.submit(app, source=ReleaseSource.PUSH, commit=commit)
    except (RuntimeUnavailable, RecordsBusy, DiskFull, Conflict) as exc:
        # Refused before anything was recorded: the ref stays where it was.
        return str(exc)
    if forced:
        # Allowed, as on Heroku; the release log keeps that history was rewritten. The deploy
        # runs already: a note that cannot be written must not refuse the ref it deploys.
        with contextlib.suppress(RecordsBusy, DiskFull):
            daemon.journal.write(release.pk, FORCED)
    progress(f"-----> temps: deploying {commit[:12]} to {app.name} as v{release.number}\n")
    position = 0
    while True:
        # The deploy goes on if the pusher hangs up: it runs in the app's lane, not here.
        chunk = daemon.journal.follow(release.pk, position, KEEPALIVE_SECONDS)
        position = chunk.position
        if chunk.lines:
            progress("".join(line + "\n" for line in chunk.lines))
        elif not chunk.done:
            progress("")
        if chunk.done:
            break
    final = daemon.store.get_release(release.pk)
    if final.state == S.LIVE:
        return None
    if final.state == S.SUPERSEDED:
        return f"v{final.number} superseded by a newer push"
    return final.failure_reason or f"deploy ended {final.state}"
