"""Secrets and previews: which of an app's variables are marked secret (`temps config set
--secret`), never copied to a preview unless its `[preview]` names them; and when a
preview's setup command ran, so that it runs once per preview; and whether a preview
mounts its app's volumes.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from migrations.columns import add_columns, boolean, drop_columns, seconds, text

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    add_columns(
        "apps",
        text("secret_keys", default="[]"),
        seconds("setup_done_at", null=True),
        boolean("shares_volumes"),
    )


def downgrade() -> None:
    drop_columns("apps", "secret_keys", "setup_done_at", "shares_volumes")
