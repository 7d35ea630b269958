"""A worker node lost under load: what the swarm test checks is routed around, and what
bench/swarm.py times."""

from __future__ import annotations

import time
from dataclasses import dataclass
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
