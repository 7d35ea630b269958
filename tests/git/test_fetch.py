"""Fetching from an upstream served by C git's `http-backend` on loopback: a branch for the
app, a pull request's ref for its preview, whose objects go to the app's repository and
whose fetched tip is kept in the preview's own (so that destroying the preview leaves
nothing of it behind)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import BuildFailed
from pipeline.git.fetch import FetchLimits, fetch_commit, tracking_ref
from pipeline.git.repo import init_bare, init_borrowing, opened, read_file
from tests.support.apprepo import git
from tests.support.gitserver import GitHttpServer

LIMITS = FetchLimits(seconds=60, max_bytes=50 * 1024 * 1024, read_timeout=30)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "upstream") as server:
        yield server


def quiet(_line: str) -> None:
    pass


def commit_file(work: Path, text: str) -> str:
    (work / "app.txt").write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", text)
    return git(work, "rev-parse", "HEAD").strip()


def ref_of(repo: Path, ref: str) -> str | None:
    with opened(repo) as found:
        sha = found.refs.as_dict().get(ref.encode())
        return sha.decode() if sha else None


def test_tracking_refs_of_branches_and_requests() -> None:
    assert tracking_ref("refs/heads/main") == "refs/remotes/origin/main"
    assert tracking_ref("refs/heads/fix/login") == "refs/remotes/origin/fix/login"
    assert tracking_ref("refs/pull/42/head") == "refs/remotes/origin/pull/42/head"
    assert tracking_ref("refs/merge-requests/7/head") == "refs/remotes/origin/merge-requests/7/head"


def test_a_pull_request_ref_is_fetched_into_the_app_and_tracked_in_the_preview(
    upstream: GitHttpServer, tmp_path: Path
) -> None:
    upstream.create("app")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.name", "Temps Test")
    git(work, "config", "user.email", "test@temps.invalid")
    main = commit_file(work, "main")
    git(work, "push", "-q", str(upstream.push_path("app")), "main:main")
    git(work, "checkout", "-q", "-b", "feature")
    head = commit_file(work, "feature")
    git(work, "push", "-q", str(upstream.push_path("app")), "feature:refs/pull/42/head")
    git(work, "checkout", "-q", "main")
    off = commit_file(work, "elsewhere")
    git(work, "push", "-q", str(upstream.push_path("app")), "main:main")

    app, preview = tmp_path / "app.git", tmp_path / "pr-42--app.git"
    init_bare(app)
    fetch_commit(app, upstream.url("app"), "refs/heads/main", main, None, quiet, LIMITS)
    assert ref_of(app, "refs/remotes/origin/main") == off
    init_borrowing(preview, app)
    ref = "refs/pull/42/head"

    fetch_commit(app, upstream.url("app"), ref, head, None, quiet, LIMITS, preview)

    assert ref_of(preview, "refs/remotes/origin/pull/42/head") == head
    assert ref_of(app, "refs/remotes/origin/pull/42/head") is None, "the app keeps no ref of it"
    assert read_file(preview, head, "app.txt") == b"feature", "read through the app's objects"
    assert not list((preview / "objects" / "pack").glob("*.pack")), "nothing copied"
    with pytest.raises(BuildFailed, match="is not on refs/pull/42/head"):
        fetch_commit(app, upstream.url("app"), ref, off, None, quiet, LIMITS, preview)
    with pytest.raises(BuildFailed, match="refs/pull/43/head not found"):
        fetch_commit(app, upstream.url("app"), "refs/pull/43/head", head, None, quiet, LIMITS)
