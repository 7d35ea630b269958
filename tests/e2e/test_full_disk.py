"""End to end, issue 28: a home on a disk that fills up. A push the disk has no room for, and
a deploy that would leave less than `--min-free-mb`, are refused with the figures; the live
release serves throughout with no answer that is not 2xx; the records stay sound; once space
is freed the next push deploys.

The disk is a real tmpfs the test mounts (and unmounts however it ends), filled with a real
file; the daemon, dockerd, Traefik and git are the real ones. The daemon's own log is kept
off that disk, so that it says what happened once the disk is full.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apprepo import git_push, make_app_repo, remote_main
from tests.support.checks import (
    assert_no_failures,
    assert_serves,
    push_ok,
    rejection,
    release_numbers,
    under_load,
)
from tests.support.daemon import MANY_FAILURES, TempsDaemon, running_daemon
from tests.support.disk import fill, free_bytes, small_disk

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

DISK_MB = 256
MIN_FREE_MB = 100  # what a deploy needs free: well under the empty disk, well over a full one
MIB = 1024 * 1024
FULL = re.compile(r"the disk holding (?P<path>\S+) is full \((?P<free>[\d.]+) MB free\)")
SHORT = re.compile(
    r"not enough free space to deploy: the disk holding (?P<path>\S+) has "
    r"(?P<free>[\d.]+) MB free, under --min-free-mb \((?P<minimum>\d+) MB\)"
)
AGAIN = "nothing was deployed, free space and push again"


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with small_disk(tmp_path_factory.mktemp("full-disk") / "disk", DISK_MB) as mounted:
        yield mounted


@pytest.fixture(scope="module")
def daemon(
    busybox_image: str, disk: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TempsDaemon]:
    args = [*MANY_FAILURES, "--min-free-mb", str(MIN_FREE_MB)]
    logs = tmp_path_factory.mktemp("full-disk-logs")
    with running_daemon(disk / "home", "test-full-disk", args, log_dir=logs) as started:
        yield started


@pytest.fixture
def filled(disk: Path) -> Iterator[list[Path]]:
    """The fillers a test makes on the disk, removed however it ends."""
    fillers: list[Path] = []
    try:
        yield fillers
    finally:
        for filler in fillers:
            filler.unlink(missing_ok=True)


def integrity(daemon: TempsDaemon) -> str:
    with sqlite3.connect(daemon.home / "temps.db", timeout=30) as records:
        return str(records.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_push_larger_than_the_free_space_is_refused_naming_the_disk(
    daemon: TempsDaemon, disk: Path, filled: list[Path], tmp_path: Path
) -> None:
    app, repo = "full-push", tmp_path / "repo"
    daemon.create_app(app)
    first = push_ok(daemon, repo, app, "v1")
    # 8 MB that does not compress: the pack is as large as the file.
    (repo / "www" / "noise.bin").write_bytes(os.urandom(8 * MIB))
    make_app_repo(repo, "v2")

    with under_load(daemon, app) as load:
        filled.append(fill(disk, leave=3 * MIB))
        code, output = git_push(repo, daemon.git_url(app))
        assert_serves(daemon, app, "v1", 1)
    assert_no_failures(load.summary())

    assert code != 0, output
    said = FULL.search(output)
    assert said is not None and AGAIN in output, output
    assert said["path"] == str(daemon.home / "repos" / f"{app}.git"), output
    assert float(said["free"]) < 8, output  # the figure is what the disk had left
    # Nothing half-written: no release for the refused push, main where it was, sound records.
    assert release_numbers(daemon, app) == [1]
    assert remote_main(daemon.git_url(app)) == first
    assert integrity(daemon) == "ok"
    assert daemon.healthz().status_code == 200

    # Once the space is back the same push deploys.
    filled.pop().unlink()
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, output
    assert_serves(daemon, app, "v2", 2)
    assert integrity(daemon) == "ok"


def test_a_deploy_short_of_min_free_mb_is_refused_before_it_builds_with_the_figures(
    daemon: TempsDaemon, disk: Path, filled: list[Path], tmp_path: Path
) -> None:
    app, repo = "full-short", tmp_path / "repo"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    make_app_repo(repo, "v2")

    with under_load(daemon, app) as load:
        filled.append(fill(disk, leave=(MIN_FREE_MB // 2) * MIB))
        left = free_bytes(disk)
        code, output = git_push(repo, daemon.git_url(app))
        assert_serves(daemon, app, "v1", 1)
    assert_no_failures(load.summary())

    assert code != 0, output
    said = SHORT.search(rejection(output) or "")
    assert said is not None, output
    assert (said["path"], int(said["minimum"])) == (str(daemon.home), MIN_FREE_MB)
    assert abs(float(said["free"]) * MIB - left) < 5 * MIB, (said["free"], left)
    assert AGAIN in output, output
    # Recorded as refusals are: failed while queued, with the figures as its reason.
    refused = daemon.release(app, 2)
    assert refused["state"] == "failed", refused
    assert refused["failed_step"] == "queued", refused
    assert SHORT.search(refused["failure_reason"] or ""), refused
    assert integrity(daemon) == "ok"

    filled.pop().unlink()
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, output
    assert_serves(daemon, app, "v2", 3)
