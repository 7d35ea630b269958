"""GitLab's commit status API: `POST {api}/projects/{id}/statuses/{sha}`, the project named by
its id or its URL-encoded path. GitLab has states of its own: a deploy that runs is
`running` (`pending` would mean waiting for a runner), one that failed `failed`, one that
did not run to an end `canceled`. The branch goes as `ref`, so the status joins the branch's
pipeline (a merge request shows it) rather than the default branch's."""

from __future__ import annotations

from urllib.parse import quote

from pipeline.statuses.destination import Destination
from pipeline.statuses.status import CommitState, CommitStatus
from pipeline.statuses.wire import Post

STATES = {
    CommitState.PENDING: "running",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failed",
    CommitState.ERROR: "canceled",
}


def request(destination: Destination, status: CommitStatus) -> Post:
    project = quote(destination.repository, safe="")
    return Post(
        url=f"{destination.api_url}/projects/{project}/statuses/{status.sha}",
        headers={"PRIVATE-TOKEN": destination.token},
        body={
            "state": STATES[status.state],
            "target_url": status.target_url,
            "description": status.description,
            "name": status.context,
            **({"ref": status.branch} if status.branch else {}),
        },
    )
