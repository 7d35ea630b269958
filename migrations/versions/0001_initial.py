"""Apps, releases, release events and logs, tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import integer, key, ref, seconds, text

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("apps", key(), text("name"), seconds("created_at"))
    op.create_index("ix_apps_name", "apps", ["name"], unique=True)
    op.create_table(
        "releases",
        key(),
        ref("app_id", "apps.id"),
        integer("number"),
        *(text(name) for name in ("source", "commit", "state", "strategy")),
        text("image", null=True),
        text("config"),
        text("container", null=True),
        integer("host_port", null=True),
        *(text(name, null=True) for name in ("failure_reason", "failed_step", "log_tail")),
        seconds("created_at"),
        seconds("updated_at"),
        sa.UniqueConstraint("app_id", "number"),
    )
    op.create_index("ix_releases_app_id", "releases", ["app_id"])
    events = [text("state"), text("was", null=True), seconds("at")]
    op.create_table("release_events", key(), ref("release_id", "releases.id"), *events)
    op.create_index("ix_release_events_release_id", "release_events", ["release_id"])
    lines = [seconds("at"), text("line")]
    op.create_table("release_logs", key(), ref("release_id", "releases.id"), *lines)
    op.create_index("ix_release_logs_release_id", "release_logs", ["release_id"])
    op.create_table(
        "tokens",
        key(),
        text("name"),
        sa.Column("token_hash", sa.String(), nullable=False, unique=True),
        text("scope"),
        text("app", null=True),
        seconds("created_at"),
    )


def downgrade() -> None:
    for table in ("tokens", "release_logs", "release_events", "releases", "apps"):
        op.drop_table(table)
