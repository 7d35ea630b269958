"""How many containers of each process type an app's live release runs against how many its
formation wants: what `GET /api/apps`, `temps ps`, the dashboard and /metrics show. `/healthz`
stays about the daemon itself."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.runtime import Container
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
    slot = formation.slot_of(live)
    recorded = {WEB: [i.container for i in slot.instances] if slot else []}
    recorded |= formation.workers_of(live)
    return {p: names for p, names in recorded.items() if p not in app.stopped}


def count(app: App, live: Release, containers: dict[str, Container]) -> Census:
    slot = formation.slot_of(live)
    names = {WEB: [i.container for i in slot.instances] if slot else []}
    names |= formation.workers_of(live)
    wanted = {WEB: formation.web_count(live.formation)}
    wanted |= formation.background(live.config, live.formation)
    census: Census = {}
    for process, number in wanted.items():
        seen = (containers.get(name) for name in names.get(process, []))
        census[process] = ProcessCount(
            wanted=number,
            running=sum(1 for c in seen if c is not None and c.running),
            stopped=process in app.stopped,
        )
    return census
