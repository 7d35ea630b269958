"""The custom domains of apps: one row per host name, each host owned by one app."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pipeline.errors import Conflict, NotFound
from pipeline.sqlite.models import App, Domain


class Domains:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def of(self, app: App) -> list[str]:
        """The app's custom hosts, in the order they were added."""
        with self._session() as session:
            query = select(Domain).where(Domain.app_id == app.pk).order_by(col(Domain.id))
            return [domain.host for domain in session.exec(query)]

    def by_app(self) -> dict[int, list[str]]:
        """Every app's custom hosts, by app id (one query for all apps)."""
        found: dict[int, list[str]] = {}
        with self._session() as session:
            for domain in session.exec(select(Domain).order_by(col(Domain.id))):
                found.setdefault(domain.app_id, []).append(domain.host)
        return found

    def owner(self, host: str) -> App | None:
        with self._session() as session:
            query = select(App).join(Domain).where(Domain.host == host)
            return session.exec(query).first()

    def add(self, app: App, host: str) -> Domain:
        with self._session() as session:
            domain = Domain(app_id=app.pk, host=host)
            session.add(domain)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                owner = self.owner(host)
                who = f"app {owner.name!r}" if owner else "another app"
                raise Conflict(f"{host} is already a domain of {who}") from None
            return domain

    def remove(self, app: App, host: str) -> None:
        with self._session() as session:
            query = select(Domain).where(Domain.app_id == app.pk, Domain.host == host)
            domain = session.exec(query).first()
            if domain is None:
                raise NotFound(f"{host} is not a domain of app {app.name!r}")
            session.delete(domain)
            session.commit()
