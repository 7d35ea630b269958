"""How many containers of each process type an app's live release runs against how many its
formation wants: what `GET /api/apps`, `temps ps`, the dashboard and /metrics show. `/healthz`
stays about the daemon itself."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict

from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.sqlite.models import App, Release


class ProcessCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    wanted: int  # the live release's formation
    running: int
    stopped: bool = False  # `temps ps stop`: none runs, on purpose, until `temps ps start`

    @property
    def missing(self) -> int:
        """Containers that should run and do not; none for a process type stopped on purpose."""
        return 0 if self.stopped else max(0, self.wanted - self.running)


Census = dict[str, ProcessCount]  # process type -> its count


def expected(app: App, live: Release) -> dict[str, list[str]]:
    """The containers of the live release that should be running, by process type: every
    one it records, but none of a process type stopped on purpose."""
    return {p: names for p, names in _recorded(live).items() if p not in app.stopped}


def count(app: App, live: Release, running: Collection[str]) -> Census:
    """Each process type's containers in `running` (names) against the live formation's."""
    names = _recorded(live)
    wanted = {WEB: formation.web_count(live.formation)}
    wanted |= formation.background(live.config, live.formation)
    return {
        process: ProcessCount(
            wanted=number,
            running=sum(1 for name in names.get(process, []) if name in running),
            stopped=process in app.stopped,
        )
        for process, number in wanted.items()
    }


def _recorded(live: Release) -> dict[str, list[str]]:
    """Every container the live release records, by process type."""
    slot = formation.slot_of(live)
    return {WEB: [i.container for i in slot.instances] if slot else []} | formation.workers_of(live)
