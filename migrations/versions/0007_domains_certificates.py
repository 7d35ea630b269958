"""Custom domains (host names an app is served at besides its default one), the state of
each HTTPS host's certificate, each app's redirect and HSTS choices, its storage mounts, and
the formation of apps and releases (process types and counts, and a release's containers).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import add_columns, drop_columns, integer, key, ref, seconds, text

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    add_columns(
        "apps",
        sa.Column("https_redirect", sa.Boolean(), nullable=False, server_default=sa.true()),
        integer("hsts_seconds", default="0"),
        text("formation", default="{}"),
    )
    add_columns("releases", text("formation", null=True), text("slot", null=True))
    op.create_table(
        "domains",
        key(),
        ref("app_id", "apps.id"),
        text("host"),
        seconds("created_at"),
        sa.UniqueConstraint("host"),
    )
    op.create_index("ix_domains_app_id", "domains", ["app_id"])
    op.create_table(
        "certificates",
        key(),
        *(text(name) for name in ("host", "source", "state")),
        seconds("expires_at", null=True),
        text("reason", null=True),
        seconds("retry_at", null=True),
        seconds("updated_at"),
        sa.UniqueConstraint("host"),
    )

    op.create_table(
        "mounts",
        key(),
        ref("app_id", "apps.id"),
        text("name"),
        text("path"),
        seconds("created_at"),
        sa.UniqueConstraint("app_id", "name"),
        sa.UniqueConstraint("app_id", "path"),
    )
    op.create_index("ix_mounts_app_id", "mounts", ["app_id"])


def downgrade() -> None:
    op.drop_table("mounts")
    op.drop_table("certificates")
    op.drop_table("domains")
    drop_columns("releases", "formation", "slot")
    drop_columns("apps", "https_redirect", "hsts_seconds", "formation")
