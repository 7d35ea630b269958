"""Webhook deliveries remember a digest of their body, so a replay under a new id is refused.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("body_digest", sa.String(), nullable=True))
    # Rows from before have no digest; SQLite keeps NULLs distinct in a unique index.
    op.create_index(
        "ix_deliveries_body", "deliveries", ["app_id", "provider", "body_digest"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_body", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("body_digest")
