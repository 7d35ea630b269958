"""Each web container of a slot on its own: where it runs now.

A slot's record says where each container was put. Since then Docker may have restarted one
(at a new address on the bridge, or the same), Swarm may have started one again on another
node after losing its node, and the supervisor records the new address once it has gated the
container there. So every look starts from the record as it is now and asks the runtime
where each container runs and which nodes are up (`place_slot`): the bake window judges each
one there (`pipeline.steps.judge`), and a flip back routes only to what runs and answers
(`serving_now`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.app.config import HealthCheck
from pipeline.runtime import Container, Instance, Node, Runtime, Slot
from pipeline.steps.health import probe


class Whereabouts(enum.StrEnum):
    RUNNING = "running"  # on a node that is up, at `Placement.now`
    STOPPED = "stopped"  # not running, and its node is up: exited, restarting, removed
    LOST = "lost"  # not running, and the node it was on is down or drained


@dataclass(frozen=True)
class Placement:
    """One container of a slot: where its record puts it, and where it runs now."""

    recorded: Instance
    whereabouts: Whereabouts
    now: Instance | None = None  # where it runs (RUNNING)
    node_lost: bool = False  # the node it was on before is down or drained
    detail: str = ""  # why it does not run
    restarts: int = 0  # by its restart policy so far (STOPPED)

    @property
    def container(self) -> str:
        return self.recorded.container


def is_up(node: Node) -> bool:
    """A node that may run containers: ready, and not being drained of them."""
    return node.state == "ready" and node.availability != "drain"


def place_slot(
    runtime: Runtime, slot: Slot, port: int, last: Mapping[str, Instance] | None = None
) -> list[Placement]:
    """Each container of `slot` as the runtime lists it now; `last`: where each one was seen
    running before, when that is not where its record puts it."""
    listed = {container.name: container for container in runtime.containers()}
    away = {node.address: node for node in runtime.nodes() if not is_up(node)}
    placements = []
    for recorded in slot.instances:
        placement = place(recorded, listed.get(recorded.container), port, away, last or {})
        if placement.whereabouts is Whereabouts.STOPPED:
            state = runtime.state(recorded.container)
            detail = f"not running ({state.status}, exit code {state.exit_code})"
            placement = Placement(
                recorded, Whereabouts.STOPPED, detail=detail, restarts=state.restarts
            )
        placements.append(placement)
    return placements


def place(
    recorded: Instance,
    seen: Container | None,
    port: int,
    away: Mapping[str, Node],
    last: Mapping[str, Instance],
) -> Placement:
    """Where one container runs, from the runtime's listing (`seen`) and the nodes that are
    down or drained (`away`, by address)."""
    before = last.get(recorded.container, recorded)
    lost = [away[a] for a in (recorded.address, before.address) if a in away]
    now = seen.instance(port) if seen is not None else None
    if now is not None and now.address not in away:
        return Placement(recorded, Whereabouts.RUNNING, now, node_lost=bool(lost))
    if lost:
        node = lost[0]
        detail = f"its node {node.name} ({node.address}) is {_condition(node)}"
        return Placement(recorded, Whereabouts.LOST, node_lost=True, detail=detail)
    return Placement(recorded, Whereabouts.STOPPED, detail="not running")


def _condition(node: Node) -> str:
    return "drained" if node.state == "ready" else node.state


def serving_now(
    runtime: Runtime, slot: Slot, port: int, check: HealthCheck
) -> tuple[list[Instance], list[str]]:
    """The containers of `slot` that run on a node that is up and pass one probe where they
    run now; and why each of the others was left out."""
    serving: list[Instance] = []
    left_out: list[str] = []
    for placement in place_slot(runtime, slot, port):
        if placement.now is None:
            left_out.append(f"{placement.container}: {placement.detail}")
            continue
        result = probe(placement.now.url + check.path, check.timeout)
        if result.ok:
            serving.append(placement.now)
        else:
            left_out.append(f"{placement.container} at {placement.now.url}: {result.detail}")
    return serving, left_out


def recorded_as(slot: Slot, serving: list[Instance]) -> Slot:
    """`slot` with each container that serves at the address it serves at now."""
    now = {instance.container: instance for instance in serving}
    return Slot(tuple(now.get(i.container, i) for i in slot.instances))
