"""End to end, review apps: with `[preview]` on in main's temps.toml, a pushed branch deploys
as a preview of the app at `<branch slug>--<app>.<domain>`, through the real daemon, dockerd,
Traefik and `git push`.

What a user checks: the app's production host answers every request (2xx) while branches
are pushed, pushed again and deleted; each preview answers at its own host with its own
commit, whatever the branch is named; a second push to a branch is a blue-green deploy of
its preview; deleting the branch leaves nothing of the preview; the previews are listed; and
an app without `[preview]` deploys nothing for a branch, as before.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import temps
from tests.e2e.test_destroy import assert_nothing_left, destroy, leftovers
from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import assert_no_failures, assert_serves, push_ok, under_load
from tests.support.credentials import admin
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import container_names, docker
from tests.support.load import LoadGenerator, version_of

pytestmark = pytest.mark.docker

PREVIEWS_ON = {"preview": {"enabled": True}}
# Slashes, capitals and underscores, 80 characters in all: cut and hashed into one DNS label.
LONG_BRANCH = "Feature/Checkout_Flow/" + "Very-Long-Name" * 4
LONG_BRANCH += "X" * (80 - len(LONG_BRANCH))
DNS_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def previews(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    response = admin(daemon, "GET", f"/api/apps/{app}/previews")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def preview_of(daemon: TempsDaemon, app: str, branch: str) -> dict[str, Any]:
    found = [p for p in previews(daemon, app) if p["branch"] == branch]
    assert len(found) == 1, f"previews of {app}: {previews(daemon, app)}"
    return found[0]


def push_branch(
    daemon: TempsDaemon, repo: Path, app: str, branch: str, version: str
) -> tuple[str, str]:
    """Commit `version` on `branch` (made from main the first time) and push the branch; it
    must deploy its preview. (The commit, the push's output.)"""
    if git(repo, "branch", "--list", branch).strip():
        git(repo, "checkout", "-q", branch)
    else:
        git(repo, "checkout", "-q", "-b", branch, "main")
    try:
        commit = make_app_repo(repo, version, settings=PREVIEWS_ON)
        code, output = git_push(repo, daemon.git_url(app), refspec=f"{branch}:{branch}")
    finally:
        git(repo, "checkout", "-q", "main")
    assert code == 0, f"push of {branch} failed (exit {code}):\n{output}"
    return commit, output


def assert_preview_serves(daemon: TempsDaemon, name: str, version: str, release: int) -> None:
    response = daemon.get_app_page(name)
    assert response.status_code == 200, f"{name}: HTTP {response.status_code}"
    assert version_of(response.text) == version, f"{name} serves {response.text[:80]!r}"
    assert response.headers.get("x-temps-release") == f"v{release}"


def test_branches_deploy_as_previews_while_the_app_serves(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "shop"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", settings=PREVIEWS_ON)
    production = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", rate=60, max_seconds=1800)
    production.start()
    try:
        time.sleep(0.5)
        versions = {"feature-a": "v101", "fix/Login_Page": "v201", LONG_BRANCH: "v301"}
        commits = {}
        for branch, version in versions.items():
            commits[branch], output = push_branch(daemon, repo, app, branch, version)
            name = preview_of(daemon, app, branch)["name"]
            assert f"http://{name}.{daemon.domain}" in output, output
        names = {branch: preview_of(daemon, app, branch)["name"] for branch in versions}
        assert names["feature-a"] == "feature-a--shop"
        assert names["fix/Login_Page"] == "fix-login-page--shop"
        long_name = names[LONG_BRANCH]
        assert len(long_name) <= 63 and set(long_name) <= DNS_LABEL_CHARS, long_name
        assert long_name.startswith("feature-checkout-flow-") and long_name.endswith("--shop")
        for branch, version in versions.items():
            assert_preview_serves(daemon, names[branch], version, 1)
        assert_serves(daemon, app, "v1", 1)
        listed = previews(daemon, app)
        assert [p["branch"] for p in listed] == list(versions)
        assert all(p["live_release"]["number"] == 1 for p in listed)
        assert [p["live_release"]["commit"] for p in listed] == list(commits.values())

        # A second push to a branch: blue-green on the preview, under its own load.
        with under_load(daemon, names["feature-a"]) as preview_load:
            push_branch(daemon, repo, app, "feature-a", "v102")
        assert_no_failures(preview_load.summary())
        assert_preview_serves(daemon, names["feature-a"], "v102", 2)
        second, first = daemon.releases(names["feature-a"])[:2]
        assert (second["strategy"], second["state"]) == ("blue-green", "live"), second
        assert first["state"] == "retired", first

        # Deleting a branch destroys its preview, and nothing else.
        code, output = git_push(repo, daemon.git_url(app), refspec=":fix/Login_Page")
        assert code == 0, output
        assert_nothing_left(daemon, names["fix/Login_Page"], timeout=60)
        assert [p["branch"] for p in previews(daemon, app)] == ["feature-a", LONG_BRANCH]
        assert_preview_serves(daemon, names["feature-a"], "v102", 2)
        assert_preview_serves(daemon, names[LONG_BRANCH], "v301", 1)
        time.sleep(0.5)
    finally:
        production.stop()
    assert_no_failures(production.summary())
    assert_serves(daemon, app, "v1", 1)


def test_a_branch_of_an_app_without_previews_deploys_nothing(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "plain"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1")
    git(repo, "checkout", "-q", "-b", "feature-x")
    make_app_repo(repo, "v901")
    code, output = git_push(repo, daemon.git_url(app), refspec="feature-x:feature-x")
    assert code == 0, output
    assert "only main deploys; refs/heads/feature-x stored, not deployed" in output
    assert previews(daemon, app) == []
    assert leftovers(daemon, "feature-x--plain")["records"] == {
        "apps": 0,
        "releases": 0,
        "tokens": 0,
    }
    assert container_names("label=temps.app=feature-x--plain") == []
    assert_serves(daemon, app, "v1", 1)


def test_destroying_the_app_destroys_its_previews(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cart"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", settings=PREVIEWS_ON)
    push_branch(daemon, repo, app, "feature-z", "v501")
    name = preview_of(daemon, app, "feature-z")["name"]
    assert_preview_serves(daemon, name, "v501", 1)

    response = destroy(daemon, app, app)

    assert response.status_code == 200, response.text
    assert_nothing_left(daemon, name)
    assert_nothing_left(daemon, app)


WORKER_PROCFILE = 'web: exec httpd -f -p "$PORT" -h /www\nworker: exec sleep 100000\n'


def test_a_preview_runs_web_only_is_listed_rolls_back_and_runs_commands(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, config = temps_daemon, "notes", tmp_path / "config"
    daemon.create_app(app)
    repo = tmp_path / app
    make_app_repo(repo, "v1", settings=PREVIEWS_ON, procfile=WORKER_PROCFILE)
    git(repo, "remote", "add", "temps", daemon.git_url(app, daemon.admin_token))
    code, output = git_push(repo, "temps")
    assert code == 0, output
    git(repo, "checkout", "-q", "-b", "topic")
    first = make_app_repo(repo, "v601", settings=PREVIEWS_ON, procfile=WORKER_PROCFILE)
    code, output = git_push(repo, "temps", refspec="topic:topic")
    assert code == 0, output
    name = preview_of(daemon, app, "topic")["name"]
    assert_preview_serves(daemon, name, "v601", 1)

    running = ("status=running", "label=temps.home=" + str(daemon.home.resolve()))
    assert len(container_names(f"label=temps.app={app}", *running)) == 2, "web and worker"
    assert len(container_names(f"label=temps.app={name}", *running)) == 1, "web only"
    formation = admin(daemon, "GET", f"/api/apps/{name}/formation").json()
    assert formation["live_formation"] == {"web": 1, "worker": 0}, formation

    listed = temps("previews", cwd=repo, config=config).stdout
    assert re.search(rf"^topic\s+\d+s\s+v1\s+{first[:12]}\s+http://{name}\.", listed, re.M), listed
    with httpx.Client(base_url=daemon.api_url, timeout=30) as dashboard:
        signed_in = dashboard.post(
            "/dashboard/login", data={"token": daemon.admin_token, "next": "/dashboard"}
        )
        assert signed_in.status_code == 303, signed_in.text
        page = dashboard.get(f"/dashboard/apps/{app}").text
    assert '<table class="table previews">' in page and f"/dashboard/apps/{name}" in page
    assert first[:12] in page

    make_app_repo(repo, "v602", settings=PREVIEWS_ON, procfile=WORKER_PROCFILE)
    code, output = git_push(repo, "temps", refspec="topic:topic")
    assert code == 0, output
    assert_preview_serves(daemon, name, "v602", 2)
    rolled = temps("rollback", "-a", name, cwd=repo, config=config).stdout
    assert "v3" in rolled, rolled
    assert_preview_serves(daemon, name, "v601", 3)
    ran = temps("run", "-a", name, "--", "cat", "/www/index.html", cwd=repo, config=config)
    assert ran.stdout.strip() == "version v601", ran.stdout


def test_branches_of_one_slug_and_taken_names_get_distinct_previews(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "twins"
    daemon.create_app(app)
    daemon.create_app("feature-b--twins")  # a user's app holds the name first
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", settings=PREVIEWS_ON)
    versions = {"feature/a": "v701", "Feature-A": "v702", "feature-b": "v703"}
    for branch, version in versions.items():
        push_branch(daemon, repo, app, branch, version)
    names = {branch: preview_of(daemon, app, branch)["name"] for branch in versions}
    assert names["feature/a"] == "feature-a--twins"
    assert re.fullmatch(r"feature-a-[0-9a-f]{8}--twins", names["Feature-A"]), names
    assert re.fullmatch(r"feature-b-[0-9a-f]{8}--twins", names["feature-b"]), names
    for branch, version in versions.items():
        assert_preview_serves(daemon, names[branch], version, 1)

    # A preview's name is taken for users too; its own repository takes no push.
    taken = admin(daemon, "POST", "/api/apps", json={"name": "feature-a--twins"})
    assert taken.status_code == 409, taken.text
    code, output = git_push(repo, daemon.git_url(names["feature/a"]), refspec="+main:main")
    assert code != 0 and "push that branch to twins.git" in output, output
    assert_preview_serves(daemon, names["feature/a"], "v701", 1)


def env_of(app: str, repo: Path, config: Path) -> dict[str, str]:
    """The environment a one-off container of the app's live release sees."""
    ran = temps("run", "-a", app, "--", "env", cwd=repo, config=config).stdout
    return dict(line.split("=", 1) for line in ran.splitlines() if "=" in line)


def test_a_preview_inherits_no_secret_sets_up_once_and_obeys_its_apps_token(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, config = temps_daemon, "crm", tmp_path / "config"
    daemon.create_app(app)
    repo = tmp_path / app
    # The setup needs a file the branch's first commit lacks: it fails once, then succeeds.
    preview = {
        "enabled": True,
        "secrets": ["SHARED_SANDBOX_KEY"],
        "env": {"STAGE": "preview"},
        "resources": {"memory_mb": 128},
        "setup": 'test -f /www/seed || exit 3; echo "setup ran on $STAGE, db=${DATABASE_URL:-no}"',
    }
    settings = {"preview": preview}
    make_app_repo(repo, "v1", settings=settings)
    git(repo, "remote", "add", "temps", daemon.git_url(app, daemon.admin_token))
    code, output = git_push(repo, "temps")
    assert code == 0, output
    temps(
        "config", "set", "-a", app, "PUBLIC_NAME=crm", "STAGE=production", cwd=repo, config=config
    )
    marked = temps(
        "config",
        "set",
        "-a",
        app,
        "--secret",
        "DATABASE_URL=postgres://prod",
        "SHARED_SANDBOX_KEY=sandbox",
        cwd=repo,
        config=config,
    ).stdout
    assert "DATABASE_URL=<hidden" in marked and "(secret)" in marked, marked
    temps("config", "set", "-a", app, "STRIPE_TOKEN=sk_live_1", cwd=repo, config=config)

    git(repo, "checkout", "-q", "-b", "crm-redesign")
    make_app_repo(repo, "v701", settings=settings)
    code, output = git_push(repo, "temps", refspec="crm-redesign:crm-redesign")
    assert code != 0 and "setup command exited with code 3" in output, output
    name = preview_of(daemon, app, "crm-redesign")["name"]
    assert preview_of(daemon, app, "crm-redesign")["live_release"] is None

    (repo / "www" / "seed").write_text("seed\n")
    make_app_repo(repo, "v702", settings=settings)
    code, output = git_push(repo, "temps", refspec="crm-redesign:crm-redesign")
    assert code == 0, output
    assert "setup ran on preview, db=no" in output, output
    assert_preview_serves(daemon, name, "v702", 2)

    make_app_repo(repo, "v703", settings=settings)
    code, output = git_push(repo, "temps", refspec="crm-redesign:crm-redesign")
    assert code == 0, output
    assert "setup ran" not in output and "setup command" not in output, output
    assert_preview_serves(daemon, name, "v703", 3)
    git(repo, "checkout", "-q", "main")

    running = ("status=running", "label=temps.home=" + str(daemon.home.resolve()))
    for owner, mib in ((name, 128), (app, 1024)):  # [preview.resources], and the default
        for container in container_names(f"label=temps.app={owner}", *running):
            memory = docker("inspect", "-f", "{{.HostConfig.Memory}}", container).strip()
            assert memory == str(mib * 2**20), (container, memory)

    seen = env_of(name, repo, config)
    assert seen["PUBLIC_NAME"] == "crm" and seen["STAGE"] == "preview", seen
    assert seen["SHARED_SANDBOX_KEY"] == "sandbox", seen  # marked, and named in [preview]
    assert "DATABASE_URL" not in seen and "STRIPE_TOKEN" not in seen, seen
    production = env_of(app, repo, config)
    assert production["DATABASE_URL"] == "postgres://prod", production
    assert production["STAGE"] == "production", production

    # The app's deploy token acts on its previews, and on no other app.
    made = admin(
        daemon, "POST", "/api/tokens", json={"name": "crm-ci", "scope": "deploy", "app": app}
    )
    assert made.status_code == 201, made.text
    ci = {"Authorization": f"Bearer {made.json()['token']}"}
    with httpx.Client(base_url=daemon.api_url, headers=ci, timeout=120) as api:
        rolled = api.post(f"/api/apps/{name}/rollback?wait=true")
        assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
        assert api.get(f"/api/apps/{name}/releases").status_code == 200
        assert api.get("/api/apps/shop/releases").status_code == 403
        assert api.get("/api/apps/no-such-app/releases").status_code == 403
    assert_preview_serves(daemon, name, "v702", 4)
