"""What the store's record modules share: the engine, and short sessions whose objects keep
their values after the commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel
from sqlmodel.sql.expression import SelectOfScalar

from pipeline.errors import Conflict, NotFound

Row = TypeVar("Row", bound=SQLModel)


class Records:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _insert(self, row: Row, conflict: Callable[[], str]) -> Row:
        """Store a new row; a unique column it repeats is a Conflict saying `conflict()`."""
        with self._session() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                raise Conflict(conflict()) from None
            return row

    def _delete_one(self, query: SelectOfScalar[Row], missing: str) -> Row:
        """Delete the row `query` finds; none is a NotFound saying `missing`."""
        with self._session() as session:
            row = session.exec(query).first()
            if row is None:
                raise NotFound(missing)
            session.delete(row)
            session.commit()
            return row
