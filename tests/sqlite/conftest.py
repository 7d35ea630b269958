"""A store on a real SQLite file, migrated by Alembic, for the record modules' tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.sqlite.schema import migrate
from pipeline.sqlite.store import Store, make_engine


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'temps.db'}"
    migrate(url)
    store = Store(make_engine(url))
    try:
        yield store
    finally:
        store.close()
