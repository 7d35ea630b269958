"""The namespaced nodes: starting a dockerd (and its registry forwarder) in a network
namespace of its own, and killing every process of a node, as the loss of its machine."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import docker

from tests.support.swarm.helpers import _in_namespace, _mounts, _run, _self_command
from tests.support.swarm.settings import (
    NODE_LABEL,
    SwarmHarnessError,
    SwarmSettings,
    _Engine,
    _Started,
)
from tests.support.wait import poll


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
