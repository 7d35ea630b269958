"""Each web container of a slot on its own: where it runs now, and how the bake window judges it.

A slot's record says where each container was put. Since then Docker may have restarted one
on a new port, Swarm may have started one again on another node after losing its node, and
the supervisor records the new address once it has gated the container there. So every look
starts from the record as it is now and asks the runtime where each container runs and which
nodes are up (`place_slot`). A flip back routes only to what runs and answers (`serving_now`).

The bake window keeps one run of consecutive failures per container (`Judge`):

- an answer other than 2xx, a container that is not running on a node that is up (exited,
  restarting, removed), and one that restarted since the last probe are failures of that
  container;
- a container whose node is down or drained is not judged: it went with its node, which is the
  infrastructure's fault, and its run is forgotten; its replacement is judged where it runs;
- after a restart or a move, a container that is not listening yet is waited for as the gate
  waits for it, up to the health check's `deadline`;
- silence (nothing listening, or no answer within `timeout`) is all a probe gets from a lost
  node before the runtime declares it down: a silent run fails the release only once it has
  lasted the runtime's `node_loss_seconds` (0 on one engine: it is this host).

`unhealthy_threshold` failures in a row of any one container fail the release.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.app.config import HealthCheck
from pipeline.runtime import Container, Instance, Node, Runtime, Slot
from pipeline.steps.health import Probe, probe


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
        placement = place(recorded, listed.get(recorded.container), port, away, (last or {}))
        if placement.whereabouts is Whereabouts.STOPPED:
            state = runtime.state(recorded.container)
            detail = f"not running ({state.status}, exit code {state.exit_code})"
            placement = Placement(recorded, Whereabouts.STOPPED, detail=detail)
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
    published = seen.ports.get(port) if seen is not None and seen.running else None
    if seen is not None and published is not None and seen.address not in away:
        now = Instance(recorded.container, published, seen.address)
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


@dataclass(frozen=True)
class Judged:
    """What one look made of one container."""

    container: str
    decisive: bool  # its run of failures fails the release
    line: str | None = None  # for the release log
    reason: str = ""  # why it failed, naming the container


@dataclass
class _Run:
    failures: int = 0
    seen: Instance | None = None  # where it ran at the last look
    gone: bool = False  # stopped or lost at the last look
    lost: bool = False  # lost with its node at the last look
    booting_since: float | None = None  # restarted or moved: not listening yet is waited for
    silent_since: float | None = None  # when the run's silence began


class Judge:
    """The runs of failures of a slot's containers through one bake window."""

    def __init__(self, check: HealthCheck, silence_grace: float) -> None:
        self.check = check
        self.silence_grace = silence_grace  # the runtime's node_loss_seconds
        self._runs: dict[str, _Run] = {}

    @property
    def last_seen(self) -> dict[str, Instance]:
        return {name: run.seen for name, run in self._runs.items() if run.seen is not None}

    @property
    def unsettled(self) -> bool:
        """A run of failures, or a restart, is being confirmed: probe again sooner."""
        return any(r.failures or r.booting_since is not None for r in self._runs.values())

    def forgive(self, container: str) -> None:
        """Start the container's run again (a flip back that could not happen)."""
        run = self._runs.get(container)
        if run is not None:
            run.failures, run.silent_since = 0, None

    def judge(self, placement: Placement, result: Probe | None, now: float) -> Judged:
        """One look at one container: `result` is its probe where it runs (None when it
        does not); `now` a monotonic time."""
        name = placement.container
        run = self._runs.setdefault(name, _Run())
        if placement.whereabouts is Whereabouts.LOST:
            told = None if run.lost else f"bake: {name}: {placement.detail}: not held against it"
            self._runs[name] = _Run(gone=True, lost=True)
            return Judged(name, False, told)
        if placement.now is None:
            run.seen, run.gone, run.lost, run.booting_since = None, True, False, None
            return self._failed(run, name, placement.detail, silent=False, now=now)
        at = placement.now
        moved = run.seen is not None and run.seen != at
        came_back = run.gone
        run.seen, run.gone, run.lost = at, False, False
        if moved and not placement.node_lost:
            run.booting_since = now
            return self._failed(run, name, f"restarted, now at {at.url}", silent=False, now=now)
        told = None
        if moved or came_back:
            run.booting_since = now
            how = "rescheduled off a lost node" if placement.node_lost else "restarted"
            told = f"bake: {name} runs again at {at.url} ({how}): probing it there"
        assert result is not None, "a running container is probed"
        return self._probed(run, name, at, result, now, told)

    def _probed(
        self, run: _Run, name: str, at: Instance, result: Probe, now: float, told: str | None
    ) -> Judged:
        check = self.check
        if result.ok:
            if run.failures or run.booting_since is not None:
                passing = f"bake: {name} at {at.url}: health {check.path}: {result.detail}"
                told = "\n".join(filter(None, (told, f"{passing} (passing again)")))
            run.failures, run.booting_since, run.silent_since = 0, None, None
            return Judged(name, False, told)
        booting = run.booting_since is not None and now - run.booting_since < check.deadline
        if booting and not result.answered:
            return Judged(name, False, told)  # starting up again, as through the gate
        failed = self._failed(
            run, name, f"health {check.path} at {at.url}: {result.detail}", result.silent, now
        )
        if told is not None:
            return Judged(name, failed.decisive, f"{told}\n{failed.line}", failed.reason)
        return failed

    def _failed(self, run: _Run, name: str, detail: str, silent: bool, now: float) -> Judged:
        run.failures += 1
        if not silent:
            run.silent_since = None
        elif run.silent_since is None:
            run.silent_since = now
        threshold = self.check.unhealthy_threshold
        line = f"bake: {name}: {detail} (failure {run.failures}/{threshold})"
        reached = run.failures >= threshold
        silent_for = now - run.silent_since if run.silent_since is not None else None
        held = silent_for is not None and silent_for < self.silence_grace
        if reached and held:
            line += (
                f"; silent for {silent_for:.1f}s: a lost node may take "
                f"{self.silence_grace:g}s to be reported, waiting for that"
            )
        return Judged(name, reached and not held, line, f"{name}: {detail}")
