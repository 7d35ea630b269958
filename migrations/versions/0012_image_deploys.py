"""Image deploys (`temps deploy --image`): what a release pulled, pinned by its digest, and
the registries temps logs in to, their passwords sealed.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import add_columns, drop_columns, key, seconds, text

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    add_columns("releases", text("pulled", null=True))
    op.create_table(
        "registry_logins",
        key(),
        text("host"),
        text("username"),
        text("password_sealed"),
        seconds("created_at"),
        sa.UniqueConstraint("host"),
    )


def downgrade() -> None:
    op.drop_table("registry_logins")
    drop_columns("releases", "pulled")
