"""Pulls from a registry, and the check of a registry login, on the Docker engine.

Credentials go with each call (the Engine API's `X-Registry-Auth`), never into the SDK's
own store or a config file: a pull without a login sends none, whatever the host's
`~/.docker/config.json` holds, so what temps pulls depends only on what temps was given.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import requests
import structlog

from pipeline.docker.build import first_line
from pipeline.docker.engine import engine_errors
from pipeline.errors import InvalidInput, PullFailed
from pipeline.runtime import Credentials, Output

log = structlog.get_logger()
HUB_AUTH = "https://index.docker.io/v1/"


def pull(
    client: docker.DockerClient,
    name: str,
    version: str,
    credentials: Credentials | None,
    output: Output,
) -> str:
    """Pull `name` at `version` (a tag or a digest); its digest in the registry. PullFailed
    with the registry's own reason when it will not give it."""
    auth = _auth(credentials)
    said: set[str] = set()
    with engine_errors("pull an image"):
        try:
            for chunk in client.api.pull(
                name, tag=version, stream=True, decode=True, auth_config=auth
            ):
                if "error" in chunk:
                    raise PullFailed(
                        f"pull of {name}:{version} failed: {first_line(chunk['error'])}"
                    )
                status = str(chunk.get("status") or "")
                if status.startswith(("Digest:", "Status:")) and status not in said:
                    said.add(status)
                    output(f"       {status}\n")
            attrs = client.api.inspect_image(_pulled(name, version))
        except docker.errors.APIError as exc:
            raise PullFailed(
                f"pull of {name}:{version} failed: {first_line(exc.explanation)}"
            ) from exc
        except requests.exceptions.Timeout as exc:
            # The engine said nothing for the client's whole timeout: a registry that holds
            # the connection open without answering.
            raise PullFailed(
                f"pull of {name}:{version} failed: the engine stopped answering"
            ) from exc
    digests = [d for d in attrs.get("RepoDigests") or [] if str(d).startswith(f"{name}@")]
    if not digests:
        raise PullFailed(f"{name}:{version} was pulled but its registry gave no digest")
    return str(digests[0]).partition("@")[2]


def check_login(client: docker.DockerClient, registry: str, credentials: Credentials) -> None:
    """The registry accepts `credentials` (the engine asks it, as `docker login` does);
    InvalidInput with the registry's reason when it does not."""
    body = {
        "username": credentials.username,
        "password": credentials.password,
        "serveraddress": HUB_AUTH if registry == "docker.io" else registry,
    }
    api = client.api
    with engine_errors("log in to a registry"):
        try:
            response = api.post(f"{api.base_url}/v{api.api_version}/auth", json=body, timeout=60)
        except requests.exceptions.Timeout as exc:
            raise InvalidInput(f"{registry} did not answer the login in time") from exc
    if response.status_code != 200:
        message = response.json().get("message", response.text) if response.content else ""
        log.info("registry.login_refused", registry=registry, status=response.status_code)
        raise InvalidInput(f"{registry} refused the login: {first_line(str(message))}")


def _auth(credentials: Credentials | None) -> dict[str, Any]:
    if credentials is None:
        return {}
    return {"username": credentials.username, "password": credentials.password}


def _pulled(name: str, version: str) -> str:
    return f"{name}@{version}" if version.startswith("sha256:") else f"{name}:{version}"


def untag(client: docker.DockerClient, references: tuple[str, ...]) -> None:
    """Remove names of an image that temps' own tag holds now: only the image's references go,
    its layers stay while that tag needs them; a name the engine does not have is no error."""
    for reference in references:
        try:
            client.api.remove_image(reference, force=False, noprune=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            log.info("image.name_kept", reference=reference, reason=exc.explanation)
