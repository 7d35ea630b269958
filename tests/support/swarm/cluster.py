"""Bringing a cluster up: the registry and the engines, then `swarm init`, the joins and the
wait for every node to be ready; and the `SwarmCluster` a test is handed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from tests.support.swarm.helpers import _client, _exclusive, _has_network, _mark, _run
from tests.support.swarm.host import _make_bridge, _start_registry, push_image
from tests.support.swarm.node import _kill_node_processes, _reap, _start_engine, _wait_engine
from tests.support.swarm.settings import (
    HOST_SOCKET,
    NODE_LABEL,
    SWARM_PORT,
    SwarmHarnessError,
    SwarmNode,
    SwarmSettings,
    _Engine,
    _Member,
    _Started,
)
from tests.support.swarm.sweep import _remove_tree, sweep
from tests.support.wait import poll


@dataclass
class SwarmCluster:
    settings: SwarmSettings
    registry: str  # "127.0.0.1:<port>", the same name on every engine
    nodes: list[SwarmNode]
    engines: dict[str, _Engine] = field(repr=False)

    @property
    def manager(self) -> SwarmNode:
        return next(node for node in self.nodes if node.role == "manager")

    @property
    def manager_addr(self) -> str:
        return self.manager.address

    @property
    def workers(self) -> list[SwarmNode]:
        return [node for node in self.nodes if node.role == "worker"]

    def node(self, name: str) -> SwarmNode:
        return next(node for node in self.nodes if node.name == name)

    def published(self, task: dict[str, Any]) -> list[tuple[str, int]]:
        """Where a task's host-mode ports are reached from the host: (node address, port).
        Docker 20.10 lists each port twice in PortStatus, its IPv4 binding first, then its
        IPv6 one, and the two numbers may differ: the first is the one the address reaches."""
        address = next(node.address for node in self.nodes if node.node_id == task["NodeID"])
        first: dict[int, int] = {}
        for port in task["Status"].get("PortStatus", {}).get("Ports", []):
            first.setdefault(int(port["TargetPort"]), int(port["PublishedPort"]))
        return sorted((address, published) for published in first.values())

    def push_image(self, source: str, repository: str, tag: str = "latest") -> str:
        """Push a host-engine image to the registry; return its `repo@sha256:...` reference."""
        return push_image(source, f"{self.registry}/{repository}", tag)

    def kill_node(self, name: str, cut_link: bool = True) -> None:
        """Simulate the loss of a machine: cut its link first, so that the manager gets no
        goodbye (no FIN, no RST), then SIGKILL dockerd, containerd, the shims and every
        container process. Killing dockerd alone would not do: containers outlive it under
        their shims. With `cut_link=False` the node stays on the bridge, as after a crash of
        all its processes on a machine that is still up."""
        engine = self.engines.get(name)
        if engine is None:
            raise SwarmHarnessError(f"{name} is not a namespaced node; only those can be killed")
        if cut_link:
            _run("ip", "link", "set", engine.netns, "down")
        _kill_node_processes(engine.netns, self.settings.cgroup_parent(name))
        _reap(engine.dockerd, engine.forwarder)


@contextlib.contextmanager
def swarm_cluster(
    workers: int = 2, *, tmp: Path, settings: SwarmSettings | None = None
) -> Iterator[SwarmCluster]:
    """A cluster for the block, torn down after it whatever happens; logs stay under `tmp`,
    data-roots go. One cluster at a time per prefix: a second caller waits on a lock, since
    each starts by sweeping away whatever the prefix has on the host."""
    settings = settings or SwarmSettings()
    with _exclusive(settings.prefix):
        sweep(settings)
        started = _Started()
        try:
            yield _bring_up(settings, workers, tmp, started)
        finally:
            _reap(*started.procs)
            try:
                sweep(settings)
            finally:
                for path in started.scratch:
                    _remove_tree(path)


@contextlib.contextmanager
def lone_engine(*, tmp: Path, settings: SwarmSettings) -> Iterator[tuple[str, str]]:
    """One engine in a network namespace of its own and the registry it reaches on its
    loopback, joined to no swarm (a second Docker host); yields (its `unix://` URL, the
    registry). Torn down after the block, as a cluster is."""
    with _exclusive(settings.prefix):
        sweep(settings)
        started = _Started()
        try:
            _make_bridge(settings)
            started.scratch.append(tmp / "registry" / "data")
            registry = _start_registry(settings, tmp / "registry", started)
            started.scratch.append(tmp / "w1" / "data")
            engine = _start_engine(settings, tmp, "w1", registry, started)
            _wait_engine(engine, settings.start_timeout)
            yield f"unix://{engine.socket}", registry
        finally:
            _reap(*started.procs)
            try:
                sweep(settings)
            finally:
                for path in started.scratch:
                    _remove_tree(path)


def _bring_up(settings: SwarmSettings, workers: int, tmp: Path, started: _Started) -> SwarmCluster:
    if settings.host_manager:
        _check_host_engine_free(settings)
    _make_bridge(settings)
    started.scratch.append(tmp / "registry" / "data")
    registry = _start_registry(settings, tmp / "registry", started)
    names = [f"w{i}" for i in range(1, workers + 1)]
    if not settings.host_manager:
        names.insert(0, "m")
    engines = []
    for name in names:
        started.scratch.append(tmp / name / "data")
        engines.append(_start_engine(settings, tmp, name, registry, started))
    for engine in engines:
        _wait_engine(engine, settings.start_timeout)
    members = [engine.member for engine in engines]
    if settings.host_manager:
        members.insert(0, _Member("host", settings.host_addr, HOST_SOCKET, None, None))
    manager, workers_ = members[0], members[1:]
    token = _init_swarm(settings, manager)
    for worker in workers_:
        _join(worker, manager.address, token)
    nodes = [_wait_ready(settings, manager, member) for member in members]
    return SwarmCluster(settings, registry, nodes, {engine.name: engine for engine in engines})


# -- the swarm -----------------------------------------------------------------------------


def _check_host_engine_free(settings: SwarmSettings) -> None:
    info = _client(HOST_SOCKET).info()["Swarm"]
    if info.get("LocalNodeState", "inactive") != "inactive":
        raise SwarmHarnessError(
            f"the host engine is already in a swarm (node {info.get('NodeID')}); "
            "refusing to touch it: `docker swarm leave --force` if it is yours to drop"
        )
    if not _has_network(HOST_SOCKET, "docker_gwbridge"):
        _mark(settings, "host-gwbridge", "")  # swarm init makes it; the sweep removes it


def _init_swarm(settings: SwarmSettings, manager: _Member) -> str:
    """`docker swarm init` with a short dispatcher heartbeat, so that a lost node is noticed
    in seconds rather than the default 5 s x 3; returns the worker join token."""
    client = _client(manager.socket)
    client.swarm.init(
        advertise_addr=manager.address,
        listen_addr=f"{manager.address}:{SWARM_PORT}",
        dispatcher_heartbeat_period=int(settings.heartbeat * 1e9),
    )
    if manager.netns is None:
        _mark(settings, "host-swarm", client.info()["Swarm"]["NodeID"])
    _wait_ingress(client, settings.ready_timeout)
    client.swarm.reload()
    return str(client.swarm.attrs["JoinTokens"]["Worker"])


def _wait_ingress(client: docker.DockerClient, timeout: float) -> None:
    """Wait until the routing mesh's sandbox is set up. An engine that leaves the swarm while
    it is still being made keeps a stale `ingress` network (and docker_gwbridge with it)
    after the leave, which only a new init and a clean leave remove."""

    def sandboxed() -> bool:
        try:
            return "ingress-sbox" in (client.networks.get("ingress").attrs["Containers"] or {})
        except docker.errors.NotFound:
            return False

    if not poll(sandboxed, bool, timeout=timeout, interval=0.1):
        raise SwarmHarnessError("the manager's ingress network was not set up in time")


def _join(worker: _Member, manager_address: str, token: str) -> None:
    _client(worker.socket).swarm.join(
        remote_addrs=[f"{manager_address}:{SWARM_PORT}"],
        join_token=token,
        listen_addr=f"{worker.address}:{SWARM_PORT}",
        advertise_addr=worker.address,
    )


def _wait_ready(settings: SwarmSettings, manager: _Member, member: _Member) -> SwarmNode:
    """Wait until the manager sees the node ready; label it with its harness name, so that a
    test can place a task with `node.labels.temps.swarm.node==w1`."""
    client = _client(manager.socket)
    node_id = _client(member.socket).info()["Swarm"]["NodeID"]
    state = poll(
        lambda: client.nodes.get(node_id).attrs["Status"]["State"],
        lambda state: state == "ready",
        timeout=settings.ready_timeout,
        interval=0.2,
    )
    if state != "ready":
        raise SwarmHarnessError(f"node {member.name} is {state}, not ready")
    node = client.nodes.get(node_id)
    spec = node.attrs["Spec"]
    spec["Labels"] = {**spec.get("Labels", {}), NODE_LABEL: member.name}
    node.update(spec)
    role = "manager" if member == manager else "worker"
    return SwarmNode(
        name=member.name,
        role=role,
        address=member.address,
        socket=member.socket,
        netns=member.netns,
        node_id=node_id,
        hostname=node.attrs["Description"]["Hostname"],
        log=member.log,
    )
