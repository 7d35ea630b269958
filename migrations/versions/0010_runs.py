"""One-off runs (`temps run`): who ran which command from which release, when, and how it
ended.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import integer, key, ref, seconds, text

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "runs",
        key(),
        ref("app_id", "apps.id"),
        integer("release"),
        text("who"),
        text("command"),
        sa.Column("tty", sa.Boolean(), nullable=False),
        text("state"),
        text("container", null=True),
        integer("exit_code", null=True),
        text("detail", null=True),
        seconds("created_at"),
        seconds("started_at", null=True),
        seconds("ended_at", null=True),
    )
    op.create_index("ix_runs_app_id", "runs", ["app_id"])


def downgrade() -> None:
    op.drop_table("runs")
