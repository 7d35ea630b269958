"""A fresh home's settings and its migrated SQLite store (the receiver's own fixtures), for
the series' tests that read and write real records without a daemon."""

from __future__ import annotations

from tests.receiver.conftest import settings, store

__all__ = ["settings", "store"]
