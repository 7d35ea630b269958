"""The client's side of the REST API: one authenticated HTTP client (where it points and
with which token: receiver.cli.target).

httpx is imported by the first `Client`, not with this module: the parser of every command
imports it, and `temps run` asks for its run without httpx (receiver.cli.run), whose imports
were a tenth of a second of each run's start."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import ssl

    import httpx

API_TIMEOUT = 930.0  # a ?wait=true call may block for a whole deploy


class Client:
    def __init__(self, base_url: str, token: str, ca_file: str | None = None) -> None:
        import httpx

        self.http: httpx.Client = httpx.Client(
            base_url=base_url,
            timeout=API_TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
            # Plain HTTP has no certificate to check, and loading the CA bundle for nothing
            # took a third of a second of every command's start (it follows no redirect).
            verify=trusted(ca_file) if base_url.startswith("https:") else False,
        )

    def call(self, method: str, path: str, json: object = None, exit_code: int = 1) -> Any:
        """The JSON of the API's answer (models in receiver.api), None for an empty one; a
        refusal or no answer at all exits with `exit_code`, saying why."""
        import httpx

        try:
            response = self.http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            fail(f"temps: cannot reach the daemon at {self.http.base_url}: {exc}", exit_code)
        if response.status_code >= 400:
            fail(f"temps: {response.status_code}: {detail_of(response.content)}", exit_code)
        return response.json() if response.content else None

    def stream(self, path: str, query: dict[str, str], follow: bool = False) -> None:
        """Copy a streamed answer to stdout as its bytes come (an app's lines are passed on
        as it printed them, whatever their encoding); `follow`: for as long as it lasts,
        until Ctrl-C."""
        import httpx

        timeout = httpx.Timeout(API_TIMEOUT, read=None) if follow else API_TIMEOUT
        try:
            with self.http.stream("GET", path, params=query, timeout=timeout) as response:
                if response.status_code >= 400:
                    sys.exit(f"temps: {response.status_code}: {detail_of(response.read())}")
                for chunk in response.iter_bytes():
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
        except KeyboardInterrupt:
            sys.exit(130)
        except httpx.HTTPError as exc:
            sys.exit(f"temps: lost the daemon at {self.http.base_url}: {exc}")


def detail_of(body: bytes | bytearray) -> str:
    """A problem document's detail, else the body as text."""
    text = bytes(body).decode("utf-8", "replace")
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        return text
    return str(detail)


def fail(message: str, exit_code: int) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(exit_code)


def env_or(name: str, default: str) -> str:
    """A client flag's default: its TEMPS_ variable, else `default`."""
    return os.environ.get(f"TEMPS_{name}", default)


def trusted(ca_file: str | None) -> ssl.SSLContext | bool:
    """A CA of one's own (a company's, a test CA) when named, else the usual trust store."""
    import ssl

    return ssl.create_default_context(cafile=ca_file) if ca_file else True
