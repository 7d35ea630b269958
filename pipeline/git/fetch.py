"""Fetching a commit from the app's upstream repository (webhook deploys), through dulwich: a
branch for the app and its branch previews, a pull (merge) request's ref for its preview."""

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


def tracking_ref(ref: str) -> str:
    """Where a fetched upstream ref is kept: `refs/heads/main` as `refs/remotes/origin/main`,
    `refs/pull/42/head` as `refs/remotes/origin/pull/42/head`."""
    return "refs/remotes/origin/" + ref.removeprefix("refs/heads/").removeprefix("refs/")


def fetch_commit(
    repo_path: Path,
    url: str,
    ref: str,
    commit: str,
    token: str | None,
    progress: Callable[[str], None],
    limits: FetchLimits,
    tracked_in: Path | None = None,
) -> None:
    """Fetch `ref` (`refs/heads/main`, `refs/pull/42/head`) into the repository at
    `repo_path`, and keep its tip as `tracking_ref(ref)` in the one at `tracked_in` (the same
    by default; a preview's, whose objects are its app's); `commit` must be reachable from it.

    The named commit may be older than the tip, but not off it: a delivery naming a commit
    the ref no longer leads to (a replay of an old one, say) deploys nothing.
    """
    budget = _Budget(limits.seconds, limits.max_bytes)
    what = ref.removeprefix("refs/heads/")
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
        wanted = Ref(ref.encode())
        progress(f"-----> Fetching {what} from {_redacted(url)}")
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
            raise BuildFailed(f"{ref} not found at {_redacted(url)}")
        if tracked_in is None:
            repo.refs[Ref(tracking_ref(ref).encode())] = tip
        named = ObjectID(commit.encode())
        on_it = named in repo.object_store and _reachable(repo, named, tip)
    if tracked_in is not None:
        with opened(tracked_in) as tracking:
            tracking.refs[Ref(tracking_ref(ref).encode())] = tip
    if not on_it:
        raise BuildFailed(
            f"commit {commit[:12]} is not on {what} at {_redacted(url)} (force-pushed away?)"
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
