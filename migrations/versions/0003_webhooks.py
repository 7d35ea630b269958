"""Webhook source and secrets per app, outbound notification, deliveries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import add_columns, drop_columns, integer, key, ref, seconds, text

revision = "0003"
down_revision = "0002"

APP_COLUMNS = (
    "repo_url",
    "repo_token_sealed",
    "webhook_secret_sealed",
    "webhook_secret_hash",
    "notify_url",
    "notify_secret_sealed",
)


def upgrade() -> None:
    optional = (text(name, null=True) for name in APP_COLUMNS)
    add_columns("apps", *optional, text("branch", default="main"))
    op.create_table(
        "deliveries",
        key(),
        ref("app_id", "apps.id"),
        *(text(name) for name in ("provider", "delivery_id", "event", "outcome")),
        integer("release_id", null=True),
        seconds("received_at"),
        sa.UniqueConstraint("app_id", "provider", "delivery_id"),
    )
    op.create_index("ix_deliveries_app_id", "deliveries", ["app_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    drop_columns("apps", "branch", *APP_COLUMNS)
