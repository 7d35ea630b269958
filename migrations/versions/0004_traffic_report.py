"""Traffic report per release.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from migrations.columns import adding, text

revision = "0004"
down_revision = "0003"

upgrade, downgrade = adding("releases", text("traffic", null=True))
