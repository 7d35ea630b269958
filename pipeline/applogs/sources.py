"""Which containers an app's tail follows: those of the releases that serve it now.

That is the live release, and a release taking over from it (a canary, or a release being
switched to or drained to), whose containers answer requests already. Each container is
named by its place in its release's record, `web.1..N` then each background process type's
`worker.1..N`: a scale up adds at the end and a scale down takes from the end, so a
container keeps its name for as long as it runs.
"""

from __future__ import annotations

from pipeline.applogs.lines import Label
from pipeline.errors import Conflict, InvalidInput
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import ReleaseState
from pipeline.sqlite.models import App, Release
from pipeline.sqlite.store import Store

TAKING_OVER = (ReleaseState.CANARY, ReleaseState.SWITCHING, ReleaseState.DRAINING)


def labels_of(release: Release) -> list[Label]:
    """Every container `release` records, named by process type and place."""
    slot = formation.slot_of(release)
    web = [instance.container for instance in slot.instances] if slot else []
    by_process = {WEB: web} | formation.workers_of(release)
    return [
        Label(process, index, release.number, name)
        for process, names in by_process.items()
        for index, name in enumerate(names, 1)
    ]


def serving(store: Store, app_name: str, process: str | None) -> list[Label]:
    """The containers of the releases that serve the app now, of `process` if named; none
    of a process type stopped on purpose (`temps ps stop`)."""
    app = store.get_app(app_name)
    releases = [store.live_release(app), store.newest_in(app, *TAKING_OVER)]
    return [
        label
        for release in releases
        if release is not None
        for label in labels_of(release)
        if (process is None or label.process == process) and label.process not in app.stopped
    ]


def check(store: Store, app: App, process: str | None) -> None:
    """Refuse a tail of an app that has never gone live, or of a process type its live
    release does not run."""
    live = store.live_release(app)
    if live is None:
        raise Conflict(
            f"{app.name} has no live release: nothing runs to show the logs of yet "
            f"(`git push` one; its deploy log is `temps releases output {app.name}`)"
        )
    known = {WEB, *live.config.processes}
    if process is not None and process not in known:
        raise InvalidInput(
            f"unknown process type {process[:64]!r}: v{live.number} of {app.name} runs "
            f"{', '.join(sorted(known))}"
        )
