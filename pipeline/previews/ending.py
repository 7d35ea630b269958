"""The end of a preview: its branch deleted (by a `git push`, or a push delivery) or its pull
(merge) request closed. It is destroyed as `temps apps destroy` destroys an app: drained,
stopped, its route, images, repository and records removed.
"""

from __future__ import annotations

from concurrent.futures import Future

import structlog

from pipeline.deploy.destroy import Destroyed, Destroyer
from pipeline.git.serve import Progress
from pipeline.sqlite.models import App
from pipeline.sqlite.store import Store

log = structlog.get_logger()


def end_preview(
    store: Store, destroyer: Destroyer, parent: App, ref: str, why: str, progress: Progress
) -> tuple[App, Future[Destroyed]] | None:
    """Start destroying the app's preview of `ref`, in the background; the preview and its
    destroy, or None when `ref` has no preview. A destroy that fails leaves the preview
    marked: the daemon's next start finishes it, and so does ending it again."""
    preview = store.previews.for_ref(parent, ref)
    if preview is None:
        return None
    progress(f"-----> temps: {why}: destroying its preview {preview.name}\n")
    log.info("preview.ended", app=preview.name, parent=parent.name, ref=ref, why=why)
    return preview, destroyer.start(preview.name, False)


def summary(destroyed: Destroyed) -> str:
    return (
        f"{len(destroyed.containers)} containers, {len(destroyed.images)} images, "
        f"{len(destroyed.erased.release_ids)} releases"
    )
