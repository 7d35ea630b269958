"""Sealed values: AES-GCM round trips, tampering, the key file, and the start-up re-seal of
values an earlier version sealed or stored in clear, on a real migrated SQLite database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import stat
from pathlib import Path

import pytest

from pipeline.app.sealing import LEGACY_PREFIX, PREFIX, Sealer, reseal
from pipeline.errors import TempsError
from pipeline.sqlite.schema import migrate
from pipeline.sqlite.store import Store, make_engine

KEY = bytes(range(32))


def legacy_seal(key: bytes, plaintext: str) -> str:
    """What the earlier HMAC-keystream construction wrote, to check it is still read."""
    enc = hmac.new(key, b"temps-seal-encrypt", hashlib.sha256).digest()
    mac = hmac.new(key, b"temps-seal-authenticate", hashlib.sha256).digest()
    nonce, data = secrets.token_bytes(16), plaintext.encode()
    stream = b"".join(
        hmac.new(enc, nonce + n.to_bytes(8, "big"), hashlib.sha256).digest()
        for n in range((len(data) + 31) // 32)
    )
    cipher = bytes(a ^ b for a, b in zip(data, stream, strict=False))
    tag = hmac.new(mac, nonce + cipher, hashlib.sha256).digest()
    return LEGACY_PREFIX + base64.urlsafe_b64encode(nonce + tag + cipher).decode()


def test_a_sealed_value_comes_back_and_shows_nothing() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("hunter2 and more")
    assert sealed.startswith(PREFIX) and "hunter2" not in sealed
    assert sealer.unseal(sealed) == "hunter2 and more"
    assert sealer.seal("same") != sealer.seal("same"), "a nonce was reused"


def test_a_tampered_value_or_another_key_is_refused() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("value")
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(PREFIX) :]))
    raw[-1] ^= 1
    with pytest.raises(TempsError, match="does not match the key file"):
        sealer.unseal(PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode())
    with pytest.raises(TempsError, match="does not match the key file"):
        Sealer(bytes(32)).unseal(sealed)


def test_values_of_the_earlier_construction_are_still_read() -> None:
    assert Sealer(KEY).unseal(legacy_seal(KEY, "old secret")) == "old secret"


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = Sealer.from_key_file(path).seal("x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    assert Sealer.from_key_file(path).unseal(first) == "x"


def test_an_environment_reads_sealed_or_in_clear() -> None:
    sealer = Sealer(KEY)
    assert sealer.open_env(sealer.seal_env({"A": "1"})) == {"A": "1"}
    assert sealer.open_env('{"B": "2"}') == {"B": "2"}


def test_reseal_leaves_nothing_in_clear_and_nothing_old(tmp_path: Path) -> None:
    db = tmp_path / "temps.db"
    migrate(f"sqlite:///{db}")
    store = Store(make_engine(f"sqlite:///{db}"))
    sealer = Sealer(KEY)
    app = store.create_app("old")
    store.update_app(
        "old",
        env=json.dumps({"DB_PASSWORD": "clear-password"}),
        repo_token_sealed=legacy_seal(KEY, "upstream-token"),
    )
    release = store.create_release(
        store.get_app("old"),
        source="push",
        commit="a" * 40,
        env='{"DB_PASSWORD": "clear-password"}',
    )
    assert app.id is not None and release.id is not None

    assert reseal(store, sealer) == 3
    assert reseal(store, sealer) == 0, "a second start re-sealed again"
    again = store.get_app("old")
    assert again.repo_token_sealed is not None and Sealer.is_current(again.repo_token_sealed)
    assert sealer.unseal(again.repo_token_sealed) == "upstream-token"
    assert sealer.open_env(again.env) == {"DB_PASSWORD": "clear-password"}
    assert sealer.open_env(store.get_release(release.id).env) == {"DB_PASSWORD": "clear-password"}
    # No copy of the clear value is left in the file's free space or in the log.
    for path in tmp_path.glob("temps.db*"):
        assert b"clear-password" not in path.read_bytes(), path
    store.engine.dispose()
