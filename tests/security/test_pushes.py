"""Git edge cases: a shallow push, push options, other branches, deleting main, a force
push, trees that leave themselves, no Dockerfile, an empty repository, and `temps.toml`
values the parser lets through. A refused push changes nothing and v1 stays live.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.apprepo import git, git_push, make_app_repo, remote_main, run_git
from tests.support.authmatrix import GIT_SERVICES
from tests.support.checks import rejection, same_commit, states
from tests.support.credentials import basic
from tests.support.daemon import TempsDaemon
from tests.support.liveapp import Snapshot, assert_serves_v1, assert_unchanged, clone, deploy_v1

pytestmark = pytest.mark.docker


def test_a_shallow_push_is_refused_with_the_way_out(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "shallow"
    repo = tmp_path / app
    make_app_repo(repo, "v0")  # a parent, so that a clone of depth 1 is shallow
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    shallow = clone(daemon, app, tmp_path / "clone", "--depth", "1")
    assert run_git(shallow, "rev-parse", "--is-shallow-repository")[1].strip() == "true"
    make_app_repo(shallow, "v2")

    code, output = git_push(shallow, daemon.git_url(app))

    assert code != 0, f"a shallow push was accepted:\n{output}"
    assert "fetch --unshallow" in output, output
    # git reports a server error as "RPC failed; HTTP 500"; the URL's port may hold "500"
    assert "HTTP 500" not in output and "Internal Server Error" not in output, output
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


@pytest.mark.parametrize(
    ("app", "push", "said"),
    [
        ("pushopts", ("-o", "ci.skip", "main:main"), r"does not support push options"),
        (
            "keepmain",
            (":refs/heads/main",),
            r"\[remote rejected\] main \(.*deleting main is not allowed.*\)",
        ),
    ],
    ids=["push-options-get-a-clear-client-error", "deleting-main-is-refused"],
)
def test_a_push_git_can_send_but_temps_does_not_take_is_refused_clearly(
    daemon: TempsDaemon, tmp_path: Path, app: str, push: tuple[str, ...], said: str
) -> None:
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    make_app_repo(repo, "v2")
    *options, refspec = push
    code, output = run_git(repo, "push", *options, daemon.git_url(app), refspec)
    assert code != 0, output
    assert re.search(said, output), output
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_a_push_to_another_branch_is_stored_not_deployed(
    daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "branches"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    commit = make_app_repo(repo, "v2")
    code, output = run_git(repo, "push", daemon.git_url(app), "HEAD:refs/heads/feature")
    assert code == 0, output
    assert "only main deploys" in output, output
    code, refs = run_git(repo, "ls-remote", daemon.git_url(app), "refs/heads/feature")
    assert code == 0 and refs.split()[0] == commit, refs
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_a_force_push_deploys_and_is_recorded(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "forced"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    make_app_repo(repo, "v2")
    assert git_push(repo, daemon.git_url(app))[0] == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    rewritten = make_app_repo(repo, "v3")
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0, f"a non-fast-forward push without --force went through:\n{output}"

    code, output = run_git(repo, "push", "--force", daemon.git_url(app), "main:main")

    assert code == 0, output
    assert "forced update" in output, output
    assert same_commit(remote_main(daemon.git_url(app)), rewritten)
    release = daemon.release(app, 3)
    assert release["state"] == "live", release["state"]
    assert any("Force push" in line for line in release["log"]), release["log"]
    assert not any("Force push" in line for line in daemon.release(app, 2)["log"])


@pytest.mark.parametrize("target", ["/etc/passwd", "../../x"])
def test_a_symlink_out_of_the_tree_is_refused(
    daemon: TempsDaemon, tmp_path: Path, target: str
) -> None:
    app = "link-abs" if target.startswith("/") else "link-up"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    (repo / "www" / "leak").symlink_to(target)
    make_app_repo(repo, "v2")
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason, f"a tree with a symlink to {target} was accepted:\n{output}"
    assert "symlink" in reason and target in reason and "leaves the tree" in reason, reason
    assert_unchanged(daemon, app, before, failed=1)
    assert daemon.releases(app)[0]["failure_reason"] == reason
    assert_serves_v1(daemon, app)


def test_a_tree_entry_named_dot_dot_is_refused(daemon: TempsDaemon, tmp_path: Path) -> None:
    """git's own commands never write such a tree, but a hand-made one is easy to push."""
    app = "dotdot"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)

    def hash_object(data: bytes, *args: str) -> str:
        done = subprocess.run(
            ["git", "hash-object", "-w", "--stdin", *args],
            cwd=repo,
            input=data,
            capture_output=True,
            timeout=30,
            check=True,
        )
        return done.stdout.decode().strip()

    dockerfile = hash_object((repo / "Dockerfile").read_bytes())
    payload = hash_object(b"outside\n")
    tree = b"".join(
        f"100644 {name}\0".encode() + bytes.fromhex(sha)
        for name, sha in (("..", payload), ("Dockerfile", dockerfile))
    )
    tree_sha = hash_object(tree, "-t", "tree", "--literally")
    commit = git(repo, "commit-tree", tree_sha, "-p", "HEAD", "-m", "dot dot").strip()
    code, output = run_git(repo, "push", daemon.git_url(app), f"{commit}:refs/heads/main")
    reason = re.search(r"\[remote rejected\] \S+ -> main \((?P<why>.*)\)", output)
    assert code != 0 and reason, f"a tree with a '..' entry was accepted:\n{output}"
    assert "leaves the tree" in reason.group("why"), output
    assert_unchanged(daemon, app, before, failed=1)
    assert_serves_v1(daemon, app)


def test_a_tree_without_a_dockerfile_is_refused(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "nodocker"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    make_app_repo(repo, "v2", dockerfile=False)
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason, output
    assert reason.startswith("no Dockerfile and no known stack at the root"), output
    assert_unchanged(daemon, app, before, failed=1)
    assert_serves_v1(daemon, app)


def test_an_empty_app_clones_and_takes_its_first_push(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "blank"
    daemon.create_app(app)
    for service in GIT_SERVICES:
        refs = httpx.get(
            f"{daemon.api_url}/{app}.git/info/refs",
            params={"service": service},
            headers=basic(daemon.admin_token),
            timeout=10,
        )
        assert refs.status_code == 200, f"{service}: {refs.status_code} {refs.text[:200]}"
    code, output = run_git(tmp_path, "clone", daemon.git_url(app), str(tmp_path / "first"))
    assert code == 0, output
    assert "empty repository" in output, output

    repo = clone(daemon, app, tmp_path / "clone")
    make_app_repo(repo, "v1")
    code, output = git_push(repo, daemon.git_url(app))

    assert code == 0, output
    assert states(daemon, app) == [(1, "live")]
    assert_serves_v1(daemon, app)


# --- temps.toml values the parser lets through ------------------------------------------------


@pytest.mark.parametrize("setting", ["healthcheck.interval", "resources.cpus"])
def test_a_nan_in_temps_toml_is_refused_naming_the_key(
    daemon: TempsDaemon, tmp_path: Path, setting: str
) -> None:
    """TOML spells NaN `nan`; test_fuzz finds that every float setting accepts it."""
    app = "nan-" + setting.split(".")[1]
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    section, key = setting.split(".")
    make_app_repo(repo, "v2", settings={section: {key: float("nan")}})
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason, f"{setting} = nan was accepted:\n{output}"
    problems = [] if setting in reason else [f"the rejection does not name {setting}: {reason}"]
    try:
        assert_unchanged(daemon, app, before, failed=1)
    except AssertionError as exc:
        problems.append(f"it left something behind: {exc}")
    assert_serves_v1(daemon, app)
    assert not problems, "\n".join(problems)
