"""App environment and setting overrides; release environment snapshot and rollback source.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from migrations.columns import add_columns, drop_columns, integer, text

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    add_columns("apps", text("env", default="{}"), text("settings", default="{}"))
    add_columns("releases", text("env", default="{}"), integer("rollback_of", null=True))


def downgrade() -> None:
    drop_columns("releases", "rollback_of", "env")
    drop_columns("apps", "settings", "env")
