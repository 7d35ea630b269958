"""End to end, the limits of review apps: a preview idle past main's `[preview] ttl` is
destroyed by the daemon, and a push that would make one preview too many is refused (or, with
`on_max = "evict"`, first destroys the preview idle longest), through the real daemon,
dockerd, Traefik and `git push`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.e2e.test_destroy import assert_nothing_left
from tests.e2e.test_previews import assert_preview_serves, preview_of, previews
from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import push_ok
from tests.support.daemon import TempsDaemon, running_daemon

pytestmark = pytest.mark.docker

DEADLINE = 120.0  # for anything the tests wait on; seconds of work when all is well
# The daemon looks for idle previews twice a second.
TEMPS_SERVE_ARGS = ["--preview-check-interval", "0.5"]

Settings = Mapping[str, Mapping[str, object]]


def push_branch(
    daemon: TempsDaemon, repo: Path, app: str, branch: str, version: str, settings: Settings
) -> tuple[int, str]:
    """Commit `version` on `branch` (made from main the first time) and push the branch:
    git's exit code and output."""
    if git(repo, "branch", "--list", branch).strip():
        git(repo, "checkout", "-q", branch)
    else:
        git(repo, "checkout", "-q", "-b", branch, "main")
    try:
        make_app_repo(repo, version, settings=settings)
        return git_push(repo, daemon.git_url(app), refspec=f"{branch}:{branch}")
    finally:
        git(repo, "checkout", "-q", "main")


def pushed_ok(
    daemon: TempsDaemon, repo: Path, app: str, branch: str, version: str, settings: Settings
) -> str:
    code, output = push_branch(daemon, repo, app, branch, version, settings)
    assert code == 0, f"push of {branch} failed (exit {code}):\n{output}"
    return output


def test_an_idle_preview_expires_and_one_pushed_meanwhile_is_kept(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "brief"
    settings: Settings = {"preview": {"enabled": True, "ttl": "3s"}}
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", settings=settings)
    pushed_ok(daemon, repo, app, "idle", "v101", settings)
    pushed_ok(daemon, repo, app, "busy", "v201", settings)
    idle, busy = preview_of(daemon, app, "idle")["name"], preview_of(daemon, app, "busy")["name"]

    # "busy" is pushed again (and again) while "idle" waits for its ttl.
    deadline, version = time.monotonic() + DEADLINE, 202
    while True:
        output = pushed_ok(daemon, repo, app, "busy", f"v{version}", settings)
        # Deployed by the preview it had, never made again: it was kept all along.
        assert f"preview of busy: http://{busy}." in output, output
        assert "is previewed as the app" not in output, output
        version += 1
        if idle not in {p["name"] for p in previews(daemon, app)}:
            break
        assert time.monotonic() < deadline, f"{idle} is still there: {previews(daemon, app)}"
    assert_nothing_left(daemon, idle, timeout=DEADLINE)

    # The branch stays: pushing it again makes its preview again.
    heads = git(repo, "ls-remote", daemon.git_url(app), "refs/heads/idle")
    assert "refs/heads/idle" in heads, heads
    output = pushed_ok(daemon, repo, app, "idle", "v102", settings)
    assert f"is previewed as the app {idle}" in output, output

    # Left alone, both go, and the app stays.
    assert_nothing_left(daemon, busy, timeout=DEADLINE)
    assert_nothing_left(daemon, idle, timeout=DEADLINE)
    assert daemon.get_app_page(app).status_code == 200


def test_a_new_branch_past_the_apps_max_is_refused_or_evicts_the_idlest(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "capped"
    refuse: Settings = {"preview": {"enabled": True, "max": 1}}
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", settings=refuse)
    pushed_ok(daemon, repo, app, "one", "v101", refuse)
    first = preview_of(daemon, app, "one")["name"]

    code, output = push_branch(daemon, repo, app, "two", "v201", refuse)
    assert code != 0, output
    assert "capped has 1 previews, its max ([preview] max = 1)" in output, output
    assert f"{first}  one  " in output, output
    assert [p["branch"] for p in previews(daemon, app)] == ["one"]

    # An update of a preview at the cap deploys.
    pushed_ok(daemon, repo, app, "one", "v102", refuse)
    assert_preview_serves(daemon, first, "v102", 2)

    evict: Settings = {"preview": {"enabled": True, "max": 1, "on_max": "evict"}}
    push_ok(daemon, repo, app, "v2", settings=evict)
    output = pushed_ok(daemon, repo, app, "two", "v202", evict)
    assert f"destroying {first} (one), idle longest" in output, output
    assert_nothing_left(daemon, first, timeout=DEADLINE)
    second = preview_of(daemon, app, "two")["name"]
    assert_preview_serves(daemon, second, "v202", 1)
    assert [p["branch"] for p in previews(daemon, app)] == ["two"]


def test_the_daemons_max_previews_refuses_across_apps(busybox_image: str, tmp_path: Path) -> None:
    settings: Settings = {"preview": {"enabled": True}}
    with running_daemon(tmp_path / "home", "preview-limits-max", ["--max-previews", "1"]) as daemon:
        for app in ("left", "right"):
            daemon.create_app(app)
            push_ok(daemon, tmp_path / app, app, "v1", settings=settings)
        pushed_ok(daemon, tmp_path / "left", "left", "topic", "v101", settings)
        code, output = push_branch(daemon, tmp_path / "right", "right", "topic", "v201", settings)
        assert code != 0, output
        assert "(--max-previews 1)" in output, output
        assert previews(daemon, "right") == []
        # The preview there is still updated.
        pushed_ok(daemon, tmp_path / "left", "left", "topic", "v102", settings)
        assert_preview_serves(daemon, preview_of(daemon, "left", "topic")["name"], "v102", 2)
