"""End to end: repositories without a Dockerfile, built by the Dockerfile temps makes for
their stack, pushed with the real git to a real daemon, dockerd and Traefik.

The base images are made on this machine from Debian's packages (tests/support/stackimages)
and given to the daemon by --base-images; the apps' dependencies ship in their repositories
(tests/support/stackapps). Each stack's app builds first on a copy of its base image under a
new ID, named by its own temps.toml (`[build] image`), so that its first build is cold and
its second, of a code change, is measured against it. Build times are printed, never
asserted: the machine is shared.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apprepo import git, git_push
from tests.support.checks import assert_no_failures, rejection, remote_lines, under_load
from tests.support.daemon import (
    APP_HOME_IDS,
    MANY_FAILURES,
    TEMPS_BIN,
    TempsDaemon,
    container_name,
)
from tests.support.dockercli import docker, remove_app_images
from tests.support.load import version_of
from tests.support.stackapps import (
    DEPENDENCY_STEP,
    GREETING,
    STACKS,
    TEMPS_TOML,
    make_stack_repo,
)
from tests.support.stackimages import STACK_IMAGES, cold_copy, ensure_stack_images, remove_image
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = ["--base-images", STACK_IMAGES, *MANY_FAILURES]
DETECTED = {
    "python": "Python app detected (requirements.txt)",
    "node": "Node app detected (package.json, package-lock.json)",
    "go": "Go app detected (go.mod)",
    "static": "Static site detected (index.html)",
}
APP_USER = "10001"


@pytest.fixture(scope="module")
def stack_images() -> dict[str, str]:
    return ensure_stack_images()


def push(daemon: TempsDaemon, repo: Path, app: str) -> tuple[int, list[str], str, float]:
    """(git's exit code, the daemon's lines, git's whole output, seconds the push took)."""
    started = time.monotonic()
    code, output = git_push(repo, daemon.git_url(app))
    return code, remote_lines(output), output, time.monotonic() - started


def assert_serves(daemon: TempsDaemon, app: str, version: str) -> None:
    def served() -> str | None:
        response = daemon.get_app_page(app)
        return version_of(response.text) if response.status_code == 200 else None

    assert poll(served, lambda seen: seen == version, timeout=30) == version


def assert_cached(lines: list[str], step: str) -> None:
    """The build log shows `step` answered from the cache: `Step N/M : <step>`, then
    `---> Using cache`."""
    at = [i for i, line in enumerate(lines) if line.startswith("Step ") and line.endswith(step)]
    assert at, f"no step {step!r} in the build log:\n" + "\n".join(lines)
    assert lines[at[0] + 1].strip() == "---> Using cache", "\n".join(lines[at[0] : at[0] + 4])


def assert_unprivileged(app: str, number: int) -> None:
    name = container_name(app, number)
    image = docker("inspect", "--format", "{{.Config.Image}}", name).strip()
    user = docker("inspect", "--format", "{{.Config.User}}", image).strip()
    assert user == f"{APP_USER}:{APP_USER}", f"{image} runs as {user!r}"
    assert docker("exec", name, "id", "-u").strip() == APP_USER


def build_seconds(daemon: TempsDaemon, app: str, number: int) -> float:
    """From `building` to the next state, by the release's recorded state changes."""
    return float(daemon.release(app, number)["timings"]["building"])


@pytest.fixture
def cold_base(request: pytest.FixtureRequest, stack_images: dict[str, str]) -> Iterator[str]:
    """The stack's base image under a new ID, so that the app's first build is cold: named
    by the app's own temps.toml ([build] image), and removed after its app's images."""
    stack: str = request.getfixturevalue("stack")
    app = f"stack-{stack}"
    copy = cold_copy(stack_images[stack], f"{stack}-{uuid.uuid4().hex[:8]}")
    yield copy
    if app in APP_HOME_IDS:
        remove_app_images(app, APP_HOME_IDS[app])
    remove_image(copy)


@pytest.mark.parametrize("stack", STACKS)
def test_an_app_without_a_dockerfile_deploys_and_a_code_change_reuses_its_dependencies(
    stack: str, temps_daemon: TempsDaemon, cold_base: str, tmp_path: Path
) -> None:
    app, repo = f"stack-{stack}", tmp_path / stack
    temps_daemon.create_app(app)
    toml = TEMPS_TOML + f'\n[build]\nimage = "{cold_base}"\n'
    make_stack_repo(repo, stack, "v1", toml=toml)
    code, lines, output, first = push(temps_daemon, repo, app)
    assert code == 0, output
    assert f"-----> {DETECTED[stack]}" in lines, output
    assert_serves(temps_daemon, app, "v1")
    assert GREETING[stack] in temps_daemon.get_app_page(app).text
    assert_unprivileged(app, 1)
    if stack == "go":  # the compiler stayed in the build stage
        found = docker(
            "exec", container_name(app, 1), "/bin/sh", "-c", "command -v go || echo none"
        )
        assert found.strip() == "none", found

    assert f"FROM {cold_base}" in "\n".join(lines), output
    make_stack_repo(repo, stack, "v2", toml=toml)  # the code alone changes
    code, lines, output, second = push(temps_daemon, repo, app)
    assert code == 0, output
    if stack in DEPENDENCY_STEP:
        assert_cached(lines, DEPENDENCY_STEP[stack])
    assert_serves(temps_daemon, app, "v2")
    builds = [build_seconds(temps_daemon, app, n) for n in (1, 2)]
    print(
        f"{stack}: push to live {first:.1f} s then {second:.1f} s; "
        f"build {builds[0]:.1f} s (cold) then {builds[1]:.1f} s (code only)"
    )


def temps_cli(daemon: TempsDaemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(TEMPS_BIN), *args],
        env=daemon.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode == 0) == ok, f"temps {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def test_build_show_prints_the_dockerfile_which_ejected_builds_the_same_app(
    temps_daemon: TempsDaemon, stack_images: dict[str, str], tmp_path: Path
) -> None:
    app, repo = "eject", tmp_path / "eject"
    temps_daemon.create_app(app)
    nothing = temps_cli(temps_daemon, "build", "show", "-a", app, ok=False)
    assert "404" in nothing.stderr and "nothing was pushed to eject yet" in nothing.stderr
    first = make_stack_repo(repo, "python", "v1")
    code, lines, output, _ = push(temps_daemon, repo, app)
    assert code == 0, output

    shown = temps_cli(temps_daemon, "build", "show", "-a", app)
    assert DETECTED["python"] in shown.stderr
    assert shown.stdout.startswith("# The Dockerfile temps made for this Python app")
    pushed = [line.strip() for line in shown.stdout.splitlines() if line.strip()]
    assert all(line in lines for line in pushed), "the push showed another Dockerfile"

    (repo / "Dockerfile").write_text(shown.stdout)
    git(repo, "add", "Dockerfile")
    git(repo, "commit", "-q", "-m", "the Dockerfile temps made, ejected")
    code, lines, output, _ = push(temps_daemon, repo, app)
    assert code == 0, output
    assert not any("detected" in line for line in lines), output
    assert_serves(temps_daemon, app, "v1")
    own = temps_cli(temps_daemon, "build", "show", "-a", app)
    assert "the repository's own Dockerfile" in own.stderr
    assert own.stdout == shown.stdout
    before = temps_cli(temps_daemon, "build", "show", "-a", app, "--commit", first[:12])
    assert before.stderr.startswith(f"temps: {first[:12]}: {DETECTED['python']}")


def test_no_stack_and_a_failing_install_are_refused_while_the_live_release_serves(
    temps_daemon: TempsDaemon, stack_images: dict[str, str], tmp_path: Path
) -> None:
    app, repo = "refused", tmp_path / "refused"
    temps_daemon.create_app(app)
    make_stack_repo(repo, "python", "v1")
    code, _, output, _ = push(temps_daemon, repo, app)
    assert code == 0, output
    assert_serves(temps_daemon, app, "v1")

    with under_load(temps_daemon, app) as load:
        git(repo, "rm", "-rq", "requirements.txt", "wheels", "app.py", "Procfile")
        (repo / "README").write_text("nothing here builds\n")
        git(repo, "add", "README")
        git(repo, "commit", "-q", "-m", "no stack")
        code, _, output, _ = push(temps_daemon, repo, app)
        reason = rejection(output) or ""
        assert code != 0, output
        assert reason.startswith("no Dockerfile and no known stack at the root"), output
        for wanted in ("requirements.txt", "package.json", "go.mod", "index.html"):
            assert wanted in reason, reason

        make_stack_repo(repo, "python", "v3")
        requirements = repo / "requirements.txt"
        requirements.write_text(requirements.read_text() + "nosuchpackage==9.9\n")
        git(repo, "commit", "-qam", "a dependency no index has")
        code, lines, output, _ = push(temps_daemon, repo, app)
        reason = rejection(output) or ""
        assert code != 0, output
        assert reason.startswith("build failed:") and "install -r requirements.txt" in reason, (
            output
        )
        assert any("nosuchpackage" in line for line in lines), output
    assert_no_failures(load.summary())
    assert_serves(temps_daemon, app, "v1")
