"""A deploy that fails: the new slot goes, the live one keeps serving, the record says why,
and the pusher sees the same reason with the last lines of the log."""

from __future__ import annotations

from pipeline.context import Deploy
from pipeline.errors import DeployError, TempsError
from pipeline.release import formation
from pipeline.release.states import TERMINAL, Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.sqlite.models import Release
from pipeline.steps.retire import Leaving, drain_and_stop

LOG_TAIL_LINES = 20


def fail(deploy: Deploy, error: TempsError) -> None:
    reason = error.reason if isinstance(error, DeployError) else str(error)
    release = deploy.current()
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
    failed = deploy.move(S.FAILED, failure=Failure(reason, step, tail))
    for name in formation.containers_of(failed):
        remove_new_container(deploy, failed, name, routed=step in (S.SWITCHING, S.CANARY))


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
    """A bug, not a failed deploy: recorded as a failure of the step it was in."""
    deploy.log.exception("deploy.crashed")
    release = deploy.current()
    if S(release.state) in TERMINAL or release.state == S.LIVE:
        return
    reason = f"internal error: {type(exc).__name__}: {exc}"
    deploy.say(f"-----> {reason}")
    # From the record as it is now: the crash may have come between a step's write and the
    # deploy's note of it.
    failure = Failure(reason, str(release.state))
    transition(deploy.ctx.store, deploy.app.name, release, S.FAILED, failure=failure)


def container_log(deploy: Deploy, container: str) -> str:
    try:
        return deploy.ctx.runtime.logs_tail(container, LOG_TAIL_LINES)
    except TempsError:
        return ""
