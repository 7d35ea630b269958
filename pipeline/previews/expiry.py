"""Previews idle longer than their app's `[preview] ttl` are destroyed, by the same destroy
as a deleted branch's. Idle is time since the preview's last deploy ended (`limits.idle_since`). The
branch stays in the app's repository: pushing it again makes the preview again.

The ttl is read from main's `temps.toml` at each check, so changing it on main applies to
the previews there are.
"""

from __future__ import annotations

import time

import structlog

from pipeline.deploy.destroy import Destroyer
from pipeline.errors import InvalidInput, TempsError
from pipeline.previews import branches
from pipeline.previews.limits import idle_since
from pipeline.settings import Settings
from pipeline.sqlite.models import App
from pipeline.sqlite.store import Store
from pipeline.supervision.periodic import Periodic

log = structlog.get_logger()


class PreviewExpiry(Periodic):
    name = "preview_expiry"

    def __init__(self, settings: Settings, store: Store, destroyer: Destroyer) -> None:
        super().__init__(settings.preview_check_interval)
        self.settings = settings
        self.store = store
        self.destroyer = destroyer

    def check(self) -> None:
        for parent in self.store.list_apps():
            if parent.preview_of is None and not parent.destroying:
                self._expire(parent)

    def _expire(self, parent: App) -> None:
        previews = self.store.previews.of(parent)
        if not previews:
            return
        try:
            config = branches.settings_of(self.settings, parent)
        except InvalidInput as exc:
            log.warning("preview.ttl_unread", app=parent.name, error=str(exc))
            return
        ttl = config.ttl_seconds
        if ttl is None:
            return
        now = time.time()
        for preview, pushed in idle_since(self.store, previews).items():
            idle = now - pushed
            if idle < ttl:
                continue
            log.info(
                "preview.expired",
                app=preview,
                parent=parent.name,
                ttl=config.ttl,
                idle_seconds=round(idle),
            )
            try:
                self.destroyer.destroy(preview, False)
            except TempsError as exc:  # tried again at the next check
                log.error("preview.expire_failed", app=preview, error=str(exc))
