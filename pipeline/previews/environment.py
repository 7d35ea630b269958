"""What a preview is made with, from its app and the `[preview]` of main's `temps.toml`: the
environment it inherits, its formation, its resources and whether it mounts the app's volumes.

A preview's environment is copied once, when the preview is made, as a review app's config
vars are: `temps config set <preview> ...` changes it afterwards. It holds the app's variables
whose names match `inherit`, except its secrets, then `env` over them. A secret is a variable
marked so (`temps config set --secret`) or with a secret-looking name (`PASSWORD`, `TOKEN`,
`KEY`...): a preview gets one only when `secrets` names it, and a preview of a pull request
from a fork (untrusted code) never does.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from pipeline.app.config import PreviewSettings
from pipeline.app.sealing import Sealer
from pipeline.app.variables import is_secret
from pipeline.sqlite.models import App


@dataclasses.dataclass(frozen=True)
class Inherited:
    env: dict[str, str]
    secret_keys: list[str]  # those of `env` that are the app's secrets


def inherited(
    env: dict[str, str], marked: list[str], preview: PreviewSettings, trusted: bool
) -> Inherited:
    """The preview's environment, from the app's `env` (its secrets `marked`)."""
    chosen: dict[str, str] = {}
    secrets = []
    for key, value in env.items():
        if is_secret(key, marked):
            if trusted and key in preview.secrets:
                chosen[key] = value
                secrets.append(key)
        elif any(fnmatch.fnmatchcase(key, pattern) for pattern in preview.inherit):
            chosen[key] = value
    chosen.update(preview.env)
    return Inherited(chosen, sorted(k for k in secrets if k not in preview.env))


def made_with(
    sealer: Sealer, parent: App, preview: PreviewSettings, trusted: bool
) -> dict[str, object]:
    """The columns of a new preview of `parent`."""
    given = inherited(sealer.open_env(parent.env), parent.secret_keys, preview, trusted)
    settings: dict[str, object] = {}
    if preview.resources is not None:
        settings["resources"] = dataclasses.asdict(preview.resources)
    return {
        "env": sealer.seal_env(given.env),
        "secret_keys": given.secret_keys,
        "formation": {"web": 1, **preview.formation},
        "settings": settings,
        "shares_volumes": preview.volumes,
    }
