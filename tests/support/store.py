"""A home's real SQLite store, migrated to the head revision, for tests without a daemon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.settings import Settings
from pipeline.sqlite.schema import migrate
from pipeline.sqlite.store import Store, make_engine


def open_store(settings: Settings) -> Store:
    return _migrated(settings.db_url)


@contextmanager
def store_at(database: Path) -> Iterator[Store]:
    """A store on the SQLite file `database`, migrated, closed afterwards."""
    store = _migrated(f"sqlite:///{database}")
    try:
        yield store
    finally:
        store.close()


def _migrated(url: str) -> Store:
    migrate(url)
    return Store(make_engine(url))
