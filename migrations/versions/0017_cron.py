"""Scheduled jobs: one row per scheduled time of an app's `[[cron]]` entry, unique, so that a
time is claimed once and never run twice; how it ran and the last lines it printed.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import integer, key, ref, seconds, text

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "cron_runs",
        key(),
        ref("app_id", "apps.id"),
        text("name"),
        seconds("scheduled_at"),
        text("source"),
        text("state"),
        integer("release", null=True),
        text("command"),
        text("container", null=True),
        integer("exit_code", null=True),
        text("detail", null=True),
        text("output"),
        seconds("started_at", null=True),
        seconds("ended_at", null=True),
        sa.UniqueConstraint("app_id", "name", "scheduled_at"),
    )
    op.create_index("ix_cron_runs_app_id", "cron_runs", ["app_id"])


def downgrade() -> None:
    op.drop_table("cron_runs")
