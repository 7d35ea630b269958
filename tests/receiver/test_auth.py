"""Tokens: parsing the Authorization header, the admin token file, authentication, scopes."""

from __future__ import annotations

import base64
import stat

import pytest

from pipeline.errors import Forbidden, Unauthorized
from pipeline.settings import Settings
from pipeline.sqlite.store import Store, hash_token
from receiver.auth import (
    Principal,
    authenticate,
    basic_password,
    bearer_token,
    ensure_admin_token,
    new_token,
)
from tests.support.store import open_store


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


# --- headers ------------------------------------------------------------------------------


def test_basic_password_is_the_part_after_the_first_colon() -> None:
    assert basic_password(basic("temps:s3cret")) == "s3cret"
    assert basic_password(basic(":s3cret")) == "s3cret"
    assert basic_password(basic("user:pa:ss")) == "pa:ss"


def test_the_basic_scheme_is_case_insensitive() -> None:
    assert basic_password("basic " + base64.b64encode(b"u:p").decode()) == "p"
    assert basic_password("BASIC " + base64.b64encode(b"u:p").decode()) == "p"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic dXNlcjpw ZXh0cmE=",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"user:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Digest username=temps",
        "Token abc",
    ],
)
def test_garbage_gives_no_password(header: str | None) -> None:
    assert basic_password(header) is None


def test_basic_password_also_takes_a_bearer_token() -> None:
    assert basic_password("Bearer temps_abc") == "temps_abc"


def test_bearer_token() -> None:
    assert bearer_token("Bearer temps_abc") == "temps_abc"
    assert bearer_token("bearer   temps_abc  ") == "temps_abc"
    assert bearer_token(None) is None
    assert bearer_token("") is None
    assert bearer_token(basic("u:p")) is None
    assert bearer_token("temps_abc") is None


def test_new_tokens_are_distinct_and_marked() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(token.startswith("temps_") and len(token) > 40 for token in tokens)


# --- the admin token ----------------------------------------------------------------------


def test_the_admin_token_file_is_created_private(settings: Settings, store: Store) -> None:
    path = settings.admin_token_path
    assert not path.exists()
    ensure_admin_token(settings, store)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert token.endswith("\n")
    assert token.strip().startswith("temps_")


def test_the_admin_token_is_registered_once(settings: Settings, store: Store) -> None:
    ensure_admin_token(settings, store)
    token = settings.admin_token_path.read_text()
    ensure_admin_token(settings, store)
    ensure_admin_token(settings, store)
    assert settings.admin_token_path.read_text() == token
    rows = store.token_hashes()
    assert [(row.name, row.scope, row.app) for row in rows] == [("admin", "admin", None)]
    assert rows[0].token_hash == hash_token(token.strip())
    assert token.strip() not in {row.token_hash for row in rows}


def test_the_token_file_is_registered_again_in_a_fresh_database(
    settings: Settings, store: Store
) -> None:
    ensure_admin_token(settings, store)
    token = settings.admin_token_path.read_text().strip()
    store.engine.dispose()
    settings.db_path.unlink()

    fresh = open_store(settings)
    try:
        assert fresh.token_hashes() == []
        ensure_admin_token(settings, fresh)
        assert settings.admin_token_path.read_text().strip() == token
        assert authenticate(fresh, token).scope == "admin"
    finally:
        fresh.engine.dispose()


# --- authentication and scopes ------------------------------------------------------------


def test_the_admin_token_authenticates_as_admin(settings: Settings, store: Store) -> None:
    ensure_admin_token(settings, store)
    token = settings.admin_token_path.read_text().strip()
    assert authenticate(store, token) == Principal("admin", "admin", None)


@pytest.mark.parametrize("token", [None, ""])
def test_missing_credentials_are_unauthorized(store: Store, token: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing credentials"):
        authenticate(store, token)


def test_a_wrong_token_is_unauthorized(settings: Settings, store: Store) -> None:
    ensure_admin_token(settings, store)
    token = settings.admin_token_path.read_text().strip()
    for wrong in (token + "x", token[:-1], token.upper(), new_token(), hash_token(token)):
        with pytest.raises(Unauthorized, match="invalid token"):
            authenticate(store, wrong)


def test_a_deploy_token_is_bound_to_its_app(store: Store) -> None:
    token = new_token()
    store.add_token("ci", token, "deploy", app="shop")
    principal = authenticate(store, token)
    assert principal == Principal("ci", "deploy", "shop")
    principal.require_app("shop")
    with pytest.raises(Forbidden, match="may not act on app 'blog'"):
        principal.require_app("blog")
    with pytest.raises(Forbidden, match="not an admin token"):
        principal.require_admin()


def test_an_admin_may_act_on_any_app() -> None:
    admin = Principal("admin", "admin", None)
    admin.require_app("shop")
    admin.require_app("blog")
    admin.require_admin()


def test_a_deploy_token_without_an_app_may_act_on_none() -> None:
    with pytest.raises(Forbidden):
        Principal("stray", "deploy", None).require_app("shop")
