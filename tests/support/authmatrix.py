"""The auth matrix: every operation of the daemon's OpenAPI schema and the git requests, the
roles that call them, what each role must get, and a request of each kind built by hand.

The schema is read from the app factory `temps serve` runs; tests compare it with the live one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline.app import webhooks
from pipeline.settings import Settings
from receiver.app import create_app
from tests.support.credentials import admin, basic, bearer, make_token, wrong_token
from tests.support.daemon import TempsDaemon

PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}  # health and scrape endpoints, no token


def kind_of(method: str, path: str) -> str:
    if (method, path) in PUBLIC:
        return "public"
    if path.startswith("/api/"):
        return "bearer"
    if path.startswith("/hooks/"):
        return "signature"
    if ".git/" in path:
        return "git"
    return "unclassified"


# The schema of the same app factory `temps serve` runs; building it touches no disk.
SCHEMA: dict[str, Any] = create_app(Settings(home=Path("/nonexistent-temps-home"))).openapi()
OPERATIONS = {
    (method.upper(), path): operation
    for path, methods in SCHEMA["paths"].items()
    for method, operation in methods.items()
}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return resolve(target)


def sample(node: dict[str, Any]) -> Any:
    """The smallest value the schema accepts, built from its required parts."""
    node = resolve(node)
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if resolve(o).get("type") != "null"]
            return sample(options[0]) if options else None
    kind = node.get("type")
    if kind == "object":
        return {
            name: sample(prop)
            for name, prop in node.get("properties", {}).items()
            if name in node.get("required", [])
        }
    return {"string": "sample", "integer": 1, "number": 1.0, "boolean": False, "array": []}.get(
        str(kind)
    )


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # as in the schema, with {parameters}
    query: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return kind_of(self.method, self.path)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


# git's smart HTTP is not JSON, so the schema leaves it out; the matrix covers it all the same.
GIT_ROUTES = (("GET", "/{name}.git/info/refs"), ("POST", "/{name}.git/{service}"))


def calls() -> list[Call]:
    """Every operation; the git ones once per git service."""
    found = []
    for method, path in [*OPERATIONS, *GIT_ROUTES]:
        if path.endswith("/info/refs"):
            found += [Call(method, path, (("service", s),)) for s in GIT_SERVICES]
        elif "{service}" in path:
            found += [Call(method, path.replace("{service}", s)) for s in GIT_SERVICES]
        else:
            found.append(Call(method, path))
    return found


GIT_SERVICES = ("git-upload-pack", "git-receive-pack")
ROLES = ("none", "wrong", "revoked", "other-app", "own-app", "admin")


def deploy_token_may(call: Call) -> bool:
    """The documented scope of a deploy token: push, deploy, rollback, run one-off commands
    and cron jobs now, switch maintenance, read its app (but its backups) and say whose it
    is."""
    if call.kind == "git":
        return True
    if "/backups" in call.path:
        return False  # a backup holds the app's data: admin only, reads too
    if call.method == "GET" and (call.path == "/api/apps" or call.path.startswith("/api/apps/{")):
        return True
    if (call.method, call.path) == ("GET", "/api/whoami"):
        return True  # every valid token may ask whose it is (`temps login` does)
    if (call.method, call.path) == ("PUT", "/api/apps/{name}/maintenance"):
        return True
    return call.method == "POST" and call.path.endswith(
        ("/{name}/deploy", "/{name}/rollback", "/{name}/runs", "/cron/{job}/run")
    )


def expected(call: Call, role: str) -> str:
    """401, 403 or allowed (any answer but 401, 403, 429 and 5xx)."""
    if role in ("none", "wrong", "revoked"):
        return "401"
    if role == "admin":
        return "allowed"
    app_scoped = "{name}" in call.path or call.kind == "git"
    if role == "other-app" and app_scoped:
        return "403"
    return "allowed" if deploy_token_may(call) else "403"


@dataclass
class Matrix:
    daemon: TempsDaemon
    app: str
    tokens: dict[str, str | None]  # role -> token
    spare: list[int]  # ids of tokens made to be revoked by DELETE /api/tokens/{id}


def request_for(matrix: Matrix, call: Call, token: str | None) -> httpx.Request:
    daemon = matrix.daemon
    path = call.path.replace("{name}", matrix.app).replace("{number}", "1")
    path = path.replace("{backup_id}", "1").replace("{job}", "tick")
    if "{token_id}" in path:
        spare_id, _spare = make_token(daemon, f"spare-{len(matrix.spare)}", matrix.app)
        matrix.spare.append(spare_id)
        path = path.replace("{token_id}", str(spare_id))
    headers = basic(token) if call.kind == "git" else bearer(token)
    content = None
    if call.kind == "git" and call.method == "POST":
        service = path.rsplit("/", 1)[1]
        headers["Content-Type"] = f"application/x-{service}-request"
        content = b"0000"
    elif "requestBody" in OPERATIONS.get((call.method, call.path), {}):
        body = OPERATIONS[(call.method, call.path)]["requestBody"]["content"]["application/json"]
        headers["Content-Type"] = "application/json"
        content = json.dumps(sample(body["schema"])).encode()
    return httpx.Request(
        call.method,
        daemon.api_url + path,
        params=dict(call.query),
        headers=headers,
        content=content,
    )


def state_of(daemon: TempsDaemon) -> dict[str, Any]:
    """What an unauthorised call could have changed, read with the admin token."""
    return {
        "apps": sorted(a["name"] for a in admin(daemon, "GET", "/api/apps").json()),
        "tokens": sorted(
            (t["id"], t["revoked_at"] is None) for t in admin(daemon, "GET", "/api/tokens").json()
        ),
        "alpha": {
            k: v
            for k, v in admin(daemon, "GET", "/api/apps/alpha").json().items()
            if k != "live_release"
        },
        "alpha env": admin(daemon, "GET", "/api/apps/alpha/config").json(),
        "alpha releases": [
            r["number"] for r in admin(daemon, "GET", "/api/apps/alpha/releases").json()
        ],
    }


# --- webhooks: authenticated by their signature, never by an API token ---------------------------

HOOK_CREDENTIALS = ("none", "wrong", "other-app", "api-token", "right")


@dataclass
class Hooks:
    daemon: TempsDaemon
    app: str
    secret: str
    other_secret: str


def hook_request(hooks: Hooks, provider: str, credential: str) -> httpx.Request:
    body = json.dumps(
        {"ref": "refs/heads/elsewhere", "after": "1" * 40, "checkout_sha": "1" * 40}
    ).encode()
    secret = {"wrong": wrong_token(), "other-app": hooks.other_secret}.get(credential, hooks.secret)
    headers = {"Content-Type": "application/json"}
    if credential == "api-token":
        headers |= bearer(hooks.daemon.admin_token)
    elif credential != "none" and provider == "github":
        headers |= {"X-GitHub-Event": "push", "X-Hub-Signature-256": webhooks.sign(secret, body)}
        headers |= {"X-GitHub-Delivery": str(uuid.uuid4())}
    elif credential != "none":
        headers |= {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}
        headers |= {"X-Gitlab-Event-UUID": str(uuid.uuid4())}
    url = f"{hooks.daemon.api_url}/hooks/{provider}/{hooks.app}"
    return httpx.Request("POST", url, headers=headers, content=body)
