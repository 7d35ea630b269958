"""Fetching a commit from the app's upstream repository (webhook deploys), through dulwich."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import urllib3.exceptions
from dulwich.client import HTTPUnauthorized, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import ObjectID
from dulwich.refs import Ref

from pipeline.errors import BuildFailed
from pipeline.gitrepo import open_repo

FETCH_ERRORS = (
    GitProtocolError,
    HangupException,
    NotGitRepository,
    HTTPUnauthorized,
    OSError,
    urllib3.exceptions.HTTPError,
)


def fetch_commit(
    repo_path: Path,
    url: str,
    branch: str,
    commit: str,
    token: str | None,
    progress: Callable[[str], None],
) -> None:
    """Fetch `branch` into refs/remotes/origin/<branch> and make sure `commit` arrived.

    The named commit may be older than the branch tip: it only has to be present.
    """
    repo = open_repo(repo_path)
    try:
        if ObjectID(commit.encode()) in repo.object_store:
            return
        client, path = get_transport_and_path(
            url, username="x-access-token" if token else None, password=token, quiet=True
        )
        wanted = Ref(f"refs/heads/{branch}".encode())
        progress(f"-----> Fetching {branch} from {_redacted(url)}")
        try:
            result = client.fetch(
                path,
                repo,
                determine_wants=lambda refs, depth=None: [refs[wanted]] if wanted in refs else [],
            )
        except FETCH_ERRORS as exc:
            raise BuildFailed(f"fetch from {_redacted(url)} failed: {_one_line(exc)}") from exc
        tip = result.refs.get(wanted)
        if tip is None:
            raise BuildFailed(f"branch {branch} not found at {_redacted(url)}")
        repo.refs[Ref(f"refs/remotes/origin/{branch}".encode())] = tip
        if ObjectID(commit.encode()) not in repo.object_store:
            raise BuildFailed(
                f"commit {commit[:12]} is not on {branch} at {_redacted(url)} (force-pushed away?)"
            )
    finally:
        repo.close()


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
