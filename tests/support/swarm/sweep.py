"""Teardown: removing everything of a prefix from the host, whether this run or a crashed one
made it, so each cluster starts on a clean host and leaves one behind."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
from pathlib import Path

import docker

from tests.support.swarm.helpers import (
    _client,
    _has_network,
    _mounts,
    _remove_network,
    _run,
    _try,
)
from tests.support.swarm.node import _cgroup_roots, _cgroup_tree_pids, _kill, _kill_node_processes
from tests.support.swarm.settings import (
    HOST_SOCKET,
    REGISTRY_BINARY,
    TASK_LABEL,
    SwarmHarnessError,
    SwarmSettings,
)
from tests.support.wait import poll


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
        # No service is removed first: removing one while Swarm reaps its tasks can crash
        # Docker 20.10's manager (pipeline/docker/swarm.py), and this manager is the host's
        # engine. Leaving drops them all; their containers here go by SIGKILL.
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
    # The low-level listing: a container may go between a listing and its inspection.
    for container in client.api.containers(all=True, filters={"label": TASK_LABEL}):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(container["Id"], force=True)


def _untag_registry_images(settings: SwarmSettings) -> None:
    marker = settings.run_dir / "registry"
    if not marker.exists():
        return
    client = _client(HOST_SOCKET)
    prefix = marker.read_text() + "/"
    # Task containers a crashed engine left on the host once it was out of the swarm.
    for container in client.api.containers(all=True):
        if str(container["Image"]).startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(container["Id"], force=True)
    for image in client.api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(prefix):
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_image(tag)


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


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
