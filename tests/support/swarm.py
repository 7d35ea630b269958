"""A real Docker Swarm of several nodes on this one machine, for the Swarm runtime's e2e tests.

    with swarm_cluster(workers=2, tmp=tmp_path) as cluster:
        ref = cluster.push_image("temps-test/busybox:latest", "temps/busybox")
        cluster.manager.client().services.create(ref, ...)
        cluster.kill_node("w1")

Each worker is a real dockerd in its own network namespace (own iptables, docker0, swarm
agent), wired by a veth to a private bridge on the host. The host engine is the manager
(or, with `host_manager=False`, one more namespaced dockerd, for when the host engine is
busy). Namespaces rather than docker-in-docker: no node image to build, and every process
of a node is found by its namespace and cgroup, so a node can be killed for real.

`kill_node` is the loss of a machine: the node's link goes down first (the manager gets
no FIN or RST), then every process of the node is SIGKILLed, dockerd, containerd, the shims
and the containers themselves, which would otherwise outlive dockerd under their shims.

A `docker-registry` on the host serves images to every engine under one name,
`127.0.0.1:<port>/...`, since Docker trusts loopback registries without TLS; inside each
namespace a small forwarder carries that loopback port to the host.

Every name made here starts with the settings' prefix (`tswarm`), so a crashed run's
leftovers are found and removed by `sweep` when the next cluster starts:

    host: bridge tswarm0 10.231.0.1/24, registry 0.0.0.0:<port>, iptables rules "tswarm-harness"
      └─ veth tswarm-w1 ── netns tswarm-w1: eth0 10.231.0.11, forwarder, dockerd (+containerd)
    /run/tswarm/<node>/   exec-root, docker.sock, pidfile, the node's /etc/docker, /run/containerd
    <tmp>/<node>/         data-root, dockerd.log
    cgroup /tswarm-<node> the node's containers (--cgroup-parent)

Run by `ip netns exec`, dockerd gets a private mount namespace (a slave of the host's) with a
sysfs of its namespace but no cgroup mounts; `launch` below mounts those again and hides the
host's /etc/docker (key.json, daemon.json) and /run/containerd (shim sockets, runc state)
behind per-node directories. Mounts made by a node stay in its namespace and vanish with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import functools
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import docker

from support.wait import poll

HOST_SOCKET = Path("/var/run/docker.sock")
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
SWARM_PORT = 2377
NODE_LABEL = "temps.swarm.node"  # engine and swarm node label: the harness's name of the node
TASK_LABEL = "com.docker.swarm.service.id"  # on every container of a swarm task
TESTS_DIR = Path(__file__).resolve().parents[1]


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
        Docker 20.10 lists each port twice in PortStatus (its IPv4 and IPv6 bindings)."""
        address = next(node.address for node in self.nodes if node.node_id == task["NodeID"])
        ports = task["Status"].get("PortStatus", {}).get("Ports", [])
        return sorted({(address, int(port["PublishedPort"])) for port in ports})

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


@dataclass
class _Started:
    """What this run started, for teardown to reap and remove beyond what `sweep` finds."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)  # data directories, removed at the end


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


# -- the host side -------------------------------------------------------------------------


def _make_bridge(settings: SwarmSettings) -> None:
    """The bridge the nodes hang on. The host's FORWARD policy is DROP (dockerd sets it) and
    bridged frames pass iptables (br_netfilter), so node-to-node traffic needs an ACCEPT."""
    bridge = settings.bridge
    _run("ip", "link", "add", bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{settings.host_addr}/24", "dev", bridge)
    _run("ip", "link", "set", bridge, "up")
    for chain, match in (("FORWARD", ["-i", bridge, "-o", bridge]), ("INPUT", ["-i", bridge])):
        tag = ["-m", "comment", "--comment", settings.comment]
        _run("iptables", "-I", chain, "1", *match, *tag, "-j", "ACCEPT")


def _start_registry(settings: SwarmSettings, home: Path, started: _Started) -> str:
    """Debian's docker-registry, run by hand on 0.0.0.0 so that the host engine reaches it on
    loopback and the nodes' forwarders reach it on the bridge address."""
    if not REGISTRY_BINARY.exists():
        raise SwarmHarnessError(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")
    port = settings.registry_port or _free_port()
    home.mkdir(parents=True)
    config = home / "config.yml"
    storage = {"filesystem": {"rootdirectory": str(home / "data")}, "delete": {"enabled": True}}
    document = {"version": 0.1, "log": {"level": "warn"}, "storage": storage}
    config.write_text(json.dumps({**document, "http": {"addr": f"0.0.0.0:{port}"}}))  # YAML
    with open(home / "registry.log", "wb") as log:
        proc = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    started.procs.append(proc)
    _mark(settings, "registry.pid", str(proc.pid))
    _mark(settings, "registry", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/v2/"
    if not poll(lambda: _http_ok(url), bool, timeout=settings.start_timeout, interval=0.1):
        raise SwarmHarnessError(f"registry did not answer on {url}: see {home / 'registry.log'}")
    return f"127.0.0.1:{port}"


def push_image(source: str, repository: str, tag: str = "latest") -> str:
    """Tag a host-engine image as `repository:tag`, push it, return `repository@sha256:...`."""
    client = docker.DockerClient(base_url=f"unix://{HOST_SOCKET}", timeout=300)
    client.images.get(source).tag(repository, tag)
    for line in client.images.push(repository, tag, stream=True, decode=True):
        if "error" in line:
            raise SwarmHarnessError(f"push of {repository}:{tag} failed: {line['error']}")
    digests = client.images.get(f"{repository}:{tag}").attrs["RepoDigests"]
    return str(next(d for d in digests if d.startswith(f"{repository}@")))


# -- the nodes -----------------------------------------------------------------------------


def _start_engine(
    settings: SwarmSettings, tmp: Path, name: str, registry: str, started: _Started
) -> _Engine:
    address = f"{settings.subnet}.{2 if name == 'm' else 10 + int(name[1:])}"
    netns = settings.netns(name)
    _make_namespace(settings, netns, address)
    run = settings.run_dir / name
    data = tmp / name / "data"
    for path in (run / "exec", run / "etc-docker", run / "containerd", data):
        path.mkdir(parents=True)
    log = tmp / name / "dockerd.log"
    dockerd = [
        "dockerd",
        f"--data-root={data}",
        f"--exec-root={run / 'exec'}",
        f"--pidfile={run / 'docker.pid'}",
        f"--host=unix://{run / 'docker.sock'}",
        f"--cgroup-parent={settings.cgroup_parent(name)}",
        f"--storage-driver={settings.storage_driver}",
        f"--label={NODE_LABEL}={name}",
    ]
    launch = [
        "launch",
        f"--hostname={netns}",
        f"--bind={run / 'etc-docker'}:/etc/docker",
        f"--bind={run / 'containerd'}:/run/containerd",
        *[f"--mount={spec}" for spec in _cgroup_mounts()],
        "--",
        *dockerd,
    ]
    with open(log, "wb") as out:
        proc = _in_namespace(netns, ["unshare", "--uts", "--", *_self_command(launch)], out)
    started.procs.append(proc)
    engine = _Engine(name, address, netns, run, data, log, proc)
    port = registry.rsplit(":", 1)[1]
    engine.forwarder = _start_forwarder(netns, f"127.0.0.1:{port}", f"{settings.host_addr}:{port}")
    started.procs.append(engine.forwarder)
    return engine


def _make_namespace(settings: SwarmSettings, netns: str, address: str) -> None:
    _run("ip", "netns", "add", netns)
    _run("ip", "link", "add", netns, "type", "veth", "peer", "name", "eth0", "netns", netns)
    _run("ip", "link", "set", netns, "master", settings.bridge, "up")
    _run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
    _run("ip", "-n", netns, "link", "set", "lo", "up")
    _run("ip", "-n", netns, "link", "set", "eth0", "up")
    _run("ip", "-n", netns, "route", "add", "default", "via", settings.host_addr)


def _cgroup_mounts() -> list[str]:
    """The host's /sys/fs/cgroup mounts as `fstype:options:target`, for `launch` to redo."""
    return [
        f"{fstype}:{options}:{target}"
        for target, fstype, options in _mounts()
        if target == "/sys/fs/cgroup" or target.startswith("/sys/fs/cgroup/")
    ]


def _start_forwarder(netns: str, listen: str, target: str) -> subprocess.Popen[bytes]:
    proc = _in_namespace(netns, _self_command(["forward", listen, target]), subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    if not ready or proc.stdout.readline().strip() != b"ready":
        raise SwarmHarnessError(f"forwarder {listen} -> {target} in {netns} did not start")
    return proc


def _wait_engine(engine: _Engine, timeout: float) -> None:
    def answers() -> bool:
        if engine.dockerd.poll() is not None:
            return True  # dead: stop waiting, the check below says so
        return _engine_answers(engine.socket)

    poll(answers, bool, timeout=timeout, interval=0.2)
    if engine.dockerd.poll() is not None or not _engine_answers(engine.socket):
        last = engine.log.read_text(errors="replace").splitlines()[-5:]
        raise SwarmHarnessError(f"dockerd of {engine.name} did not start ({engine.log}): {last}")


def _engine_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=5).ping())
    except (docker.errors.DockerException, OSError):
        return False


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


# -- teardown, also of a crashed run's leftovers ---------------------------------------------


def sweep(settings: SwarmSettings) -> None:
    """Remove everything of the prefix, whether this run or a crashed one made it. Every step
    runs even when one before it failed; the failures are raised together at the end."""
    steps = [
        _kill_nodes,
        _leave_host_swarm,
        _untag_registry_images,
        _stop_registry,
        _remove_namespaces,
        _remove_cgroups,
        _remove_links,
        _remove_iptables_rules,
    ]
    errors = []
    for step in steps:
        try:
            step(settings)
        except Exception as exc:  # keep sweeping: a half-swept host is worse
            errors.append(f"{step.__name__}: {exc}")
    if errors:  # the markers under the run dir stay, for the next sweep to try again
        raise SwarmHarnessError("sweep left things behind: " + "; ".join(errors))
    _remove_run_dir(settings)


def _leave_host_swarm(settings: SwarmSettings) -> None:
    """Only a swarm the marker names is ours: remove its services and their containers on
    the host, leave it, and drop docker_gwbridge if swarm init made it. Leaving removes the
    ingress network a moment later; docker_gwbridge cannot go before it."""
    marker, gwbridge = settings.run_dir / "host-swarm", settings.run_dir / "host-gwbridge"
    if not marker.exists() and not gwbridge.exists():
        return  # never touched the host engine
    client = _client(HOST_SOCKET)
    if marker.exists() and client.info()["Swarm"].get("NodeID") == marker.read_text():
        for service in client.services.list():
            service.remove()
        _remove_task_containers(client)  # SIGKILL: a graceful stop may take its 10 s
        client.swarm.leave(force=True)
        _remove_task_containers(client)
    if not gwbridge.exists():
        return
    if poll(lambda: _has_network(HOST_SOCKET, "ingress"), lambda there: not there, timeout=30):
        raise SwarmHarnessError("the host engine still has an ingress network after leaving")
    if not poll(lambda: _remove_network(HOST_SOCKET, "docker_gwbridge"), bool, timeout=30):
        raise SwarmHarnessError("docker_gwbridge on the host engine could not be removed")


def _remove_task_containers(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": TASK_LABEL}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def _untag_registry_images(settings: SwarmSettings) -> None:
    marker = settings.run_dir / "registry"
    if not marker.exists():
        return
    client = _client(HOST_SOCKET)
    prefix = marker.read_text() + "/"
    # Task containers a crashed engine left on the host once it was out of the swarm.
    for container in client.containers.list(all=True):
        if str(container.attrs["Config"]["Image"]).startswith(prefix):
            container.remove(force=True)
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                client.images.remove(tag)


def _stop_registry(settings: SwarmSettings) -> None:
    pidfile = settings.run_dir / "registry.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        with contextlib.suppress(OSError):
            if REGISTRY_BINARY.name in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)


def _kill_nodes(settings: SwarmSettings) -> None:
    """Kill every node but leave it on the bridge, link up: the host engine's `swarm leave`
    then meets refused connections at once, where a node cut off by `kill_node` would make
    it wait out timeouts (8 s measured)."""
    for netns in _namespaces(settings):
        node = netns.removeprefix(f"{settings.prefix}-")
        _kill_node_processes(netns, settings.cgroup_parent(node))
        _try("ip", "link", "set", netns, "up")


def _remove_namespaces(settings: SwarmSettings) -> None:
    for netns in _namespaces(settings):
        _run("ip", "netns", "del", netns)


def _namespaces(settings: SwarmSettings) -> list[str]:
    netns_dir = Path("/run/netns")
    names = sorted(path.name for path in netns_dir.iterdir()) if netns_dir.exists() else []
    return [name for name in names if name.startswith(f"{settings.prefix}-")]


def _remove_cgroups(settings: SwarmSettings) -> None:
    """The node cgroups docker made under --cgroup-parent, emptied first, deepest first."""
    for root in _cgroup_roots():
        for top in root.glob(f"{settings.prefix}-*"):
            _kill(_cgroup_tree_pids(top))
            dirs = sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: -len(p.parts))
            for path in dirs:
                poll(functools.partial(_rmdir, path), bool, timeout=5)
            if top.exists():
                raise SwarmHarnessError(f"cgroup {top} is still there")


def _remove_links(settings: SwarmSettings) -> None:
    for line in _run("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == settings.bridge or name.startswith(f"{settings.prefix}-"):
            _try("ip", "link", "del", name)


def _remove_iptables_rules(settings: SwarmSettings) -> None:
    for line in _run("iptables", "-S").splitlines():
        if line.startswith("-A ") and f"--comment {settings.comment}" in line:
            _run("iptables", "-D", *shlex.split(line)[1:])


def _remove_run_dir(settings: SwarmSettings) -> None:
    _unmount_under(settings.run_dir)
    shutil.rmtree(settings.run_dir, ignore_errors=True)
    if settings.run_dir.exists():
        raise SwarmHarnessError(f"{settings.run_dir} could not be removed")


def _remove_tree(path: Path) -> None:
    _unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Lazily unmount what the host sees under `path`: normally nothing, since node mounts
    live in the nodes' own mount namespaces, but a node run some other way may leave some."""
    for target, _, _ in reversed(_mounts()):
        if target == str(path) or target.startswith(f"{path}/"):
            _try("umount", "-l", target)


# -- killing a node ------------------------------------------------------------------------


def _kill_node_processes(netns: str, cgroup_parent: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in the node's namespace (dockerd, containerd, shims, docker-proxy,
    the forwarder) and in its cgroup (the containers, which have namespaces of their own),
    until none is left: a shim may still be starting a container when the first round hits."""
    deadline = time.monotonic() + timeout
    while pids := _namespace_pids(netns) | _cgroup_pids(cgroup_parent):
        if time.monotonic() > deadline:
            raise SwarmHarnessError(f"processes of {netns} survive SIGKILL: {sorted(pids)}")
        _kill(pids)
        time.sleep(0.05)


def _namespace_pids(netns: str) -> set[int]:
    try:
        ns = os.stat(f"/run/netns/{netns}")
    except FileNotFoundError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                st = os.stat(f"/proc/{entry}/ns/net")
                if (st.st_dev, st.st_ino) == (ns.st_dev, ns.st_ino):
                    pids.add(int(entry))
    return pids


def _cgroup_pids(cgroup_parent: str) -> set[int]:
    pids: set[int] = set()
    for root in _cgroup_roots():
        pids |= _cgroup_tree_pids(root / cgroup_parent.lstrip("/"))
    return pids


def _cgroup_tree_pids(top: Path) -> set[int]:
    pids = set()
    for directory, _, _ in os.walk(top):
        with contextlib.suppress(OSError):
            text = (Path(directory) / "cgroup.procs").read_text()
            pids |= {int(pid) for pid in text.split()}
    return pids


def _cgroup_roots() -> list[Path]:
    return [Path(target) for target, fstype, _ in _mounts() if fstype in ("cgroup", "cgroup2")]


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _reap(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


# -- small helpers -------------------------------------------------------------------------


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
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    stderr = subprocess.STDOUT if stdout is not subprocess.PIPE else None
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, *argv],
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def _self_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "support.swarm", *args]


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


# -- the two helpers run inside a node's namespace -------------------------------------------


def _launch(hostname: str, mounts: list[str], binds: list[str], argv: list[str]) -> NoReturn:
    """Become the node's dockerd. `ip netns exec` left us in a private mount namespace whose
    /sys shows the node's interfaces but has lost /sys/fs/cgroup: mount those again (the
    same hierarchies as the host's, so --cgroup-parent paths match), put the node's own
    directories over the host-wide ones dockerd and containerd would share, and take the
    node's hostname (we are in a new UTS namespace), so swarm nodes are told apart."""
    for spec in mounts:
        fstype, options, target = spec.split(":", 2)
        os.makedirs(target, exist_ok=True)
        _run("mount", "-t", fstype, "-o", options, fstype, target)
    for spec in binds:
        source, target = spec.split(":", 1)
        os.makedirs(target, exist_ok=True)
        _run("mount", "--bind", source, target)
    socket.sethostname(hostname)
    os.execvp(argv[0], argv)


async def _forward(listen: str, target: str) -> None:
    """Carry TCP from `listen` to `target`, so that the registry on the host is
    `127.0.0.1:<port>` inside the node too. Hand-written: 30 lines of asyncio, where socat
    would be one more package to install on every machine."""
    target_host, target_port = target.rsplit(":", 1)

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        up_writer.close()
        writer.close()

    listen_host, listen_port = listen.rsplit(":", 1)
    server = await asyncio.start_server(connect, listen_host, int(listen_port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m support.swarm")
    commands = parser.add_subparsers(dest="command", required=True)
    launch = commands.add_parser("launch", help="exec dockerd as a node (run by the harness)")
    launch.add_argument("--hostname", required=True)
    launch.add_argument("--mount", action="append", default=[], help="fstype:options:target")
    launch.add_argument("--bind", action="append", default=[], help="source:target")
    launch.add_argument("argv", nargs=argparse.REMAINDER)
    forward = commands.add_parser("forward", help="forward TCP (run by the harness)")
    forward.add_argument("listen")
    forward.add_argument("target")
    args = parser.parse_args(argv)
    if args.command == "launch":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        _launch(args.hostname, args.mount, args.bind, command)
    asyncio.run(_forward(args.listen, args.target))


if __name__ == "__main__":
    main()
