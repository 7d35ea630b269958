"""The cluster's names, addresses and timings, and the records of its nodes and engines.

Plain data, imported by every other module of the harness and importing none of them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker

HOST_SOCKET = Path("/var/run/docker.sock")
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
SWARM_PORT = 2377
NODE_LABEL = "temps.swarm.node"  # engine and swarm node label: the harness's name of the node
TASK_LABEL = "com.docker.swarm.service.id"  # on every container of a swarm task
# This file is tests/support/swarm/settings.py: the folder above tests/ is put on a node's
# PYTHONPATH, so that `python -m tests.support.swarm` runs there.
TESTS_DIR = Path(__file__).resolve().parents[2]


class SwarmHarnessError(RuntimeError):
    """The cluster could not be built (or the host engine is not ours to use)."""


@dataclass(frozen=True)
class SwarmSettings:
    """Names, addresses and timings of a cluster; every name it makes starts with `prefix`."""

    prefix: str = "tswarm"
    subnet: str = "10.231.0"  # a /24: the host is .1, a namespaced manager .2, worker i .(10+i)
    registry_port: int = 0  # 0: a free port
    heartbeat: float = 1.0  # swarm dispatcher heartbeat (s): how soon a lost node is noticed
    host_manager: bool = True  # the host engine is the manager; else a namespaced dockerd
    storage_driver: str = "overlay2"
    start_timeout: float = 60.0
    ready_timeout: float = 60.0

    @property
    def bridge(self) -> str:
        return f"{self.prefix}0"

    @property
    def host_addr(self) -> str:
        return f"{self.subnet}.1"

    @property
    def run_dir(self) -> Path:
        return Path("/run") / self.prefix

    @property
    def comment(self) -> str:
        return f"{self.prefix}-harness"

    def netns(self, node: str) -> str:
        """The node's namespace, also the name of the host end of its veth."""
        name = f"{self.prefix}-{node}"
        if len(name) > 15:  # IFNAMSIZ
            raise SwarmHarnessError(f"{name!r} is too long for an interface name: shorten prefix")
        return name

    def cgroup_parent(self, node: str) -> str:
        return f"/{self.prefix}-{node}"


@dataclass(frozen=True)
class SwarmNode:
    """One engine of the cluster, as a test sees it."""

    name: str  # "host" (the host engine as manager), "m" (namespaced manager), "w1", "w2", ...
    role: str  # "manager" or "worker"
    address: str  # where its published ports and swarm endpoint are reached from the host
    socket: Path
    netns: str | None  # None for the host engine
    node_id: str
    hostname: str  # the swarm node's Description.Hostname
    log: Path | None = None  # dockerd's output, for a namespaced node

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    def client(self, timeout: float = 60.0) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.base_url, timeout=int(timeout))


@dataclass
class _Engine:
    """A namespaced dockerd the harness started, with what it needs to kill it."""

    name: str
    address: str
    netns: str
    run: Path
    data: Path
    log: Path
    dockerd: subprocess.Popen[bytes]
    forwarder: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.run / "docker.sock"

    @property
    def member(self) -> _Member:
        return _Member(self.name, self.address, self.socket, self.netns, self.log)


@dataclass(frozen=True)
class _Member:
    """An engine about to be a swarm node: the host engine or a namespaced one."""

    name: str
    address: str
    socket: Path
    netns: str | None
    log: Path | None


@dataclass
class _Started:
    """What this run started, for teardown to reap and remove beyond what `sweep` finds."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)  # data directories, removed at the end
