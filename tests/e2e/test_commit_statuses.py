"""End to end, commit statuses: an app set to report to a stand-in for GitHub's status API on
loopback (a seam temps does not own) reports each deploy on its commit, through the real
daemon, dockerd, Traefik and `git push`.

What a user checks: a pushed branch's preview posts pending, then success with the
preview's URL, on the branch's commit; a branch whose build fails posts pending, then
failure with the reason; main's own deploys report under their own context; the token is
set once and never shown or logged; the settings are read, changed and turned off through
the API and the CLI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_previews import preview_of
from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import push_ok
from tests.support.credentials import admin
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.statusapi import Posted, StatusAPI

pytestmark = pytest.mark.docker

DEADLINE = 120.0  # for anything the tests wait on; seconds of work when all is well
PREVIEWS_ON = {"preview": {"enabled": True}}
TOKEN = "ghp_e2e-status-token-never-shown-0123456789"


@pytest.fixture(scope="module")
def api() -> Iterator[StatusAPI]:
    with StatusAPI() as stand_in:
        yield stand_in


def report_to(daemon: TempsDaemon, app: str, api: StatusAPI) -> dict[str, Any]:
    body = {"provider": "github", "repository": "acme/shop", "token": TOKEN, "api_url": api.url}
    response = admin(daemon, "PUT", f"/api/apps/{app}/statuses", json=body)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def push_branch(
    daemon: TempsDaemon, repo: Path, app: str, branch: str, version: str, extra: Sequence[str] = ()
) -> tuple[str, int, str]:
    """Commit `version` on `branch` (made from main) and push it: (commit, exit code, output)."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    try:
        commit = make_app_repo(repo, version, settings=PREVIEWS_ON, dockerfile_extra=extra)
        code, output = git_push(repo, daemon.git_url(app), refspec=f"{branch}:{branch}")
    finally:
        git(repo, "checkout", "-q", "main")
    return commit, code, output


def statuses_of(api: StatusAPI, commit: str, context: str, count: int) -> list[Posted]:
    """The statuses posted on `commit` under `context`, once `count` have come (or the
    deadline has passed)."""

    def mine(posted: list[Posted]) -> list[Posted]:
        return [
            p
            for p in posted
            if p.path == f"/repos/acme/shop/statuses/{commit}" and p.body["context"] == context
        ]

    return mine(api.wait_for(lambda posted: len(mine(posted)) >= count, DEADLINE))


def test_a_preview_reports_pending_then_success_and_a_failed_build_failure(
    temps_daemon: TempsDaemon, api: StatusAPI, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "shop"
    daemon.create_app(app)
    report_to(daemon, app, api)
    repo = tmp_path / app
    main = push_ok(daemon, repo, app, "v1", settings=PREVIEWS_ON)
    own = statuses_of(api, main, "temps/deploy", 2)
    assert [p.body["state"] for p in own] == ["pending", "success"], own
    assert own[1].body["target_url"] == f"http://{app}.{daemon.domain}"

    commit, code, output = push_branch(daemon, repo, app, "feature-x", "v101")
    assert code == 0, output
    name = preview_of(daemon, app, "feature-x")["name"]
    url = f"http://{name}.{daemon.domain}"
    pending, success = statuses_of(api, commit, "temps/preview", 2)
    assert pending.body == {
        "state": "pending",
        "target_url": url,
        "description": "v1 is deploying",
        "context": "temps/preview",
    }
    assert success.body == {
        "state": "success",
        "target_url": url,
        "description": f"v1 is live at {url}",
        "context": "temps/preview",
    }
    assert success.headers["authorization"] == f"Bearer {TOKEN}"
    assert success.headers["accept"] == "application/vnd.github+json"
    assert success.headers["x-github-api-version"] == "2022-11-28"

    broken, code, output = push_branch(daemon, repo, app, "broken", "v201", ["RUN false"])
    assert code != 0, output
    pending, failure = statuses_of(api, broken, "temps/preview", 2)
    assert pending.body["state"] == "pending"
    assert failure.body["state"] == "failure"
    description = failure.body["description"]
    assert description.startswith("v1 failed while building: "), description
    assert len(description) <= 140
    failed_preview = preview_of(daemon, app, "broken")["name"]
    assert failure.body["target_url"] == f"http://{failed_preview}.{daemon.domain}"

    # A preview reports with its app's settings, and has none of its own to set.
    seen = admin(daemon, "GET", f"/api/apps/{name}/statuses").json()
    assert (seen["settings_of"], seen["repository"], seen["token_set"]) == (app, "acme/shop", True)
    body = {"provider": "github", "repository": "acme/other", "token": TOKEN}
    response = admin(daemon, "PUT", f"/api/apps/{name}/statuses", json=body)
    assert response.status_code == 409, response.text

    log = daemon.log_path.read_text(errors="replace")
    assert '"status.sent"' in log and TOKEN not in log


def test_the_settings_are_set_read_and_turned_off_and_the_token_never_comes_back(
    temps_daemon: TempsDaemon, api: StatusAPI, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "settings"
    daemon.create_app(app)
    path = f"/api/apps/{app}/statuses"
    off = admin(daemon, "GET", path).json()
    assert (off["provider"], off["token_set"]) == (None, False)

    # No repository given, and no upstream to take it from: a clear 422.
    response = admin(daemon, "PUT", path, json={"provider": "github", "token": TOKEN})
    assert response.status_code == 422, response.text
    assert "repository" in response.json()["detail"], response.text
    for bad in (
        {"provider": "bitbucket", "repository": "a/b", "token": TOKEN},
        {"provider": "github", "repository": "a/b/c", "token": TOKEN},
        {"provider": "github", "repository": "a/b", "token": TOKEN, "api_url": "ftp://x"},
    ):
        response = admin(daemon, "PUT", path, json=bad)
        assert response.status_code == 422, f"{bad}: {response.text}"

    # Taken from the upstream the webhooks fetch from.
    source = {"repo_url": "https://github.com/acme/settings.git", "branch": "main"}
    assert admin(daemon, "PUT", f"/api/apps/{app}/source", json=source).status_code == 200
    response = admin(daemon, "PUT", path, json={"provider": "github", "token": TOKEN})
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["repository"] == "acme/settings"
    assert view["api_url"] == "https://api.github.com" and view["token_set"] is True
    assert TOKEN not in response.text and TOKEN not in admin(daemon, "GET", path).text

    # The CLI: the token from the environment, never the command line.
    env = daemon.cli_env() | {"TEMPS_STATUS_TOKEN": "glpat-from-the-env"}
    words = ("statuses", app, "set", "gitlab", "acme/web/settings", "--api-url", api.url)
    done = cli(tmp_path, env, *words)
    assert "gitlab acme/web/settings at " + api.url in done.stdout, done.stdout
    shown = cli(tmp_path, daemon.cli_env(), "statuses", app)
    assert "token set" in shown.stdout and "glpat" not in shown.stdout, shown.stdout
    done = cli(tmp_path, daemon.cli_env(), "statuses", app, "off")
    assert "reports no commit statuses" in done.stdout, done.stdout
    off = admin(daemon, "GET", path).json()
    assert (off["provider"], off["repository"], off["token_set"]) == (None, None, False)


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(TEMPS_BIN), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, f"temps {' '.join(args)}: {done.stdout}{done.stderr}"
    return done
