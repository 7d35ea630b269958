"""Previews: apps made for a branch of another app (`App.preview_of`, `App.preview_ref`)."""

from __future__ import annotations

from sqlmodel import col, func, select

from pipeline.sqlite.models import App
from pipeline.sqlite.records import Records


class Previews(Records):
    def of(self, parent: App) -> list[App]:
        """The app's previews, oldest first."""
        with self._session() as session:
            query = select(App).where(App.preview_of == parent.pk).order_by(col(App.id))
            return list(session.exec(query))

    def count(self) -> int:
        """The previews of every app."""
        with self._session() as session:
            query = select(func.count()).select_from(App).where(col(App.preview_of).is_not(None))
            return session.exec(query).one()

    def for_ref(self, parent: App, ref: str) -> App | None:
        """The app's preview of `ref` (`refs/heads/feature-x`), if it has one."""
        with self._session() as session:
            query = select(App).where(App.preview_of == parent.pk, App.preview_ref == ref)
            return session.exec(query).first()

    def create(self, parent: App, ref: str, name: str, **fields: object) -> App:
        """A new preview of `parent` for `ref`, named `name`, with `fields` (its environment,
        formation...); web=1 and no other process unless they say otherwise (its worker types
        get 0 as its deploys find them)."""
        row = App(name=name, preview_of=parent.pk, preview_ref=ref, formation={"web": 1})
        for key, value in fields.items():
            setattr(row, key, value)
        return self._insert(row, lambda: f"app {name!r} already exists")
