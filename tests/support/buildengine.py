"""A second Docker host to build on (`temps serve --build-engine`): a dockerd in a network
namespace of its own, started by the Swarm harness's machinery but joined to no swarm, and
the harness's registry, which the engine reaches on its own loopback (through the node's
forwarder) and the host's engine on the host's. Nothing of the host's engine is shared:
its own data root, exec root, socket, bridge and iptables, in its own namespace. The test
base image is loaded into it from the host's engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.support.busybox import BUSYBOX_IMAGE
from tests.support.swarm.cluster import lone_engine
from tests.support.swarm.settings import SwarmSettings

# Names and addresses of its own, apart from the Swarm tests' cluster.
SETTINGS = SwarmSettings(prefix="tbuild", subnet="10.233.0")


@dataclass(frozen=True)
class BuildHost:
    url: str  # the engine, `unix://...`
    registry: str  # "127.0.0.1:<port>", the same name from the engine and from the host


@contextlib.contextmanager
def build_engine(home: Path) -> Iterator[BuildHost]:
    """A running engine and its registry, torn down after the block."""
    with lone_engine(tmp=home, settings=SETTINGS) as (url, registry):
        _load_base_image(url)
        yield BuildHost(url, registry)


def _load_base_image(url: str) -> None:
    host = docker.from_env(timeout=300)
    target = docker.DockerClient(base_url=url, timeout=300)
    try:
        target.images.load(b"".join(host.images.get(BUSYBOX_IMAGE).save(named=True)))
    finally:
        host.close()
        target.close()
