"""Commit statuses: where an app reports each deploy's state on the deployed commit (GitHub's
or GitLab's status API), the repository there, the API's base URL and the token, sealed.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from migrations.columns import add_columns, drop_columns, text

revision = "0015"
down_revision = "0014"

COLUMNS = ("status_provider", "status_repository", "status_api_url", "status_token_sealed")


def upgrade() -> None:
    add_columns("apps", *(text(name, null=True) for name in COLUMNS))


def downgrade() -> None:
    drop_columns("apps", *COLUMNS)
