"""Small helpers shared by the harness's modules: commands, markers, mounts, clients."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from tests.support.swarm.settings import TESTS_DIR, SwarmHarnessError, SwarmSettings


@contextlib.contextmanager
def _exclusive(prefix: str) -> Iterator[None]:
    with open(Path(tempfile.gettempdir()) / f"{prefix}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _mark(settings: SwarmSettings, name: str, text: str) -> None:
    """A note under the run dir that lets a later sweep undo what this run did to the host."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / name).write_text(text)


def _mounts() -> list[tuple[str, str, str]]:
    """(target, fstype, super options) of every mount the host sees, in mount order."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, after = line.split(" - ", 1)
        fstype, _source, options = after.split()[:3]
        found.append((before.split()[4], fstype, options))
    return found


def _in_namespace(netns: str, argv: list[str], stdout: Any) -> subprocess.Popen[bytes]:
    """Start a process in the node's namespace, in its own session so that a Ctrl-C meant
    for pytest does not reach it: the sweep ends it."""
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)}
    stderr = subprocess.STDOUT if stdout is not subprocess.PIPE else None
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, *argv],
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def _self_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tests.support.swarm", *args]


def _client(sock: Path) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{sock}", timeout=60)


def _has_network(sock: Path, name: str) -> bool:
    return any(network.name == name for network in _client(sock).networks.list(names=[name]))


def _remove_network(sock: Path, name: str) -> bool:
    """Removed or not there; False while it still has endpoints."""
    try:
        _client(sock).networks.get(name).remove()
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SwarmHarnessError(f"{shlex.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def _try(*argv: str) -> bool:
    """A cleanup command whose failure only means there was nothing to clean."""
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return done.returncode == 0
