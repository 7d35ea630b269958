"""Custom domains (host names an app is served at besides its default one), and the state
of each HTTPS host's certificate.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import key, ref, seconds, text

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("domains")
