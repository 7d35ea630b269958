"""A worker node lost under load: what the swarm test checks is routed around, and what
bench/swarm.py times; and where requests went after it, from Traefik's own access log."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.checks import route_servers
from tests.support.daemon import TempsDaemon
from tests.support.load import LoadGenerator, LoadSummary
from tests.support.swarm.cluster import SwarmCluster
from tests.support.swarm.settings import SwarmNode
from tests.support.wait import poll

PLACED_TIMEOUT = 120.0


@dataclass(frozen=True)
class NodeLoss:
    lost: SwarmNode
    after: list[dict[str, Any]]  # the live slot once placed off the lost node, or the last seen
    back_in: float  # seconds from the kill to `after`
    load: LoadSummary


def live_slot(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    return list(daemon.app(app)["live_release"]["slot"]["web"])


def lose_a_node_under_load(daemon: TempsDaemon, cluster: SwarmCluster, app: str) -> NodeLoss:
    """Kill the worker that runs the first web task of `app` while load runs through Traefik;
    wait until none of its tasks is on that node and Traefik routes to as many as before."""
    before = live_slot(daemon, app)
    lost = {node.address: node for node in cluster.workers}[before[0]["address"]]
    # Enough clients that the few whose request the lost node holds do not stop the load.
    load = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", workers=30, max_seconds=300)
    load.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        cluster.kill_node(lost.name)
        after = poll(
            lambda: live_slot(daemon, app),
            lambda slot: (
                lost.address not in {e["address"] for e in slot}
                and len(route_servers(daemon, app)) == len(before)
            ),
            timeout=PLACED_TIMEOUT,
            interval=0.2,
        )
        back_in = time.monotonic() - killed_at
        time.sleep(2.0)  # the load goes on over the replacements
    finally:
        summary = load.stop()
    return NodeLoss(lost, after, back_in, summary)


def node_down_at(daemon: TempsDaemon, address: str, timeout: float = PLACED_TIMEOUT) -> float:
    """When (epoch seconds, polled every 50 ms) the daemon's `temps nodes` first lists the
    node at `address` as anything but ready."""

    def state() -> str:
        with daemon.client() as api:
            listed = api.get("/api/nodes").json()
        return next(str(n["state"]) for n in listed if n["address"] == address)

    seen = poll(state, lambda found: found != "ready", timeout=timeout, interval=0.05)
    assert seen != "ready", f"the node at {address} was still ready after {timeout:g}s"
    return time.time()


@dataclass(frozen=True)
class Sent:
    """One request as Traefik's access log has it: the server it was sent to, and when."""

    started: float  # epoch seconds
    server: str  # ServiceURL
    status: int
    retries: int


def requests_sent(access_log: Path, since: float) -> list[Sent]:
    """Every request Traefik logged that started at `since` or later."""
    found = []
    for line in access_log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line Traefik is still writing
        started = _epoch(str(entry.get("StartUTC", "")))
        if started is not None and started >= since:
            found.append(
                Sent(
                    started,
                    str(entry.get("ServiceURL", "")),
                    int(entry.get("DownstreamStatus", 0)),
                    int(entry.get("RetryAttempts", 0)),
                )
            )
    return found


def _epoch(text: str) -> float | None:
    """Traefik's StartUTC (nanoseconds, `Z`) as epoch seconds."""
    head, dot, tail = text.rstrip("Z").partition(".")
    if not head:
        return None
    fraction = (tail + "000000")[:6] if dot else "000000"
    return datetime.fromisoformat(f"{head}.{fraction}+00:00").timestamp()
