"""A replaced release kept for skew protection: until when, and its containers kept.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from migrations.columns import adding, text

revision = "0018"
down_revision = "0017"

upgrade, downgrade = adding("releases", text("kept", null=True))
