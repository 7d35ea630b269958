"""Each app's traffic over time, in buckets, and the changes marked on its graphs.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import integer, key, ref, seconds, text

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.create_table(
        "series_buckets",
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("apps.id"), primary_key=True),
        sa.Column("at", sa.Integer(), primary_key=True),
        integer("ok"),
        integer("redirects"),
        integer("refused"),
        integer("failed"),
        text("latency"),
        integer("restarts"),
    )
    op.create_table(
        "series_marks",
        key(),
        ref("app_id", "apps.id"),
        seconds("at"),
        text("kind"),
        text("label"),
    )
    op.create_index("ix_series_marks_app_id", "series_marks", ["app_id"])
    op.create_index("ix_series_marks_at", "series_marks", ["at"])


def downgrade() -> None:
    op.drop_table("series_marks")
    op.drop_table("series_buckets")
