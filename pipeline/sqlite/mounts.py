"""The storage of apps: named volumes and where each is mounted."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pipeline.errors import Conflict, NotFound
from pipeline.sqlite.models import App, Mount


class Mounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def of(self, app: App) -> list[Mount]:
        with self._session() as session:
            query = select(Mount).where(Mount.app_id == app.pk).order_by(col(Mount.name))
            return list(session.exec(query))

    def add(self, app: App, name: str, path: str) -> Mount:
        with self._session() as session:
            mount = Mount(app_id=app.pk, name=name, path=path)
            session.add(mount)
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(
                    f"app {app.name!r} already mounts a volume named {name!r} or one at {path}"
                ) from None
            return mount

    def remove(self, app: App, name: str) -> Mount:
        with self._session() as session:
            query = select(Mount).where(Mount.app_id == app.pk, Mount.name == name)
            mount = session.exec(query).first()
            if mount is None:
                raise NotFound(f"app {app.name!r} mounts no volume named {name!r}")
            session.delete(mount)
            session.commit()
            return mount
