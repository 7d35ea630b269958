"""Secrets the daemon must read back (webhook HMAC keys, upstream tokens) are sealed with a
key kept outside the database, so a copy of temps.db alone does not reveal them.

The construction uses only the standard library: a keystream of HMAC-SHA256 blocks over a
random nonce and a counter (encryption), then HMAC-SHA256 over nonce and ciphertext
(authentication), with separate keys derived from the one key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pipeline.errors import TempsError

KEY_BYTES = 32
NONCE_BYTES = 16
TAG_BYTES = 32
PREFIX = "sealed:v1:"


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._enc = hmac.new(key, b"temps-seal-encrypt", hashlib.sha256).digest()
        self._mac = hmac.new(key, b"temps-seal-authenticate", hashlib.sha256).digest()

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
        return cls(path.read_bytes())

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        data = plaintext.encode()
        cipher = bytes(a ^ b for a, b in zip(data, self._keystream(nonce, len(data)), strict=True))
        tag = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        return PREFIX + base64.urlsafe_b64encode(nonce + tag + cipher).decode()

    def unseal(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise TempsError("not a sealed value")
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :])
        nonce, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES : NONCE_BYTES + TAG_BYTES]
        cipher = raw[NONCE_BYTES + TAG_BYTES :]
        expected = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise TempsError("sealed value does not match the key file (was secret.key replaced?)")
        stream = self._keystream(nonce, len(cipher))
        return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = []
        for counter in range((length + 31) // 32):
            block = hmac.new(self._enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256)
            blocks.append(block.digest())
        return b"".join(blocks)[:length]
