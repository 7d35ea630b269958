"""Check the swarm harness end to end on this machine, and print one PASS or FAIL line.

    .venv/bin/python -m tests.support.swarm_selftest [--netns-manager]

Brings a cluster up (the host engine as manager unless --netns-manager), runs a 3-replica
host-mode service from a registry image, reads each task over HTTP from the host, kills the
worker under one task and times its replacement, then tears down and looks for leftovers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import docker
from docker.types import EndpointSpec, RestartPolicy, ServiceMode

from tests.support.busybox import ensure_busybox_image
from tests.support.swarm import HOST_SOCKET, SwarmCluster, SwarmSettings, swarm_cluster
from tests.support.wait import poll

# Each task serves the hostname of its node, so a reply says where it came from.
HTTPD = ["sh", "-c", "echo $NODE > /www/index.html && exec httpd -f -p 8000 -h /www"]
HOST_MODE = EndpointSpec(ports=[{"TargetPort": 8000, "Protocol": "tcp", "PublishMode": "host"}])


class Failed(Exception):
    """A check did not hold."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)


def run(settings: SwarmSettings, figures: dict[str, float]) -> None:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as scratch,
        swarm_cluster(2, tmp=Path(scratch), settings=settings) as cluster,
    ):
        figures["up_s"] = time.monotonic() - started
        ref = cluster.push_image(ensure_busybox_image(), "temps/selftest")
        for node in cluster.workers:
            node.client().images.pull(ref)  # by digest, through the node's loopback forward
        serve_and_lose_a_node(cluster, ref, figures)
        closing = time.monotonic()
    figures["down_s"] = time.monotonic() - closing
    check_nothing_left(settings)


def serve_and_lose_a_node(cluster: SwarmCluster, ref: str, figures: dict[str, float]) -> None:
    client = cluster.manager.client()
    service = client.services.create(
        ref,
        HTTPD,
        name="selftest-web",
        env=["NODE={{.Node.Hostname}}"],
        endpoint_spec=HOST_MODE,
        mode=ServiceMode("replicated", replicas=3),
        restart_policy=RestartPolicy(condition="any", delay=0),
        init=True,
    )
    tasks = wait_running(service, 3)
    check({t["NodeID"] for t in tasks} == {n.node_id for n in cluster.nodes}, "3 tasks, 1 a node")
    for task in tasks:
        check_serves(cluster, task)
    victim = cluster.workers[0]  # every node runs one task
    lost = time.monotonic()
    cluster.kill_node(victim.name)
    down = poll(
        lambda: client.nodes.get(victim.node_id).attrs["Status"]["State"],
        lambda state: state == "down",
        timeout=60,
    )
    figures["node_down_s"] = time.monotonic() - lost
    check(down == "down", f"{victim.name} is {down} after being killed, not down")
    alive = wait_running(service, 3, avoid=victim.node_id)
    figures["rescheduled_s"] = time.monotonic() - lost
    for task in alive:
        check_serves(cluster, task)


def wait_running(service: Any, count: int, avoid: str = "") -> list[dict[str, Any]]:
    def running() -> list[dict[str, Any]]:
        return [
            task
            for task in service.tasks(filters={"desired-state": "running"})
            if task["Status"]["State"] == "running" and task["NodeID"] != avoid
        ]

    tasks = poll(running, lambda found: len(found) == count, timeout=90, interval=0.2)
    check(len(tasks) == count, f"{len(tasks)} tasks of {service.name} running, not {count}")
    return tasks


def check_serves(cluster: SwarmCluster, task: dict[str, Any]) -> None:
    node = next(node for node in cluster.nodes if node.node_id == task["NodeID"])
    published = cluster.published(task)
    check(len(published) == 1, f"task on {node.name} publishes {published}")
    address, port = published[0]
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as answer:
        body = answer.read().decode().strip()
    check(body == node.hostname, f"{address}:{port} answered {body!r}, not {node.hostname!r}")


def check_nothing_left(settings: SwarmSettings) -> None:
    swarm = docker.DockerClient(base_url=f"unix://{HOST_SOCKET}").info()["Swarm"]
    check(swarm["LocalNodeState"] == "inactive", f"host engine swarm is {swarm['LocalNodeState']}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    for where, text in (("ip netns", netns), ("ip link", links), ("iptables", rules)):
        check(settings.prefix not in text, f"{where} still shows {settings.prefix}")
    check(not settings.run_dir.exists(), f"{settings.run_dir} is still there")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.swarm_selftest")
    parser.add_argument("--netns-manager", action="store_true", help="leave the host engine be")
    args = parser.parse_args()
    settings = SwarmSettings(host_manager=not args.netns_manager)
    figures: dict[str, float] = {}
    try:
        run(settings, figures)
    except Exception as exc:
        print(f"FAIL swarm selftest: {type(exc).__name__}: {exc} {format_figures(figures)}")
        return 1
    print(f"PASS swarm selftest: {format_figures(figures)}")
    return 0


def format_figures(figures: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.1f}" for name, value in figures.items())


if __name__ == "__main__":
    sys.exit(main())
