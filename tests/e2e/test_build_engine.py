"""End to end: with `--build-engine`, builds run on another Docker engine (a dockerd in a
network namespace of its own, `tests/support/buildengine.py`) and their images reach the
serving engine through the registry; deploys, the gate, the switch and rollbacks are as ever.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.buildengine import BuildHost, build_engine
from tests.support.checks import assert_no_failures, assert_serves, push_ok, under_load
from tests.support.daemon import TempsDaemon, home_id_of, running_daemon

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def builder(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildHost]:
    with build_engine(tmp_path_factory.mktemp("builder")) as started:
        yield started


@pytest.fixture(scope="module")
def daemon(builder: BuildHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempsDaemon]:
    home = tmp_path_factory.mktemp("home-build-engine")
    args = ["--build-engine", builder.url, "--registry", builder.registry]
    with running_daemon(home, "build-engine", args) as started:
        yield started


def test_a_push_builds_on_the_build_engine_and_serves_here(
    daemon: TempsDaemon, builder: BuildHost, tmp_path: Path
) -> None:
    app = "remote"
    daemon.create_app(app)
    repo = tmp_path / app
    commit = push_ok(daemon, repo, app, "v1", dockerfile_extra=["RUN echo built-there"])
    assert_serves(daemon, app, "v1", 1)
    tag = f"temps/{app}:{commit[:12]}-{home_id_of(daemon.home)}"
    there = docker.DockerClient(base_url=builder.url, timeout=60)
    here = docker.from_env(timeout=60)
    try:
        built = there.images.get(f"{builder.registry}/{tag}")
        served = here.images.get(tag)
    finally:
        there.close()
        here.close()
    assert served.labels.get("temps.app") == app
    # Only the app's tag names it here: pruning that tag frees it, as a built image.
    assert served.tags == [tag] and served.attrs["RepoDigests"] == [], served.attrs
    assert served.id == built.id
    log = daemon.release(app, 1)["log"]
    assert any("built-there" in line for line in log)
    assert any(f"Pushed {builder.registry}/temps/{app}@sha256:" in line for line in log)
    assert any(f"Building on {builder.url}" in line for line in log), log

    with under_load(daemon, app) as load:
        push_ok(daemon, repo, app, "v2")
        assert_serves(daemon, app, "v2", 2)
        with daemon.client() as api:
            answer = api.post(f"/api/apps/{app}/rollback?wait=true", json={"release": 1})
        assert answer.status_code == 200 and answer.json()["state"] == "live", answer.text
        assert_serves(daemon, app, "v1", 3)
    assert_no_failures(load.summary())
