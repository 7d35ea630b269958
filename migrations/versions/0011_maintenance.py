"""An app in maintenance: since when its hosts answer 503 with its maintenance page.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from migrations.columns import add_columns, drop_columns, seconds

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    add_columns("apps", seconds("maintenance_since", null=True))


def downgrade() -> None:
    drop_columns("apps", "maintenance_since")
