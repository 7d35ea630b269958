"""An app live at v1 on a daemon, and the check that a refused action left it as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.apprepo import git, git_push, make_app_repo, remote_main, run_git
from tests.support.checks import states
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import container_names
from tests.support.wait import poll

SETTLE_TIMEOUT = 20.0
NON_TERMINAL = {
    "queued",
    "building",
    "releasing",
    "booting",
    "health_checking",
    "switching",
    "draining",
}


def app_containers(app: str) -> list[str]:
    return container_names(f"label=temps.app={app}")


def deploy_v1(daemon: TempsDaemon, repo: Path, app: str, **opts: Any) -> str:
    """Create the app, push v1 and wait until it is live; returns the commit."""
    daemon.create_app(app)
    commit = make_app_repo(repo, "v1", **opts)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of v1 failed (exit {code}):\n{output}"
    return commit


def clone(daemon: TempsDaemon, app: str, dest: Path, *args: str) -> Path:
    """`git clone` of the app into `dest`, ready to commit on main."""
    code, output = run_git(dest.parent, "clone", *args, daemon.git_url(app), str(dest))
    assert code == 0, output
    git(dest, "config", "user.name", "Temps Test")
    git(dest, "config", "user.email", "test@temps.invalid")
    git(dest, "symbolic-ref", "HEAD", "refs/heads/main")
    return dest


@dataclass
class Snapshot:
    """What a refused or failed action must leave as it was."""

    states: list[tuple[int, str]]
    containers: list[str]
    main: str | None

    @classmethod
    def of(cls, daemon: TempsDaemon, app: str) -> Snapshot:
        return cls(states(daemon, app), app_containers(app), remote_main(daemon.git_url(app)))


def assert_unchanged(daemon: TempsDaemon, app: str, before: Snapshot, failed: int = 0) -> None:
    """Nothing changed but, optionally, `failed` new releases that all ended `failed`."""
    after = poll(
        lambda: Snapshot.of(daemon, app),
        lambda s: (
            s.containers == before.containers
            and all(state not in NON_TERMINAL for _n, state in s.states)
        ),
        timeout=SETTLE_TIMEOUT,
        interval=0.2,
    )
    new = after.states[: len(after.states) - len(before.states)]
    assert after.states[len(new) :] == before.states, f"releases before {before.states}: {after}"
    assert len(new) == failed and all(state == "failed" for _n, state in new), (
        f"new releases {new}, expected {failed} failed one(s)"
    )
    assert after.containers == before.containers, f"containers {before.containers} -> {after}"
    assert after.main == before.main, f"main moved: {before.main} -> {after.main}"


def assert_serves_v1(daemon: TempsDaemon, app: str) -> None:
    response = daemon.get_app_page(app)
    assert response.status_code == 200 and "version v1" in response.text, (
        f"{app}: HTTP {response.status_code} {response.text[:100]!r}"
    )
