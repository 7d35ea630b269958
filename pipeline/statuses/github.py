"""GitHub's commit status API (also GitHub Enterprise's, at its own API URL):
`POST {api}/repos/{owner}/{repo}/statuses/{sha}`, with the four states as they are."""

from __future__ import annotations

from pipeline.statuses.destination import Destination
from pipeline.statuses.status import CommitStatus
from pipeline.statuses.wire import Post

API_VERSION = "2022-11-28"


def request(destination: Destination, status: CommitStatus) -> Post:
    return Post(
        url=f"{destination.api_url}/repos/{destination.repository}/statuses/{status.sha}",
        headers={
            "Authorization": f"Bearer {destination.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        },
        body={
            "state": str(status.state),
            "target_url": status.target_url,
            "description": status.description,
            "context": status.context,
        },
    )
