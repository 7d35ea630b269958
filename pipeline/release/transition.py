"""`transition`, the one writer of a release's state: checked against the table of allowed
moves, persisted with its event, logged with `state` and `was`, measured."""

from __future__ import annotations

from typing import TypedDict, Unpack

import structlog

from pipeline import metrics
from pipeline.errors import Conflict
from pipeline.release.states import Failure, ReleaseState, is_allowed
from pipeline.sqlite.models import Release
from pipeline.sqlite.store import Store

log = structlog.get_logger()


class Change(TypedDict, total=False):
    """What a state change records besides the state: the release's first web container and
    its port, or why it failed."""

    container: str | None
    host_port: int | None
    failure: Failure | None


def transition(
    store: Store, app: str, release: Release, state: ReleaseState, **change: Unpack[Change]
) -> Release:
    """Move a release to `state` before the step's side effect runs; a move the table does
    not allow, or one from a stale copy of the release, raises Conflict and changes nothing."""
    was = ReleaseState(release.state)
    if not is_allowed(was, state):
        raise Conflict(f"release v{release.number} cannot go from {was} to {state}")
    fields: dict[str, object] = {
        key: value for key, value in change.items() if key != "failure" and value is not None
    }
    failure = change.get("failure")
    if failure is not None:
        fields |= {"failure_reason": failure.reason, "failed_step": failure.step}
        if failure.log_tail is not None:
            fields["log_tail"] = failure.log_tail
    updated, seconds = store.record_state(release.pk, state, was, **fields)
    metrics.step_seconds.observe(seconds, str(was))
    log.info(
        "deploy.state_changed",
        app=app,
        release=f"v{release.number}",
        state=str(state),
        was=str(was),
    )
    return updated
