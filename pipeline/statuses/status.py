"""What one commit status says: the state of a release's deploy, in the four states both
providers know, with a line of text and the URL it points at."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pipeline.release.states import IN_FLIGHT, ReleaseState
from pipeline.sqlite.models import Release

MAX_DESCRIPTION = 140  # GitHub refuses a longer description; GitLab shows about as much
DEPLOY_CONTEXT = "temps/deploy"  # an app's own deploys
PREVIEW_CONTEXT = "temps/preview"  # a preview's: a branch protection rule can require it


class CommitState(enum.StrEnum):
    PENDING = "pending"  # the deploy runs
    SUCCESS = "success"  # the release is live
    FAILURE = "failure"  # the deploy failed, or the live release failed its bake window
    ERROR = "error"  # the deploy did not run to an end: superseded, cancelled, interrupted


@dataclass(frozen=True)
class CommitStatus:
    sha: str
    state: CommitState
    description: str
    target_url: str
    context: str
    branch: str | None = None  # the branch the commit was pushed to, where known


def state_of(release: Release) -> CommitState | None:
    """The commit's state for the release as it is now; None for a state that says nothing
    new (a live release retired or on standby)."""
    state = ReleaseState(release.state)
    if state in IN_FLIGHT:
        return CommitState.PENDING
    if state == ReleaseState.LIVE:
        return CommitState.SUCCESS
    if state == ReleaseState.FAILED:
        return CommitState.ERROR if cancelled(release) else CommitState.FAILURE
    if state in (ReleaseState.SUPERSEDED, ReleaseState.INTERRUPTED):
        return CommitState.ERROR
    return None


def cancelled(release: Release) -> bool:
    """Failed because its app was being destroyed (`pipeline.errors.Cancelled`), not by a
    fault of the commit's."""
    return (release.failure_reason or "").startswith("cancelled:")


def describe(release: Release, state: CommitState, url: str) -> str:
    version = f"v{release.number}"
    if state == CommitState.PENDING:
        text = f"{version} is deploying"
    elif state == CommitState.SUCCESS:
        text = f"{version} is live at {url}"
    elif release.state == ReleaseState.SUPERSEDED:
        text = f"{version} was superseded by a newer deploy"
    elif release.state == ReleaseState.INTERRUPTED:
        text = f"{version} was interrupted: temps stopped during its deploy"
    else:
        step = f" while {release.failed_step}" if release.failed_step else ""
        text = f"{version} failed{step}: {release.failure_reason or 'no reason recorded'}"
    return shortened(" ".join(text.split()))


def shortened(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def status_of(
    release: Release, url: str, preview: bool, branch: str | None = None
) -> CommitStatus | None:
    """The status to post for the release, or None: no commit (an image deploy) or nothing
    new to say."""
    state = state_of(release)
    if not release.commit or state is None:
        return None
    return CommitStatus(
        sha=release.commit,
        state=state,
        description=describe(release, state, url),
        target_url=url,
        context=PREVIEW_CONTEXT if preview else DEPLOY_CONTEXT,
        branch=branch,
    )
