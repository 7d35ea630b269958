"""Room for one more preview, asked before a push makes one (`branches.preview_for`): the
app's `[preview] max` and the daemon's `--max-previews`. A push to a branch that has a
preview already is never counted: only new previews are.

At the app's cap, `on_max = "refuse"` refuses the push with the app's previews listed, and
`"evict"` destroys the preview idle longest first. At the daemon's cap the push is refused:
one app's push does not destroy another's previews.
"""

from __future__ import annotations

import time

import structlog

from pipeline.app.config import PreviewSettings
from pipeline.app.names import branch_of
from pipeline.deploy.destroy import Destroyer
from pipeline.errors import Conflict
from pipeline.git.serve import Progress
from pipeline.release.states import IN_FLIGHT
from pipeline.sqlite.models import App
from pipeline.sqlite.store import Store

log = structlog.get_logger()


def idle_since(store: Store, previews: list[App]) -> dict[str, float]:
    """Since when each preview is idle, by name: the last change of its newest release (gone
    live, or failed), now while a deploy of it is in flight, or its making when a first push
    was cut short before any release. Counted from the end of a deploy, not its push, so that
    a short ttl does not take a preview whose build was long."""
    newest = store.newest_per_app()
    now = time.time()
    since = {}
    for preview in previews:
        release = newest.get(preview.pk)
        if release is None:
            since[preview.name] = preview.created_at
        elif release.state in IN_FLIGHT:
            since[preview.name] = now
        else:
            since[preview.name] = release.updated_at
    return since


def make_room(
    store: Store,
    destroyer: Destroyer,
    parent: App,
    config: PreviewSettings,
    max_previews: int,
    progress: Progress,
) -> None:
    """Room for one more preview of `parent`, made by evicting if its config says so;
    Conflict when there is none."""
    previews = store.previews.of(parent)
    idle = idle_since(store, previews)
    over = len(previews) - config.max + 1
    evicting = over if over > 0 and config.on_max == "evict" else 0
    if store.previews.count() - evicting >= max_previews:
        raise Conflict(
            f"the daemon holds as many previews as it may (--max-previews {max_previews}); "
            "nothing was deployed"
        )
    if over > 0 and not evicting:
        raise Conflict(_refusal(parent, config, previews, idle, progress))
    for preview in sorted(previews, key=lambda p: idle[p.name])[:evicting]:
        progress(
            f"-----> temps: {parent.name} has {len(previews)} previews, its max: destroying "
            f"{preview.name} ({_branch(preview)}), idle longest\n"
        )
        log.info("preview.evicted", app=preview.name, parent=parent.name, max=config.max)
        destroyer.destroy(preview.name, False)


def _refusal(
    parent: App,
    config: PreviewSettings,
    previews: list[App],
    idle: dict[str, float],
    progress: Progress,
) -> str:
    """The one line git shows beside the refused ref; the previews are listed above it, in
    the push's output, as a refusal's reason is one short line."""
    progress(f"-----> temps: the previews of {parent.name} (name, branch, last deploy):\n")
    for preview in previews:
        progress(f"       {preview.name}  {_branch(preview)}  {_when(idle[preview.name])}\n")
    return (
        f"{parent.name} has {len(previews)} previews, its max ([preview] max = {config.max}); "
        f'delete a branch or set on_max = "evict"; nothing was deployed'
    )


def _branch(preview: App) -> str:
    return branch_of(preview.preview_ref or "")


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
