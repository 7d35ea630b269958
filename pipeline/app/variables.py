"""An app's environment variables: the names `temps config set` takes, and which of them are
secrets (marked so, or named like one): never echoed back, and kept from previews."""

from __future__ import annotations

import re

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_KEYS = frozenset({"PORT"})
MAX_ENV_VALUE = 32 * 1024
SECRET_HINTS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "PRIVATE", "CREDENTIAL", "AUTH")


def looks_secret(key: str) -> bool:
    return any(hint in key.upper() for hint in SECRET_HINTS)


def is_secret(key: str, marked: list[str]) -> bool:
    """Marked secret (`temps config set --secret`), or named like a secret."""
    return key in marked or looks_secret(key)
