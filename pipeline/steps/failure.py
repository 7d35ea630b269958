"""A deploy that fails: the new slot goes, the live one keeps serving, the record says why,
and the pusher sees the same reason with the last lines of the log."""

from __future__ import annotations

import contextlib

from pipeline.context import Deploy
from pipeline.errors import DeployError, DiskFull, RecordsBusy, TempsError
from pipeline.release import formation
from pipeline.release.states import TERMINAL, Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.sqlite.models import Release
from pipeline.steps.retire import Leaving, drain_and_stop

LOG_TAIL_LINES = 20


def fail(deploy: Deploy, error: TempsError) -> None:
    release = deploy.current()
    step = str(release.state)
    try:
        record_failure(deploy, error, release)
    finally:
        # Even when the failure cannot be recorded (the disk that holds the records is
        # full), the new slot goes: it must not run on unrecorded and unrouted.
        for name in formation.containers_of(release):
            remove_new_container(deploy, release, name, routed=step in (S.SWITCHING, S.CANARY))


def record_failure(deploy: Deploy, error: TempsError, release: Release) -> None:
    """Tell the pusher, and move the release to failed with the step, reason and log tail."""
    reason = error.reason if isinstance(error, DeployError) else str(error)
    container = release.container
    tail = error.log_tail if isinstance(error, DeployError) else ""
    if container is not None and not tail:
        tail = container_log(deploy, container)
    step = str(release.state)
    deploy.log.warning("deploy.failed", step=step, reason=reason)
    deploy.say(f"-----> Deploy failed while {step}: {reason}")
    if tail.strip():
        source = "build" if step == S.BUILDING else "app"
        deploy.say(f"-----> Last lines of the {source} log:")
        for line in tail.splitlines()[-LOG_TAIL_LINES:]:
            deploy.say(f"       {line}")
    else:
        # Nothing new to show the pusher, but the record keeps the deploy's own last lines.
        tail = "\n".join(deploy.ctx.store.log_lines(deploy.id)[-LOG_TAIL_LINES:])
    tail = "\n".join(tail.splitlines()[-LOG_TAIL_LINES:])
    deploy.move(S.FAILED, failure=Failure(reason, step, tail))


def remove_new_container(deploy: Deploy, failed: Release, container: str, routed: bool) -> None:
    try:
        if routed:
            # Its route was published, then restored: Traefik may have sent it requests.
            leaving = Leaving.of(failed, container)
            if leaving is not None:
                drain_and_stop(deploy.ctx, leaving, deploy.say)
        else:
            # Never routed to: kill, nothing to drain.
            deploy.ctx.runtime.discard(container)
    except TempsError as exc:
        # Reconciliation removes it at the next start if the engine is gone now.
        deploy.log.error("deploy.cleanup_failed", container=container, error=str(exc))


def crashed(deploy: Deploy, exc: Exception) -> None:
    """A bug, not a failed deploy: recorded as a failure of the step it was in. Or a failure
    whose record could not be written (a full disk, a busy database): tried once more."""
    if isinstance(exc, DiskFull | RecordsBusy):
        deploy.log.error("deploy.unrecorded", error=str(exc))
        reason = str(exc)
    else:
        deploy.log.exception("deploy.crashed")
        reason = f"internal error: {type(exc).__name__}: {exc}"
    release = deploy.current()
    if S(release.state) in TERMINAL or release.state == S.LIVE:
        return
    with contextlib.suppress(DiskFull, RecordsBusy):
        deploy.say(f"-----> {reason}")  # the state below matters more than the line
    # From the record as it is now: the crash may have come between a step's write and the
    # deploy's note of it.
    failure = Failure(reason, str(release.state))
    transition(deploy.ctx.store, deploy.app.name, release, S.FAILED, failure=failure)


def container_log(deploy: Deploy, container: str) -> str:
    try:
        return deploy.ctx.runtime.logs_tail(container, LOG_TAIL_LINES)
    except TempsError:
        return ""
