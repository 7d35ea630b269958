"""Webhook source and secrets per app, outbound notification, deliveries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_COLUMNS = (
    "repo_url",
    "repo_token_sealed",
    "webhook_secret_sealed",
    "webhook_secret_hash",
    "notify_url",
    "notify_secret_sealed",
)


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        for name in APP_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        batch.add_column(sa.Column("branch", sa.String(), nullable=False, server_default="main"))
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("app_id", "provider", "delivery_id"),
    )
    op.create_index("ix_deliveries_app_id", "deliveries", ["app_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("branch")
        for name in APP_COLUMNS:
            batch.drop_column(name)
