"""Shorthands for the revisions: the columns a revision adds read as a list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op


def key() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def ref(name: str, target: str) -> sa.Column[Any]:
    """A required reference to `target` ("table.column")."""
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target), nullable=False)


def text(name: str, *, null: bool = False, default: str | None = None) -> sa.Column[Any]:
    return sa.Column(name, sa.String(), nullable=null, server_default=default)


def integer(name: str, *, null: bool = False, default: str | None = None) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=null, server_default=default)


def boolean(name: str) -> sa.Column[Any]:
    """A flag, false in the rows there are."""
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())


def seconds(name: str, *, null: bool = False) -> sa.Column[Any]:
    """A time, as seconds since the epoch."""
    return sa.Column(name, sa.Float(), nullable=null)


def add_columns(table: str, *columns: sa.Column[Any]) -> None:
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.add_column(column)


def drop_columns(table: str, *names: str) -> None:
    with op.batch_alter_table(table) as batch:
        for name in names:
            batch.drop_column(name)


def adding(table: str, column: sa.Column[Any]) -> tuple[Callable[[], None], Callable[[], None]]:
    """A revision that adds one column: its upgrade and its downgrade."""
    return (lambda: add_columns(table, column)), (lambda: drop_columns(table, column.name))
