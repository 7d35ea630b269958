"""App environment and setting overrides; release environment snapshot and rollback source.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("env", sa.String(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("settings", sa.String(), nullable=False, server_default="{}"))
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("env", sa.String(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("rollback_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("rollback_of")
        batch.drop_column("env")
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("settings")
        batch.drop_column("env")
