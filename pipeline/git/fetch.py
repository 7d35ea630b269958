"""Fetching a commit from the app's upstream repository (webhook deploys), through dulwich."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import urllib3
import urllib3.exceptions
from dulwich.client import HTTPUnauthorized, default_urllib3_manager, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.graph import can_fast_forward
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from pipeline.errors import BuildFailed
from pipeline.git import compact
from pipeline.git.repo import opened


@dataclass(frozen=True)
class FetchLimits:
    seconds: float = 300.0  # the whole fetch
    max_bytes: int = 512 * 1024 * 1024  # what the upstream may send
    read_timeout: float = 30.0  # one read with nothing arriving


FETCH_ERRORS = (
    GitProtocolError,
    HangupException,
    NotGitRepository,
    HTTPUnauthorized,
    OSError,
    urllib3.exceptions.HTTPError,
)


class _Budget:
    """What one fetch may take: dulwich reports every read, and a raise here ends the fetch."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds, self.max_bytes, self.read = seconds, max_bytes, 0

    def __call__(self, count: int, direction: str) -> None:
        if direction == "read":
            self.read += count
            if self.read > self.max_bytes:
                raise _OverBudget(f"the upstream sent more than {self.max_bytes} bytes")
        if time.monotonic() > self.deadline:
            raise _OverBudget(f"the fetch took longer than {self.seconds:g}s")


class _OverBudget(Exception):
    pass


def fetch_commit(
    repo_path: Path,
    url: str,
    branch: str,
    commit: str,
    token: str | None,
    progress: Callable[[str], None],
    limits: FetchLimits,
) -> None:
    """Fetch `branch` into refs/remotes/origin/<branch>; `commit` must be reachable from it.

    The named commit may be older than the branch tip, but not off it: a delivery naming a
    commit the branch no longer leads to (a replay of an old one, say) deploys nothing.
    """
    budget = _Budget(limits.seconds, limits.max_bytes)
    with opened(repo_path) as repo:
        client, path = get_transport_and_path(
            url,
            username="x-access-token" if token else None,
            password=token,
            quiet=True,
            report_activity=budget,
            pool_manager=cast(
                urllib3.PoolManager, default_urllib3_manager(None, timeout=limits.read_timeout)
            ),
        )
        wanted = Ref(f"refs/heads/{branch}".encode())
        progress(f"-----> Fetching {branch} from {_redacted(url)}")
        try:
            result = client.fetch(
                path,
                repo,
                determine_wants=lambda refs, depth=None: [refs[wanted]] if wanted in refs else [],
            )
        except (*FETCH_ERRORS, _OverBudget) as exc:
            raise BuildFailed(f"fetch from {_redacted(url)} failed: {_one_line(exc)}") from exc
        tip = result.refs.get(wanted)
        if tip is None:
            raise BuildFailed(f"branch {branch} not found at {_redacted(url)}")
        repo.refs[Ref(f"refs/remotes/origin/{branch}".encode())] = tip
        named = ObjectID(commit.encode())
        if named not in repo.object_store or not _reachable(repo, named, tip):
            raise BuildFailed(
                f"commit {commit[:12]} is not on {branch} at {_redacted(url)} (force-pushed away?)"
            )
    compact.merge_if_many(repo_path)


def _reachable(repo: Repo, commit: ObjectID, tip: ObjectID) -> bool:
    try:
        return commit == tip or can_fast_forward(repo, commit, tip)
    except KeyError:
        return False


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
