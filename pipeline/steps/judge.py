"""How the bake window judges each web container of the live slot, by its own run of
consecutive failures, from where the runtime says it runs (`pipeline.steps.replicas`) and
what a probe there got.

- An answer other than 2xx is a failure of that container.
- A crash is one failure: the container is found not running on a node that is up (exited,
  restarting, removed), or running again at a new address, or not listening any more. It
  then comes back by its restart policy, and is waited for as the gate waits for a new
  container: until it passes a probe, only a new crash counts (its restart count went up),
  and not running or not listening count again only once the health check's `deadline` has
  passed since the crash.
- A container whose node is down or drained is not judged: it went with its node, which is the
  infrastructure's fault, and its run is forgotten. Its replacement is judged where it runs,
  waited for as after a crash.
- No answer within `timeout` is all a probe gets from a lost node before the runtime declares
  it down: such a run of silence fails the release only once it has lasted the runtime's
  `node_loss_seconds` (0 on one engine: it is this host).

`unhealthy_threshold` failures in a row of any one container fail the release.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.app.config import HealthCheck
from pipeline.runtime import Instance
from pipeline.steps.health import Probe
from pipeline.steps.replicas import Placement, Whereabouts


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
    down: bool = False  # stopped or lost at the last look
    lost: bool = False  # lost with its node at the last look
    returning_since: float | None = None  # after a crash or a move, until it passes again
    restarts: int | None = None  # its restart count since it was first found stopped
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
        """A run of failures, or a container coming back, is being watched: look sooner (not
        for a container gone with its node: it comes back when the runtime places it)."""
        return any(
            r.failures or (r.returning_since is not None and not r.lost)
            for r in self._runs.values()
        )

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
            self._runs[name] = _Run(down=True, lost=True, returning_since=now)
            return Judged(name, False, told)
        if placement.now is None:
            return self._stopped(run, placement, now)
        at = placement.now
        moved = run.down or (run.seen is not None and run.seen != at)
        run.seen, run.down, run.lost = at, False, False
        told = None
        if moved:
            if run.returning_since is None and not placement.node_lost:
                return self._crashed(run, name, f"restarted, now at {at.url}", now)
            run.returning_since = run.returning_since or now
            how = "rescheduled off a lost node" if placement.node_lost else "restarted"
            told = f"bake: {name} runs again at {at.url} ({how}): probing it there"
        assert result is not None, "a running container is probed"
        failed = self._probed(run, name, at, result, now)
        lines = "\n".join(line for line in (told, failed.line) if line)
        return Judged(name, failed.decisive, lines or None, failed.reason)

    def _stopped(self, run: _Run, placement: Placement, now: float) -> Judged:
        name, restarts = placement.container, placement.restarts
        crashed_again = run.restarts is not None and restarts > run.restarts
        run.seen, run.down, run.lost, run.restarts = None, True, False, restarts
        if run.returning_since is None:
            return self._crashed(run, name, placement.detail, now)
        if crashed_again or self._overdue(run, now):
            return self._failed(run, name, placement.detail, silent=False, now=now)
        return Judged(name, False)  # coming back by its restart policy

    def _probed(self, run: _Run, name: str, at: Instance, result: Probe, now: float) -> Judged:
        check = self.check
        if result.ok:
            told = None
            if run.failures or run.returning_since is not None:
                told = f"bake: {name} at {at.url}: health {check.path}: {result.detail}"
                told += " (passing again)"
            run.failures, run.returning_since, run.silent_since, run.restarts = 0, None, None, None
            return Judged(name, False, told)
        detail = f"health {check.path} at {at.url}: {result.detail}"
        if not result.answered:  # nothing listens there any more: the app died or is starting
            if run.returning_since is None:
                return self._crashed(run, name, detail, now)
            if not self._overdue(run, now):
                return Judged(name, False)
        return self._failed(run, name, detail, result.silent, now)

    def _overdue(self, run: _Run, now: float) -> bool:
        since = run.returning_since
        return since is not None and now - since >= self.check.deadline

    def _crashed(self, run: _Run, name: str, detail: str, now: float) -> Judged:
        run.returning_since = now
        return self._failed(run, name, detail, silent=False, now=now)

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
