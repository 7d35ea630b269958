"""The custom domains of apps: one row per host name, each host owned by one app."""

from __future__ import annotations

from sqlmodel import col, select

from pipeline.sqlite.models import App, Domain
from pipeline.sqlite.records import Records


class Domains(Records):
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
        def taken() -> str:
            owner = self.owner(host)
            return f"{host} is already a domain of {f'app {owner.name!r}' if owner else 'an app'}"

        return self._insert(Domain(app_id=app.pk, host=host), taken)

    def remove(self, app: App, host: str) -> None:
        query = select(Domain).where(Domain.app_id == app.pk, Domain.host == host)
        self._delete_one(query, f"{host} is not a domain of app {app.name!r}")
