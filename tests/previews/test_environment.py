"""What a new preview inherits of its app's environment: no secret unless `[preview]` names
it, never one for untrusted code, and `[preview] env` over the rest."""

from __future__ import annotations

from pathlib import Path

from pipeline.app import storage
from pipeline.app.config import PreviewSettings, load_toml
from pipeline.previews.environment import inherited
from pipeline.settings import Settings
from tests.support.store import open_store

APP_ENV = {
    "PUBLIC_NAME": "shop",
    "DATABASE_URL": "postgres://prod",  # marked secret below
    "STRIPE_TOKEN": "sk_live",  # a secret by its name
    "SANDBOX_KEY": "sk_test",  # a secret by its name, named in [preview] secrets
    "FEATURE_X": "on",
}
MARKED = ["DATABASE_URL"]


def preview(text: str) -> PreviewSettings:
    return load_toml("[preview]\nenabled = true\n" + text).preview


def test_no_secret_by_default_and_env_over_the_rest() -> None:
    given = inherited(APP_ENV, MARKED, preview('env = { FEATURE_X = "off" }\n'), trusted=True)
    assert given.env == {"PUBLIC_NAME": "shop", "FEATURE_X": "off"}
    assert given.secret_keys == []


def test_a_named_secret_is_inherited_and_stays_marked() -> None:
    settings = preview('secrets = ["SANDBOX_KEY", "DATABASE_URL"]\n')
    given = inherited(APP_ENV, MARKED, settings, trusted=True)
    assert given.env["SANDBOX_KEY"] == "sk_test"
    assert given.env["DATABASE_URL"] == "postgres://prod"
    assert "STRIPE_TOKEN" not in given.env
    assert given.secret_keys == ["DATABASE_URL", "SANDBOX_KEY"]


def test_untrusted_code_gets_no_secret_even_when_named() -> None:
    settings = preview('secrets = ["SANDBOX_KEY", "DATABASE_URL"]\n')
    given = inherited(APP_ENV, MARKED, settings, trusted=False)
    assert given.env == {"PUBLIC_NAME": "shop", "FEATURE_X": "on"}
    assert given.secret_keys == []


def test_inherit_patterns_choose_among_the_plain_variables() -> None:
    given = inherited(APP_ENV, MARKED, preview('inherit = ["PUBLIC_*"]\n'), trusted=True)
    assert given.env == {"PUBLIC_NAME": "shop"}
    nothing = inherited(APP_ENV, MARKED, preview("inherit = []\n"), trusted=True)
    assert nothing.env == {}


def test_a_preview_mounts_the_apps_volumes_only_when_made_to(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    store = open_store(settings)
    app = store.create_app("shop")
    store.mounts.add(app, "uploads", "/data")
    plain = store.previews.create(app, "refs/heads/a", "a--shop")
    sharing = store.previews.create(app, "refs/heads/b", "b--shop", shares_volumes=True)
    assert storage.mounts_of(settings, store, plain) == ()
    (mount,) = storage.mounts_of(settings, store, sharing)
    assert mount == storage.mounts_of(settings, store, app)[0]
    assert mount.volume == storage.volume_name(settings, "shop", "uploads")
