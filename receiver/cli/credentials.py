"""What `temps login` stores: one daemon's URL and token (and the CA that signs its
certificate, when it is not a public one), in the user's config directory, mode 0600."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    url: str
    token: str
    ca_file: str | None = None


def path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "temps" / "credentials.json"


def load() -> Stored | None:
    try:
        data = json.loads(path().read_text())
        return Stored(str(data["url"]), str(data["token"]), data.get("ca_file"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(stored: Stored) -> Path:
    """Written whole to a file only the user may read, then moved into place."""
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(stored), out, indent=2)
    os.chmod(partial, 0o600)  # an older partial file may have had another mode
    os.replace(partial, target)
    return target


def forget() -> Stored | None:
    """Remove the stored login; what it was, or None when there was none."""
    stored = load()
    path().unlink(missing_ok=True)
    return stored
