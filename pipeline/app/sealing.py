"""Values the daemon must read back but a copy of temps.db must not reveal: webhook keys,
upstream tokens, notification secrets, commit status tokens, and every app's and release's
environment.

They are sealed with AES-256-GCM (the `cryptography` library's AEAD) under a 32-byte key
kept beside the database in `secret.key` (0600), with a fresh 96-bit nonce per value.
Values sealed by earlier versions (`sealed:v1:`, an HMAC-SHA256 keystream with an HMAC tag)
are still read, and `reseal` rewrites them, and environments stored in clear, at start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.errors import TempsError
from pipeline.sqlite.store import Store

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "sealed:v2:"
LEGACY_PREFIX = "sealed:v1:"
SEALED = "sealed:"
ASSOCIATED = b"temps sealed value"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise TempsError(f"secret.key must hold {KEY_BYTES} bytes, it holds {len(key)}")
        self._aead = AESGCM(key)
        self._key = key

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
        return cls(path.read_bytes())

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), ASSOCIATED)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str) -> str:
        if sealed.startswith(LEGACY_PREFIX):
            return _unseal_v1(self._key, sealed[len(LEGACY_PREFIX) :])
        if not sealed.startswith(PREFIX):
            raise TempsError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :])
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ASSOCIATED)
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise TempsError(
                "sealed value does not match the key file (was secret.key replaced?)"
            ) from exc
        return plain.decode()

    @staticmethod
    def is_current(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal_env(self, env: dict[str, str]) -> str:
        return self.seal(json.dumps(env, sort_keys=True))

    def open_env(self, stored: str) -> dict[str, str]:
        """An environment as stored: sealed, or in clear as written before sealing."""
        text = self.unseal(stored) if stored.startswith(SEALED) else stored
        env: dict[str, str] = json.loads(text)
        return env


def _unseal_v1(key: bytes, encoded: str) -> str:
    """The earlier construction, kept only to read (and re-seal) what it wrote."""
    enc = hmac.new(key, b"temps-seal-encrypt", hashlib.sha256).digest()
    mac = hmac.new(key, b"temps-seal-authenticate", hashlib.sha256).digest()
    raw = base64.urlsafe_b64decode(encoded)
    nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
    expected = hmac.new(mac, nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise TempsError("sealed value does not match the key file (was secret.key replaced?)")
    stream = b"".join(
        hmac.new(enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        for counter in range((len(cipher) + 31) // 32)
    )
    return bytes(a ^ b for a, b in zip(cipher, stream, strict=False)).decode()


SEALED_APP_FIELDS = (
    "repo_token_sealed",
    "webhook_secret_sealed",
    "notify_secret_sealed",
    "status_token_sealed",
)


def reseal(store: Store, sealer: Sealer) -> int:
    """Seal what is stored in clear and re-seal what an earlier version sealed; returns how
    many values changed. Run at start, before anything reads them."""
    changed = 0
    for app in store.list_apps():
        fields: dict[str, str] = {}
        for name in SEALED_APP_FIELDS:
            value = getattr(app, name)
            if value and not sealer.is_current(value):
                fields[name] = sealer.seal(sealer.unseal(value))
        if not sealer.is_current(app.env):
            fields["env"] = sealer.seal_env(sealer.open_env(app.env))
        if fields:
            store.update_app(app.name, **fields)
            changed += len(fields)
    for release in store.releases_with_clear_env():
        store.set_release_env(release.pk, sealer.seal_env(sealer.open_env(release.env)))
        changed += 1
    if changed:
        store.compact()
    return changed
