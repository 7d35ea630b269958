"""A deploy started by a push, followed in the push: its log as `remote:` lines, its outcome
as the ref's (None accepts the ref, a reason refuses it)."""

from __future__ import annotations

import contextlib

from pipeline.errors import Conflict, DiskFull, RecordsBusy, RuntimeUnavailable
from pipeline.git.serve import Progress
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import App, ReleaseSource
from receiver.daemon import Daemon

KEEPALIVE_SECONDS = 15.0


def deploy_and_follow(
    daemon: Daemon, app: App, commit: str, progress: Progress, *, forced: bool, branch: str = "main"
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
            daemon.journal.write(
                release.pk, f"-----> Force push: {branch} was rewritten, not extended"
            )
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
