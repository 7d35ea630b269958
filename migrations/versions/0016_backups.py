"""Backups: of an app's volumes or of the daemon's records, where each is stored, its state
(running, good once verified, failed) and what its last verification found.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import integer, key, seconds, text

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.create_table(
        "backups",
        key(),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("apps.id"), nullable=True),
        text("destination"),
        text("state"),
        seconds("started_at"),
        seconds("ended_at", null=True),
        integer("size", null=True),
        text("manifest", null=True),
        seconds("verified_at", null=True),
        text("verification", null=True),
        text("reason", null=True),
    )
    op.create_index("ix_backups_app_id", "backups", ["app_id"])


def downgrade() -> None:
    op.drop_table("backups")
