"""The client's side of the REST API: one authenticated HTTP client, and the admin token it
finds in the daemon's home."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx

API_TIMEOUT = 930.0  # a ?wait=true call may block for a whole deploy


class Client:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            timeout=API_TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )

    def call(self, method: str, path: str, json: object = None) -> Any:
        """The JSON of the API's answer (models in receiver.api), None for an empty one."""
        try:
            response = self.http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            sys.exit(f"temps: cannot reach the daemon at {self.http.base_url}: {exc}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            sys.exit(f"temps: {response.status_code}: {detail}")
        return response.json() if response.content else None

    def stream(self, path: str) -> None:
        with self.http.stream("GET", path) as response:
            if response.status_code >= 400:
                sys.exit(f"temps: {response.status_code}: {response.read().decode()}")
            for text in response.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()


def env_or(name: str, default: str) -> str:
    """A client flag's default: its TEMPS_ variable, else `default`."""
    return os.environ.get(f"TEMPS_{name}", default)


def token_for(home: str) -> str:
    token = os.environ.get("TEMPS_TOKEN")
    if token:
        return token
    path = Path(home).expanduser() / "admin-token"
    try:
        return path.read_text().strip()
    except OSError:
        sys.exit(f"temps: no token: set TEMPS_TOKEN or make {path} readable")
