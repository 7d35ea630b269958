"""The storage of apps: named volumes and where each is mounted."""

from __future__ import annotations

from sqlmodel import col, select

from pipeline.sqlite.models import App, Mount
from pipeline.sqlite.records import Records


class Mounts(Records):
    def of(self, app: App) -> list[Mount]:
        with self._session() as session:
            query = select(Mount).where(Mount.app_id == app.pk).order_by(col(Mount.name))
            return list(session.exec(query))

    def add(self, app: App, name: str, path: str) -> Mount:
        return self._insert(
            Mount(app_id=app.pk, name=name, path=path),
            lambda: f"app {app.name!r} already mounts a volume named {name!r} or one at {path}",
        )

    def remove(self, app: App, name: str) -> Mount:
        query = select(Mount).where(Mount.app_id == app.pk, Mount.name == name)
        return self._delete_one(query, f"app {app.name!r} mounts no volume named {name!r}")
