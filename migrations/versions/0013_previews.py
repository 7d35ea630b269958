"""Previews (review apps): an app made for a branch of another app, which it names with the
branch's ref.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.columns import drop_columns, text

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("preview_of", sa.Integer(), nullable=True))
        batch.add_column(text("preview_ref", null=True))
        batch.create_foreign_key("fk_apps_preview_of_apps", "apps", ["preview_of"], ["id"])
        batch.create_index("ix_apps_preview_of", ["preview_of"])


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.drop_index("ix_apps_preview_of")
        batch.drop_constraint("fk_apps_preview_of_apps", type_="foreignkey")
    drop_columns("apps", "preview_of", "preview_ref")
