"""Pull requests (GitHub) and merge requests (GitLab) as previews: whether the app's
`[preview]` wants one. A request from a fork is code from outside the team: it deploys only
with `forks = true`, and then never with a secret of the app's.
"""

from __future__ import annotations

from pipeline.app.config import PreviewSettings
from pipeline.app.webhooks import RequestEvent


def refused(config: PreviewSettings, request: RequestEvent) -> str | None:
    """Why the request deploys no preview, or None when it deploys one. `branches` patterns
    are for pushed branches: they do not filter requests."""
    if not config.enabled:
        return f"{request.label}: previews are off ([preview] enabled in the app's temps.toml)"
    if not config.pull_requests:
        return f"{request.label}: [preview] pull_requests = false in the app's temps.toml"
    if request.fork and not config.forks:
        return (
            f"{request.label} comes from a fork: its code is not deployed unless "
            "[preview] forks = true in the app's temps.toml (and then with no secret)"
        )
    return None
