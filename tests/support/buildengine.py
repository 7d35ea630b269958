"""A second Docker engine on this host, to build on (`temps serve --build-engine`).

It runs in the host's network namespace (so it reaches a registry on loopback as the host's
engine does) with its own data root, exec root and socket, a bridge of its own and no
iptables rules, and its own namespace in the host's containerd: nothing of the host's engine
is shared or touched. (Not `--bridge=none`: an engine started so removes the host's `docker0`,
the default bridge the host's own engine builds on.) The test base image is loaded into it
from the host's engine.
"""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from tests.support.busybox import BUSYBOX_IMAGE
from tests.support.wait import poll

START_TIMEOUT = 60.0


@contextmanager
def build_engine(home: Path) -> Iterator[str]:
    """A running engine; yields its `unix://` URL. Stopped (by its pid) afterwards."""
    for name in ("data", "exec"):
        (home / name).mkdir(parents=True, exist_ok=True)
    (home / "daemon.json").write_text("{}\n")
    socket = home / "docker.sock"
    namespace = f"temps-build-{home.name}"[:60]
    bridge = _own_bridge(home)
    with open(home / "dockerd.log", "wb") as log:
        process = subprocess.Popen(
            [
                "dockerd",
                f"--config-file={home / 'daemon.json'}",
                f"--data-root={home / 'data'}",
                f"--exec-root={home / 'exec'}",
                f"--pidfile={home / 'docker.pid'}",
                f"--host=unix://{socket}",
                f"--bridge={bridge}",
                "--iptables=false",
                "--ip6tables=false",
                f"--containerd-namespace={namespace}",
                f"--containerd-plugins-namespace={namespace}-plugins",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    url = f"unix://{socket}"
    try:
        if not poll(lambda: _answers(url), bool, timeout=START_TIMEOUT, interval=0.2):
            raise RuntimeError(f"the build engine did not start: see {home / 'dockerd.log'}")
        _load_base_image(url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)


def _own_bridge(home: Path) -> str:
    """A bridge for the engine's build containers, named and addressed after its home."""
    number = zlib.crc32(str(home).encode()) % 200 + 20
    name = f"tbld{number}"
    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
    for command in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "addr", "add", f"10.231.{number}.1/24", "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return name


def _answers(url: str) -> bool:
    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


def _load_base_image(url: str) -> None:
    host = docker.from_env(timeout=300)
    target = docker.DockerClient(base_url=url, timeout=300)
    try:
        target.images.load(b"".join(host.images.get(BUSYBOX_IMAGE).save(named=True)))
    finally:
        host.close()
        target.close()
