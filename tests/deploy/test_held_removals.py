"""Pruning an app's images waits while a build runs, against the real Docker engine.

A build takes a layer from the cache and builds its next step on it a moment later; an image
removed in between takes that layer with it (`unable to find image`), so one app's pruning
failed another app's push. The removal is held until the running builds end, and done at
once when none runs.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.docker.runtime import DockerRuntime
from pipeline.runtime import ImageBuild
from tests.support.busybox import ensure_busybox_image
from tests.support.dockercli import docker, image_exists
from tests.support.wait import poll

pytestmark = pytest.mark.docker

GENEROUS = 120.0  # a loaded machine may be slow to build


def context(dockerfile: str) -> Iterator[bytes]:
    """A build context holding only this Dockerfile, as a tar stream (an iterator, as a
    repository's is: a list would be sent as a form)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return iter([buffer.getvalue()])


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[DockerRuntime]:
    made = DockerRuntime(str(tmp_path), secrets.token_hex(4))
    yield made
    for app in ("held-old", "held-slow"):
        found = docker("images", "-q", "--filter", f"label=temps.app={app}", check=False)
        for image in set(found.split()):
            docker("rmi", "-f", image, check=False)


def build(runtime: DockerRuntime, app: str, dockerfile: str, lines: list[str]) -> str:
    tag = f"temps/{app}:{secrets.token_hex(3)}-{runtime.home_id}"
    runtime.build(ImageBuild(tag, context(dockerfile), {"temps.app": app}, lines.append, GENEROUS))
    return tag


def test_an_image_pruned_while_a_build_runs_goes_when_the_build_ends(
    runtime: DockerRuntime,
) -> None:
    base = ensure_busybox_image()
    old = build(runtime, "held-old", f"FROM {base}\nRUN echo {secrets.token_hex(4)} > /made\n", [])
    assert image_exists(old)

    builder, failures = start_slow_build(runtime, base)
    assert runtime.prune_images("held-old", set()) == [old]
    assert builder.is_alive(), "the slow build ended before the prune: nothing was held"
    assert image_exists(old), "an image was removed while a build ran"
    assert runtime.removals.held == 1

    builder.join(GENEROUS)
    assert not failures, failures
    assert not image_exists(old), "the held removal was not done when the build ended"
    assert runtime.removals.held == 0

    # No build running: at once.
    again = build(runtime, "held-old", f"FROM {base}\nRUN echo {secrets.token_hex(4)}\n", [])
    assert runtime.prune_images("held-old", set()) == [again]
    assert not image_exists(again)


def start_slow_build(
    runtime: DockerRuntime, base: str
) -> tuple[threading.Thread, list[BaseException]]:
    """A build whose step runs for 4 s, under way: the thread and where its failure goes. A
    build the engine fails before its step runs (a loaded engine) is tried again, twice."""
    for _attempt in range(3):
        builder, lines, failures = slow_build(runtime, base)
        poll(lambda: step_began(lines, failures), bool, timeout=GENEROUS)  # noqa: B023
        if not failures and builder.is_alive():
            return builder, failures
        print(f"the slow build did not get to its step: {failures} {lines[-3:]}")
    pytest.fail("the slow build never got to its step")


def step_began(lines: list[str], failures: list[BaseException]) -> bool:
    """The slow step's container runs, or the build failed."""
    return bool(failures) or any("Running in" in line for line in lines)


def slow_build(
    runtime: DockerRuntime, base: str
) -> tuple[threading.Thread, list[str], list[BaseException]]:
    lines: list[str] = []
    failures: list[BaseException] = []
    slow = f"FROM {base}\nRUN echo {secrets.token_hex(4)} && sleep 4\n"

    def build_slowly() -> None:
        try:
            build(runtime, "held-slow", slow, lines)
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    builder = threading.Thread(target=build_slowly, daemon=True)
    builder.start()
    return builder, lines, failures
