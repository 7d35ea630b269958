"""An app being destroyed: when its destroy was asked, and whether its named volumes go too.
Recorded before anything of the app is removed, so that a daemon stopped half-way finishes
the destroy at its next start.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa

from migrations.columns import add_columns, drop_columns, seconds

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    add_columns(
        "apps",
        seconds("destroying_at", null=True),
        sa.Column("destroy_volumes", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    drop_columns("apps", "destroying_at", "destroy_volumes")
