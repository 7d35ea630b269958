"""Webhook deliveries remember a digest of their body, so a replay under a new id is refused.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from migrations.columns import add_columns, drop_columns, text

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    add_columns("deliveries", text("body_digest", null=True))
    # Rows from before have no digest; SQLite keeps NULLs distinct in a unique index.
    op.create_index(
        "ix_deliveries_body", "deliveries", ["app_id", "provider", "body_digest"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_body", "deliveries")
    drop_columns("deliveries", "body_digest")
