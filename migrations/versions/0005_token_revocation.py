"""Tokens are revoked, not deleted, so the admin token file cannot bring one back.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from migrations.columns import adding, seconds

revision = "0005"
down_revision = "0004"

upgrade, downgrade = adding("tokens", seconds("revoked_at", null=True))
