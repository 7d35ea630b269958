"""The process types of an app stopped on purpose (`temps ps stop`): kept stopped until
`temps ps start`, whatever restarts in between.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from migrations.columns import adding, text

revision = "0008"
down_revision = "0007"

upgrade, downgrade = adding("apps", text("stopped", default="[]"))
