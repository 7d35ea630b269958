"""End to end, issue 9: nobody gets in who should not, and no input hurts the live app.

Against real `temps serve` processes, dockerd, Traefik and the git client:

- the auth matrix over every operation of the daemon's OpenAPI schema (read from the app
  factory the daemon runs, and checked against the live `/openapi.json`) and over the four
  git requests, for no token, a wrong token, a revoked token, a deploy token of another app,
  a deploy token of the app and the admin token; webhooks by their signatures;
- the failed-authentication rate limit, on daemons of their own with `--auth-failures 3`;
- no secret in the daemon's log or in the database;
- each limit exceeded gives a clear 4xx or a rejected push and changes nothing;
- git edge cases: shallow push, push options, other branches, deleting main, force push,
  trees that leave themselves, no Dockerfile, an empty repository;
- what dockerd was told for an app container, read back with `docker inspect`;
- a stream of bad pushes and bad webhooks under steady load harms no user request.

The main daemon here allows a huge number of failed authentications: the matrix sends
wrong and revoked tokens on purpose, and would lock its own address out otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ARTIFACTS
from support.apprepo import git, git_env, git_push, make_app_repo, remote_main
from support.checks import assert_no_failures, rejection, start_load
from support.daemon import TEMPS_BIN, TempsDaemon, container_name, home_id_of
from support.dockercli import container_names, docker, lines, remove_app_images
from support.wait import poll

from pipeline import webhooks
from pipeline.settings import Settings
from receiver.app import create_app

pytestmark = pytest.mark.docker

SETTLE_TIMEOUT = 20.0
NON_TERMINAL = {
    "queued",
    "building",
    "releasing",
    "booting",
    "health_checking",
    "switching",
    "draining",
}
MANY_FAILURES = ["--auth-failures", "1000000"]


# --- daemons -------------------------------------------------------------------------------------


def start_daemon(home: Path, args: list[str], attempts: int = 3) -> TempsDaemon:
    """Start `temps serve`; on free ports taken meanwhile by another process, pick new ones."""
    for attempt in range(attempts):
        daemon = TempsDaemon(home=home, extra_args=args)
        try:
            daemon.start()
            return daemon
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_daemon(home: Path, args: list[str], artifact: str) -> Iterator[TempsDaemon]:
    daemon = start_daemon(home, args)
    try:
        yield daemon
    finally:
        daemon.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        if daemon.log_path.exists():
            shutil.copyfile(daemon.log_path, ARTIFACTS / f"test-security-{artifact}-daemon.log")


@pytest.fixture(scope="module")
def daemon(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempsDaemon]:
    """The daemon of the matrix, the git edge cases, the container settings and the load."""
    with running_daemon(tmp_path_factory.mktemp("home-security"), MANY_FAILURES, "main") as d:
        yield d


@dataclass
class Secrets:
    """Every secret handed to or made by the main daemon, to look for where it must not be."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        self.values[name] = value
        return value


@pytest.fixture(scope="module")
def seen_secrets(daemon: TempsDaemon) -> Secrets:
    found = Secrets()
    found.add("admin token", daemon.admin_token)
    return found


# --- small helpers -------------------------------------------------------------------------------


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def basic(token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"temps:{token}".encode()).decode()}


def admin(daemon: TempsDaemon, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with daemon.client() as api:
        return api.request(method, path, **kwargs)


def make_token(daemon: TempsDaemon, name: str, app: str | None) -> tuple[int, str]:
    body = (
        {"name": name, "scope": "deploy", "app": app} if app else {"name": name, "scope": "admin"}
    )
    created = admin(daemon, "POST", "/api/tokens", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"]), str(created.json()["token"])


def wrong_token() -> str:
    return "temps_" + secrets.token_urlsafe(32)


def run_git(cwd: Path, *args: str, timeout: float = 240.0) -> tuple[int, str]:
    """A git command in `cwd`: (exit code, stdout and stderr together)."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout


def clone(daemon: TempsDaemon, app: str, dest: Path, *args: str) -> Path:
    """`git clone` of the app into `dest`, ready to commit on main."""
    code, output = run_git(dest.parent, "clone", *args, daemon.git_url(app), str(dest))
    assert code == 0, output
    git(dest, "config", "user.name", "Temps Test")
    git(dest, "config", "user.email", "test@temps.invalid")
    git(dest, "symbolic-ref", "HEAD", "refs/heads/main")
    return dest


def states(daemon: TempsDaemon, app: str) -> list[tuple[int, str]]:
    return [(r["number"], r["state"]) for r in daemon.releases(app)]


def app_containers(app: str) -> list[str]:
    return container_names(f"label=temps.app={app}")


def same_commit(a: str | None, b: str | None) -> bool:
    return bool(a and b and (a.startswith(b) or b.startswith(a)))


def deploy_v1(daemon: TempsDaemon, repo: Path, app: str, **opts: Any) -> str:
    """Create the app, push v1 and wait until it is live; returns the commit."""
    daemon.create_app(app)
    commit = make_app_repo(repo, "v1", **opts)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of v1 failed (exit {code}):\n{output}"
    return commit


@dataclass
class Snapshot:
    """What a refused or failed action must leave as it was."""

    states: list[tuple[int, str]]
    containers: list[str]
    main: str | None

    @classmethod
    def of(cls, daemon: TempsDaemon, app: str) -> Snapshot:
        return cls(states(daemon, app), app_containers(app), remote_main(daemon.git_url(app)))


def assert_unchanged(daemon: TempsDaemon, app: str, before: Snapshot, failed: int = 0) -> None:
    """Nothing changed but, optionally, `failed` new releases that all ended `failed`."""
    after = poll(
        lambda: Snapshot.of(daemon, app),
        lambda s: (
            s.containers == before.containers
            and all(state not in NON_TERMINAL for _n, state in s.states)
        ),
        timeout=SETTLE_TIMEOUT,
        interval=0.2,
    )
    new = after.states[: len(after.states) - len(before.states)]
    assert after.states[len(new) :] == before.states, f"releases before {before.states}: {after}"
    assert len(new) == failed and all(state == "failed" for _n, state in new), (
        f"new releases {new}, expected {failed} failed one(s)"
    )
    assert after.containers == before.containers, f"containers {before.containers} -> {after}"
    assert after.main == before.main, f"main moved: {before.main} -> {after.main}"


def assert_serves_v1(daemon: TempsDaemon, app: str) -> None:
    response = daemon.get_app_page(app)
    assert response.status_code == 200 and "version v1" in response.text, (
        f"{app}: HTTP {response.status_code} {response.text[:100]!r}"
    )


# --- the auth matrix: operations from the app's own OpenAPI schema -------------------------------

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
    """The documented scope of a deploy token: push, deploy, rollback and read its app."""
    if call.kind == "git":
        return True
    if call.method == "GET" and (call.path == "/api/apps" or call.path.startswith("/api/apps/{")):
        return True
    return call.method == "POST" and call.path.endswith(("/{name}/deploy", "/{name}/rollback"))


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


@pytest.fixture(scope="module")
def matrix(daemon: TempsDaemon, seen_secrets: Secrets) -> Matrix:
    app, other = "alpha", "beta"
    daemon.create_app(app)
    daemon.create_app(other)
    _own_id, own = make_token(daemon, "alpha-deploy", app)
    _other_id, foreign = make_token(daemon, "beta-deploy", other)
    revoked_id, revoked = make_token(daemon, "alpha-revoked", app)
    assert admin(daemon, "DELETE", f"/api/tokens/{revoked_id}").status_code == 204
    tokens: dict[str, str | None] = {
        "none": None,
        "wrong": wrong_token(),
        "revoked": revoked,
        "other-app": foreign,
        "own-app": own,
        "admin": daemon.admin_token,
    }
    for role, token in tokens.items():
        if token:
            seen_secrets.add(f"{role} token", token)
    return Matrix(daemon, app, tokens, [])


def request_for(matrix: Matrix, call: Call, token: str | None) -> httpx.Request:
    daemon = matrix.daemon
    path = call.path.replace("{name}", matrix.app).replace("{number}", "1")
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


MATRIX = [
    pytest.param(call, role, id=f"{call}-{role}")
    for call in calls()
    if call.kind in ("bearer", "git")
    for role in ROLES
]


@pytest.mark.parametrize(("call", "role"), MATRIX)
def test_auth_matrix(matrix: Matrix, call: Call, role: str) -> None:
    daemon = matrix.daemon
    want = expected(call, role)
    request = request_for(matrix, call, matrix.tokens[role])
    before = state_of(daemon) if want != "allowed" else None
    with httpx.Client(timeout=60) as client:
        response = client.send(request)
    got = f"{response.status_code} {response.headers.get('content-type')} {response.text[:200]!r}"
    if want == "allowed":
        assert response.status_code not in (401, 403, 429), f"{call} as {role}: {got}"
        assert response.status_code < 500, f"{call} as {role}: {got}"
        if call.method == "GET" and call.path == "/api/apps" and role != "admin":
            names = [app["name"] for app in response.json()]
            assert names == (["alpha"] if role == "own-app" else ["beta"]), names
        return
    assert str(response.status_code) == want, f"{call} as {role}: want {want}, got {got}"
    challenge = response.headers.get("www-authenticate", "")
    if call.kind == "git":
        assert response.headers["content-type"].startswith("text/plain"), got
        if want == "401":
            assert challenge.startswith("Basic "), f"{call}: WWW-Authenticate {challenge!r}"
            assert "temps: authentication required" in response.text, got
    else:
        assert response.headers["content-type"] == "application/problem+json", got
        if want == "401":
            assert challenge.startswith("Bearer "), f"{call}: WWW-Authenticate {challenge!r}"
    assert state_of(daemon) == before, f"{call} as {role} was refused but changed something"


def test_every_operation_has_an_auth_rule() -> None:
    unclassified = [f"{m} {p}" for m, p in OPERATIONS if kind_of(m, p) == "unclassified"]
    assert not unclassified, f"operations with no auth rule in this test: {unclassified}"
    git_calls = [str(c) for c in calls() if c.kind == "git"]
    assert len(git_calls) == 4, f"the git requests: {git_calls}"


def test_the_live_schema_is_the_one_the_matrix_covers(daemon: TempsDaemon) -> None:
    live = httpx.get(f"{daemon.api_url}/openapi.json", timeout=10).json()
    operations = {(m.upper(), p) for p, methods in live["paths"].items() for m in methods}
    assert operations == set(OPERATIONS)


@pytest.mark.parametrize("call", [c for c in calls() if c.kind == "public"], ids=str)
def test_public_endpoints_answer_without_a_token(daemon: TempsDaemon, call: Call) -> None:
    response = httpx.request(call.method, daemon.api_url + call.path, timeout=30)
    assert response.status_code == 200, response.text[:200]
    assert daemon.admin_token not in response.text


# --- webhooks: authenticated by their signature, never by an API token ---------------------------

HOOK_CREDENTIALS = ("none", "wrong", "other-app", "api-token", "right")


@dataclass
class Hooks:
    daemon: TempsDaemon
    app: str
    secret: str
    other_secret: str


@pytest.fixture(scope="module")
def hooks(daemon: TempsDaemon, seen_secrets: Secrets) -> Hooks:
    app, other = "hooked", "hooked-other"
    secrets_by_app = {}
    for name in (app, other):
        daemon.create_app(name)
        answer = admin(daemon, "POST", f"/api/apps/{name}/webhook-secret")
        assert answer.status_code == 200, answer.text
        secrets_by_app[name] = seen_secrets.add(
            f"webhook secret of {name}", answer.json()["secret"]
        )
    return Hooks(daemon, app, secrets_by_app[app], secrets_by_app[other])


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


@pytest.mark.parametrize("credential", HOOK_CREDENTIALS)
@pytest.mark.parametrize(
    "call", [c for c in calls() if c.kind == "signature"], ids=lambda c: c.path.split("/")[2]
)
def test_webhooks_need_their_own_signature(hooks: Hooks, call: Call, credential: str) -> None:
    provider = call.path.split("/")[2]
    assert provider in ("github", "gitlab"), f"a webhook this test does not know: {call}"
    before = states(hooks.daemon, hooks.app)
    with httpx.Client(timeout=30) as client:
        response = client.send(hook_request(hooks, provider, credential))
    if credential == "right":
        # Signed right, for a branch that does not deploy: accepted and ignored.
        assert response.status_code == 202, response.text
        assert "ignored" in response.json(), response.text
    else:
        assert response.status_code == 401, f"{credential}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
    assert states(hooks.daemon, hooks.app) == before, "a webhook made a release"


# --- tokens: revocation, the CLI, and where secrets must never show up ---------------------------


def test_a_revoked_token_is_refused_at_once_and_others_still_work(
    daemon: TempsDaemon, seen_secrets: Secrets
) -> None:
    app = "revoking"
    daemon.create_app(app)
    kept_id, kept = make_token(daemon, "kept", app)
    gone_id, gone = make_token(daemon, "gone", app)
    seen_secrets.add("kept token", kept)
    seen_secrets.add("revoked token", gone)
    url = f"{daemon.api_url}/api/apps/{app}"
    refs = f"{daemon.api_url}/{app}.git/info/refs?service=git-receive-pack"
    assert httpx.get(url, headers=bearer(gone), timeout=10).status_code == 200
    assert httpx.get(refs, headers=basic(gone), timeout=10).status_code == 200

    assert admin(daemon, "DELETE", f"/api/tokens/{gone_id}").status_code == 204

    assert httpx.get(url, headers=bearer(gone), timeout=10).status_code == 401
    assert httpx.get(refs, headers=basic(gone), timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer(kept), timeout=10).status_code == 200
    listed = {row["id"]: row for row in admin(daemon, "GET", "/api/tokens").json()}
    assert listed[gone_id]["revoked_at"] is not None and listed[kept_id]["revoked_at"] is None
    # Revoking twice is harmless; an unknown id is a 404, not a 500.
    assert admin(daemon, "DELETE", f"/api/tokens/{gone_id}").status_code == 204
    assert admin(daemon, "DELETE", "/api/tokens/999999").status_code == 404


def test_token_listings_never_show_a_secret(daemon: TempsDaemon, seen_secrets: Secrets) -> None:
    daemon.create_app("listed")
    env = {**os.environ, "TEMPS_TOKEN": daemon.admin_token}
    cli = [str(TEMPS_BIN), "tokens"]
    url = ["--url", daemon.api_url]
    created = subprocess.run(
        [*cli, "create", "cli-made", "--scope", "deploy", "--app", "listed", *url],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token = seen_secrets.add("token made by the CLI", created.stdout.strip().splitlines()[0])
    assert token.startswith("temps_")
    listed = subprocess.run(
        [*cli, "list", *url], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    api_listing = admin(daemon, "GET", "/api/tokens").text
    for where, text in (("temps tokens list", listed.stdout), ("GET /api/tokens", api_listing)):
        assert "cli-made" in text, f"{where} does not list the new token:\n{text}"
        shown = [name for name, value in seen_secrets.values.items() if value in text]
        assert not shown, f"{where} shows secrets: {shown}"
    token_id = next(row["id"] for row in json.loads(api_listing) if row["name"] == "cli-made")
    revoked = subprocess.run(
        [*cli, "revoke", str(token_id), *url],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    answer = httpx.get(f"{daemon.api_url}/api/apps/listed", headers=bearer(token), timeout=10)
    assert answer.status_code == 401


# --- the failed-authentication rate limit, on daemons of their own -------------------------------

ALLOWED_FAILURES = 3


def test_too_many_failures_block_the_address_until_the_window_passes(
    busybox_image: str, tmp_path: Path
) -> None:
    with running_daemon(tmp_path / "home", ["--auth-failures", "3"], "ratelimit") as daemon:
        daemon.create_app("limited")
        api = f"{daemon.api_url}/api/apps/limited"
        refs = f"{daemon.api_url}/limited.git/info/refs?service=git-upload-pack"
        bad = wrong_token()
        first_failure = time.monotonic()
        answers = [
            httpx.get(api, headers=bearer(bad), timeout=10).status_code
            for _ in range(ALLOWED_FAILURES)
        ]
        assert answers == [401] * ALLOWED_FAILURES, answers
        over = httpx.get(api, headers=bearer(bad), timeout=10)
        assert over.status_code == 429, over.text
        assert over.headers["content-type"] == "application/problem+json"
        # Now even the right token is refused from this address, on the API and on git.
        good = httpx.get(api, headers=bearer(daemon.admin_token), timeout=10)
        assert good.status_code == 429, good.text
        git_answer = httpx.get(refs, headers=basic(daemon.admin_token), timeout=10)
        assert git_answer.status_code == 429, git_answer.text

        def status() -> int:
            return httpx.get(api, headers=bearer(daemon.admin_token), timeout=10).status_code

        unblocked = poll(status, lambda code: code == 200, timeout=90, interval=1.0)
        waited = time.monotonic() - first_failure
        assert unblocked == 200, f"still refused after {waited:.0f} s"
        assert 50 <= waited <= 75, f"blocked for {waited:.0f} s; the window is 60 s"
        log = daemon.log_path.read_text()
        assert log.count('"auth.failed"') >= ALLOWED_FAILURES
        assert bad not in log and daemon.admin_token not in log


def test_valid_git_clients_are_not_locked_out_by_the_challenge(
    busybox_image: str, tmp_path: Path
) -> None:
    """git sends credentials only after a 401: each command costs the daemon one request
    without credentials. Counting those as failed authentications locks out every git user
    behind one address after `--auth-failures` commands a minute, with valid tokens."""
    with running_daemon(tmp_path / "home", ["--auth-failures", "3"], "challenge") as daemon:
        daemon.create_app("busy")
        outcomes = []
        for _ in range(ALLOWED_FAILURES + 2):
            code, output = run_git(tmp_path, "ls-remote", daemon.git_url("busy"), timeout=60)
            outcomes.append((code, output.strip().splitlines()[-1:] if code else ""))
        assert all(code == 0 for code, _ in outcomes), (
            f"valid `git ls-remote` runs in a row: {outcomes}"
        )


# --- limits -------------------------------------------------------------------------------------

MAX_PUSH = 256 * 1024
MAX_REQUEST = 4096
MAX_WEBHOOK = 4096
MAX_ENV = 5
MAX_LOG_LINES = 40
LIMIT_ARGS = [
    *MANY_FAILURES,
    "--max-push-bytes",
    str(MAX_PUSH),
    "--max-request-bytes",
    str(MAX_REQUEST),
    "--max-webhook-bytes",
    str(MAX_WEBHOOK),
    "--max-env-vars",
    str(MAX_ENV),
    "--max-log-lines",
    str(MAX_LOG_LINES),
]


@dataclass
class LiveApp:
    daemon: TempsDaemon
    app: str
    repo: Path
    secret: str


@pytest.fixture(scope="module")
def limited(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """A daemon with small limits and an app live on it at v1."""
    home = tmp_path_factory.mktemp("home-limits")
    with running_daemon(home, LIMIT_ARGS, "limits") as daemon:
        repo = tmp_path_factory.mktemp("limits-repo") / "capped"
        deploy_v1(daemon, repo, "capped")
        answer = admin(daemon, "POST", "/api/apps/capped/webhook-secret")
        yield LiveApp(daemon, "capped", repo, answer.json()["secret"])


def chunks(data: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_api_body_over_the_limit_is_a_413(limited: LiveApp, framing: str) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    env_before = admin(daemon, "GET", f"/api/apps/{app}/config").json()
    body = json.dumps({"env": {"BIG": "x" * (MAX_REQUEST * 2)}}).encode()
    response = httpx.patch(
        f"{daemon.api_url}/api/apps/{app}/config",
        content=body if framing == "content-length" else chunks(body),
        headers={**bearer(daemon.admin_token), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, f"{response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == "application/problem+json"
    assert str(MAX_REQUEST) in response.json()["detail"]
    assert admin(daemon, "GET", f"/api/apps/{app}/config").json() == env_before
    assert_unchanged(daemon, app, before)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_webhook_payload_over_the_limit_is_a_413(limited: LiveApp, framing: str) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    payload = {"ref": "refs/heads/main", "after": "2" * 40, "padding": "x" * MAX_WEBHOOK}
    body = json.dumps(payload).encode()
    response = httpx.post(
        f"{daemon.api_url}/hooks/github/{app}",
        content=body if framing == "content-length" else chunks(body),
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": webhooks.sign(limited.secret, body),
        },
        timeout=30,
    )
    assert response.status_code == 413, f"{response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == "application/problem+json"
    assert admin(daemon, "GET", f"/api/apps/{app}/deliveries").json() == []
    assert_unchanged(daemon, app, before)


def test_a_push_over_the_limit_is_refused_and_deploys_nothing(limited: LiveApp) -> None:
    daemon, app, repo = limited.daemon, limited.app, limited.repo
    before = Snapshot.of(daemon, app)
    # Random bytes do not compress: the pack is about as large as the file.
    (repo / "www" / "blob.bin").write_bytes(os.urandom(MAX_PUSH * 2))
    make_app_repo(repo, "v2")
    code, output = git_push(repo, daemon.git_url(app))
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert code != 0, f"a push over the limit was accepted:\n{output}"
    assert "413" in output, f"git does not show the 413:\n{output}"
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_too_many_env_vars_are_a_400_and_start_no_deploy(limited: LiveApp) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    env = {f"VAR_{n}": str(n) for n in range(MAX_ENV + 1)}
    response = admin(daemon, "PATCH", f"/api/apps/{app}/config", json={"env": env})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"at most {MAX_ENV}" in response.json()["detail"], response.text
    assert admin(daemon, "GET", f"/api/apps/{app}/config").json() == {"env": {}}
    assert_unchanged(daemon, app, before)


# Build steps that print far more lines than the log keeps: at once, or one line at a time
# (each line then reaches the release log on its own).
CHATTY = {
    "burst": "RUN seq 1 300",
    "line-by-line": "RUN for i in $(seq 1 80); do echo line $i; sleep 0.02; done",
}


@pytest.mark.parametrize("output", sorted(CHATTY))
def test_the_log_kept_per_release_is_capped(limited: LiveApp, tmp_path: Path, output: str) -> None:
    daemon, app = limited.daemon, f"chatty-{output}"
    deploy_v1(daemon, tmp_path / app, app, dockerfile_extra=[CHATTY[output]])
    release = daemon.release(app, 1)
    assert release["state"] == "live", release["state"]
    log = release["log"]
    assert len(log) <= MAX_LOG_LINES, f"{len(log)} lines kept, the limit is {MAX_LOG_LINES}"
    marker = f"[log truncated at {MAX_LOG_LINES} lines]"
    assert marker in log, f"the log was cut without saying so; its last lines: {log[-3:]}"
    # Build output is what gets cut; temps' own lines after the marker still tell the outcome.
    after = log[log.index(marker) + 1 :]
    assert after and all(line.startswith("----->") for line in after), after
    assert any(f"v1 is live at http://{app}." in line for line in after), after


@dataclass
class TimedOut:
    daemon: TempsDaemon
    app: str
    commit: str
    code: int
    output: str
    marker: str


BUILD_TIMEOUT = 3


@pytest.fixture(scope="module")
def timed_out(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimedOut]:
    """A push whose build (RUN sleep 30) outlives `--build-timeout 3`."""
    home = tmp_path_factory.mktemp("home-build-timeout")
    args = [*MANY_FAILURES, "--build-timeout", str(BUILD_TIMEOUT)]
    marker = f"temps-build-timeout-{secrets.token_hex(4)}"
    app = "sleepy"
    with running_daemon(home, args, "build-timeout") as daemon:
        daemon.create_app(app)
        repo = tmp_path_factory.mktemp("sleepy-repo") / app
        commit = make_app_repo(repo, "v1", dockerfile_extra=[f"RUN sleep 30 # {marker}"])
        code, output = git_push(repo, daemon.git_url(app))
        try:
            yield TimedOut(daemon, app, commit, code, output, marker)
        finally:
            for name in build_containers(marker):
                docker("rm", "-f", name, check=False)
            remove_app_images(app)


def build_containers(marker: str) -> list[str]:
    """Containers of the build step that carries `marker` in its command."""
    out = docker("ps", "-a", "--no-trunc", "--format", "{{.Names}}\t{{.Command}}")
    return [line.split("\t")[0] for line in lines(out) if marker in line]


def test_a_build_over_the_timeout_rejects_the_push_naming_it(timed_out: TimedOut) -> None:
    reason = rejection(timed_out.output)
    assert timed_out.code != 0 and reason, f"not rejected:\n{timed_out.output}"
    assert "build timeout" in reason and f"{BUILD_TIMEOUT}s" in reason, reason
    releases = timed_out.daemon.releases(timed_out.app)
    assert [(r["number"], r["state"], r["failed_step"]) for r in releases] == [
        (1, "failed", "building")
    ]
    assert app_containers(timed_out.app) == []
    assert remote_main(timed_out.daemon.git_url(timed_out.app)) is None


def test_a_build_over_the_timeout_is_stopped_and_leaves_no_image(timed_out: TimedOut) -> None:
    """The timeout bounds what a build may cost: the build must not go on in dockerd after
    the push was rejected, nor tag an image for the commit when it ends on its own."""
    leftovers = []
    running = poll(
        lambda: [
            name
            for name in build_containers(timed_out.marker)
            if "Up" in docker("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}")
        ],
        lambda names: not names,
        timeout=10,
        interval=0.5,
    )
    if running:
        leftovers.append(f"10 s after the rejection the build step still runs in {running}")
    tag = f"temps/{timed_out.app}:{timed_out.commit[:12]}-{home_id_of(timed_out.daemon.home)}"
    # The step sleeps 30 s from the push: past that, an unstopped build has finished.
    tagged = poll(lambda: image_exists(tag), bool, timeout=40, interval=1.0)
    if tagged:
        leftovers.append(f"the abandoned build tagged {tag}; a new push of the commit reuses it")
    assert not leftovers, "; ".join(leftovers)


def image_exists(ref: str) -> bool:
    return bool(lines(docker("images", "-q", ref)))


# --- git edge cases ------------------------------------------------------------------------------


def test_a_shallow_push_is_refused_with_the_way_out(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "shallow"
    repo = tmp_path / app
    make_app_repo(repo, "v0")  # a parent, so that a clone of depth 1 is shallow
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    shallow = clone(daemon, app, tmp_path / "clone", "--depth", "1")
    assert run_git(shallow, "rev-parse", "--is-shallow-repository")[1].strip() == "true"
    make_app_repo(shallow, "v2")

    code, output = git_push(shallow, daemon.git_url(app))

    assert code != 0, f"a shallow push was accepted:\n{output}"
    assert "fetch --unshallow" in output, output
    assert "500" not in output, output
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_push_options_get_a_clear_client_error(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "pushopts"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    make_app_repo(repo, "v2")
    code, output = run_git(repo, "push", "-o", "ci.skip", daemon.git_url(app), "main:main")
    assert code != 0, output
    assert "does not support push options" in output, output
    assert_unchanged(daemon, app, before)


def test_a_push_to_another_branch_is_stored_not_deployed(
    daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "branches"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    commit = make_app_repo(repo, "v2")
    code, output = run_git(repo, "push", daemon.git_url(app), "HEAD:refs/heads/feature")
    assert code == 0, output
    assert "only main deploys" in output, output
    code, refs = run_git(repo, "ls-remote", daemon.git_url(app), "refs/heads/feature")
    assert code == 0 and refs.split()[0] == commit, refs
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_deleting_main_is_refused(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "keepmain"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    code, output = run_git(repo, "push", daemon.git_url(app), ":refs/heads/main")
    assert code != 0, output
    reason = re.search(r"\[remote rejected\] main \((?P<why>.*)\)", output)
    assert reason and "deleting main is not allowed" in reason.group("why"), output
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_a_force_push_deploys_and_is_recorded(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "forced"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    make_app_repo(repo, "v2")
    assert git_push(repo, daemon.git_url(app))[0] == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    rewritten = make_app_repo(repo, "v3")
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0, f"a non-fast-forward push without --force went through:\n{output}"

    code, output = run_git(repo, "push", "--force", daemon.git_url(app), "main:main")

    assert code == 0, output
    assert "forced update" in output, output
    assert same_commit(remote_main(daemon.git_url(app)), rewritten)
    release = daemon.release(app, 3)
    assert release["state"] == "live", release["state"]
    assert any("Force push" in line for line in release["log"]), release["log"]
    assert not any("Force push" in line for line in daemon.release(app, 2)["log"])


@pytest.mark.parametrize("target", ["/etc/passwd", "../../x"])
def test_a_symlink_out_of_the_tree_is_refused(
    daemon: TempsDaemon, tmp_path: Path, target: str
) -> None:
    app = "link-abs" if target.startswith("/") else "link-up"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    (repo / "www" / "leak").symlink_to(target)
    make_app_repo(repo, "v2")
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason, f"a tree with a symlink to {target} was accepted:\n{output}"
    assert "symlink" in reason and target in reason and "leaves the tree" in reason, reason
    assert_unchanged(daemon, app, before, failed=1)
    assert daemon.releases(app)[0]["failure_reason"] == reason
    assert_serves_v1(daemon, app)


def test_a_tree_entry_named_dot_dot_is_refused(daemon: TempsDaemon, tmp_path: Path) -> None:
    """git's own commands never write such a tree, but a hand-made one is easy to push."""
    app = "dotdot"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)

    def hash_object(data: bytes, *args: str) -> str:
        done = subprocess.run(
            ["git", "hash-object", "-w", "--stdin", *args],
            cwd=repo,
            input=data,
            capture_output=True,
            timeout=30,
            check=True,
        )
        return done.stdout.decode().strip()

    dockerfile = hash_object((repo / "Dockerfile").read_bytes())
    payload = hash_object(b"outside\n")
    tree = b"".join(
        f"100644 {name}\0".encode() + bytes.fromhex(sha)
        for name, sha in (("..", payload), ("Dockerfile", dockerfile))
    )
    tree_sha = hash_object(tree, "-t", "tree", "--literally")
    commit = git(repo, "commit-tree", tree_sha, "-p", "HEAD", "-m", "dot dot").strip()
    code, output = run_git(repo, "push", daemon.git_url(app), f"{commit}:refs/heads/main")
    reason = re.search(r"\[remote rejected\] \S+ -> main \((?P<why>.*)\)", output)
    assert code != 0 and reason, f"a tree with a '..' entry was accepted:\n{output}"
    assert "leaves the tree" in reason.group("why"), output
    assert_unchanged(daemon, app, before, failed=1)
    assert_serves_v1(daemon, app)


def test_a_tree_without_a_dockerfile_is_refused(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "nodocker"
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    make_app_repo(repo, "v2", dockerfile=False)
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason == "no Dockerfile at the root of the repository", output
    assert_unchanged(daemon, app, before, failed=1)
    assert_serves_v1(daemon, app)


def test_an_empty_app_clones_and_takes_its_first_push(daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "blank"
    daemon.create_app(app)
    for service in GIT_SERVICES:
        refs = httpx.get(
            f"{daemon.api_url}/{app}.git/info/refs",
            params={"service": service},
            headers=basic(daemon.admin_token),
            timeout=10,
        )
        assert refs.status_code == 200, f"{service}: {refs.status_code} {refs.text[:200]}"
    code, output = run_git(tmp_path, "clone", daemon.git_url(app), str(tmp_path / "first"))
    assert code == 0, output
    assert "empty repository" in output, output

    repo = clone(daemon, app, tmp_path / "clone")
    make_app_repo(repo, "v1")
    code, output = git_push(repo, daemon.git_url(app))

    assert code == 0, output
    assert states(daemon, app) == [(1, "live")]
    assert_serves_v1(daemon, app)


# --- what the app container gets from dockerd ----------------------------------------------------

NNP_CMD = 'grep NoNewPrivs /proc/self/status > /www/nnp.txt; exec httpd -f -p "$PORT" -h /www'
RESOURCES = {"memory_mb": 96, "cpus": 0.5, "pids": 64}


@pytest.mark.parametrize("resources", [RESOURCES, None], ids=["resources-set", "defaults"])
def test_the_container_runs_unprivileged_within_its_limits(
    daemon: TempsDaemon, tmp_path: Path, resources: dict[str, Any] | None
) -> None:
    app = "boxed" if resources else "boxed-defaults"
    settings = {"resources": resources} if resources else {}
    deploy_v1(daemon, tmp_path / app, app, cmd=NNP_CMD, settings=settings)
    memory_mb = resources["memory_mb"] if resources else 1024
    cpus = resources["cpus"] if resources else 1.0
    pids = resources["pids"] if resources else 4096

    info = json.loads(docker("inspect", container_name(app, 1)))[0]
    host = info["HostConfig"]
    assert host["Privileged"] is False
    assert any(o.startswith("no-new-privileges") for o in host["SecurityOpt"] or []), host
    assert host["Memory"] == memory_mb * 1024 * 1024, host["Memory"]
    assert host["MemorySwap"] == memory_mb * 1024 * 1024, host["MemorySwap"]
    assert host["NanoCpus"] == int(cpus * 1e9), host["NanoCpus"]
    assert host["PidsLimit"] == pids, host["PidsLimit"]
    assert not host["Binds"] and not host.get("Mounts") and not info["Mounts"], info["Mounts"]
    assert not host["CapAdd"] and not host["Devices"], (host["CapAdd"], host["Devices"])
    dropped = {cap.removeprefix("CAP_") for cap in host["CapDrop"] or []}
    assert {"NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP"} <= dropped, host["CapDrop"]
    for mode in ("NetworkMode", "PidMode", "IpcMode", "UsernsMode"):
        assert host[mode] != "host", f"{mode} {host[mode]}"
    assert "docker.sock" not in json.dumps(info)
    bound = [b for bs in host["PortBindings"].values() for b in bs]
    published = [b for bs in info["NetworkSettings"]["Ports"].values() for b in bs or []]
    assert bound and all(b["HostIp"] == "127.0.0.1" for b in bound), bound
    assert published and all(b["HostIp"] == "127.0.0.1" for b in published), published
    # And from inside: the kernel's view of the app process.
    inside = daemon.get_app_page(app, "/nnp.txt")
    assert inside.status_code == 200 and inside.text.split() == ["NoNewPrivs:", "1"], inside.text


# --- temps.toml values the parser lets through ------------------------------------------------


@pytest.mark.parametrize("setting", ["healthcheck.interval", "resources.cpus"])
def test_a_nan_in_temps_toml_is_refused_naming_the_key(
    daemon: TempsDaemon, tmp_path: Path, setting: str
) -> None:
    """TOML spells NaN `nan`; test_fuzz finds that every float setting accepts it."""
    app = "nan-" + setting.split(".")[1]
    repo = tmp_path / app
    deploy_v1(daemon, repo, app)
    before = Snapshot.of(daemon, app)
    section, key = setting.split(".")
    make_app_repo(repo, "v2", settings={section: {key: float("nan")}})
    code, output = git_push(repo, daemon.git_url(app))
    reason = rejection(output)
    assert code != 0 and reason, f"{setting} = nan was accepted:\n{output}"
    problems = [] if setting in reason else [f"the rejection does not name {setting}: {reason}"]
    try:
        assert_unchanged(daemon, app, before, failed=1)
    except AssertionError as exc:
        problems.append(f"it left something behind: {exc}")
    assert_serves_v1(daemon, app)
    assert not problems, "\n".join(problems)


# --- bad pushes and webhooks under steady load ---------------------------------------------------

BROKEN: dict[str, dict[str, Any]] = {
    "broken Dockerfile": {"dockerfile_extra": ["RUN echo broken on purpose; exit 3"]},
    "failing health": {"health": False},
    "bad temps.toml": {"toml_text": "port = 8000\n[healthcheck]\ninterval = 'often'\n"},
    "unknown temps.toml key": {"toml_text": "port = 8000\n[deploy]\nstrategy_ = 'x'\n"},
}


ROUNDS = 3  # of every bad push and webhook above, one after the other


def bad_webhooks(daemon: TempsDaemon, app: str, secret: str) -> list[tuple[str, int, int]]:
    """(what, expected status, got) for each bad webhook."""
    url = f"{daemon.api_url}/hooks/github/{app}"
    push = json.dumps({"ref": "refs/heads/main", "after": "3" * 40}).encode()
    malformed = b'{"ref": "refs/heads/main", "after": '
    oversized = b'{"padding": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    cases = [
        ("bad signature", push, webhooks.sign(wrong_token(), push), 401),
        ("no signature", push, None, 401),
        ("malformed, signed", malformed, webhooks.sign(secret, malformed), 400),
        ("oversized", oversized, webhooks.sign(secret, oversized), 413),
    ]
    results = []
    for what, body, signature, want in cases:
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        if signature:
            headers["X-Hub-Signature-256"] = signature
        got = httpx.post(url, content=body, headers=headers, timeout=60).status_code
        results.append((what, want, got))
    return results


def test_bad_pushes_and_webhooks_under_load_harm_no_user_request(
    daemon: TempsDaemon, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    app = "steady-sec"
    repo = tmp_path / app
    make_app_repo(repo, "v0")  # a parent, so that a clone of depth 1 is shallow
    deploy_v1(daemon, repo, app)
    secret = admin(daemon, "POST", f"/api/apps/{app}/webhook-secret").json()["secret"]
    shallow = clone(daemon, app, tmp_path / "shallow", "--depth", "1")
    outcomes: list[str] = []
    webhook_answers: list[tuple[str, int, int]] = []

    load = start_load(daemon, app, rate=100.0)
    try:
        time.sleep(1.0)
        for _round in range(ROUNDS):
            for what, opts in BROKEN.items():
                make_app_repo(repo, "v2", **opts)
                code, output = git_push(repo, daemon.git_url(app))
                git(repo, "reset", "-q", "--hard", "HEAD~1")
                outcomes.append(f"{what}: exit {code}, {rejection(output)}")
                assert code != 0, f"{what} was accepted:\n{output}"
            make_app_repo(repo, "v2")
            code, output = git_push(repo, daemon.git_url(app, token=wrong_token()))
            git(repo, "reset", "-q", "--hard", "HEAD~1")
            outcomes.append(f"wrong token: exit {code}")
            assert code != 0 and "Authentication failed" in output, output
            make_app_repo(shallow, "v2")
            code, output = git_push(shallow, daemon.git_url(app))
            git(shallow, "reset", "-q", "--hard", "HEAD~1")
            outcomes.append(f"shallow: exit {code}")
            assert code != 0 and "fetch --unshallow" in output, output
            webhook_answers += bad_webhooks(daemon, app, secret)
        time.sleep(1.0)
    finally:
        summary = load.stop()

    figures(f"load during {len(outcomes)} bad pushes, {len(webhook_answers)} bad webhooks")
    figures(f"  {summary.line()}")
    assert_no_failures(summary)
    assert summary.versions == ["v1"], summary.per_version
    wrong_answers = [(what, want, got) for what, want, got in webhook_answers if want != got]
    assert not wrong_answers, f"webhooks answered (what, expected, got): {wrong_answers}"
    releases = daemon.releases(app)
    unfinished = [(r["number"], r["state"]) for r in releases if r["state"] in NON_TERMINAL]
    assert not unfinished, f"releases left in flight: {unfinished}"
    assert [(r["number"], r["state"]) for r in releases][-1] == (1, "live")
    assert all(r["state"] == "failed" for r in releases[:-1]), states(daemon, app)
    assert len(releases) == 1 + ROUNDS * len(BROKEN), states(daemon, app)
    containers = poll(
        lambda: app_containers(app), lambda names: names == [container_name(app, 1)], timeout=15
    )
    assert containers == [container_name(app, 1)], f"containers of {app}: {containers}"
    assert_serves_v1(daemon, app)


# --- no secret where it must not be: last, after every secret above was used ----------------------


def test_no_secret_is_written_to_the_daemon_log_or_the_database(
    daemon: TempsDaemon, seen_secrets: Secrets, matrix: Matrix, hooks: Hooks
) -> None:
    """The log records failed authentications without what was sent; the database keeps
    token hashes, sealed webhook secrets and sealed environments only."""
    # An app's environment is sealed at rest, in the app's row and in each release's.
    password = seen_secrets.add("environment value", secrets.token_urlsafe(24))
    daemon.create_app("sealed-env")
    with daemon.client() as api:
        answer = api.patch("/api/apps/sealed-env/config", json={"env": {"DB_PASSWORD": password}})
    assert answer.status_code == 200, answer.text
    assert len(seen_secrets.values) >= 7, sorted(seen_secrets.values)
    places = {
        "daemon log": daemon.log_path,
        **{f"home/{p.relative_to(daemon.home)}": p for p in daemon.home.glob("temps.db*")},
        **{f"home/{p.relative_to(daemon.home)}": p for p in daemon.home.glob("traefik/*.log")},
        **{f"home/{p.relative_to(daemon.home)}": p for p in daemon.home.glob("logs/*")},
    }
    found = []
    for where, path in places.items():
        if not path.is_file():
            continue
        data = path.read_bytes()
        for name, value in seen_secrets.values.items():
            encodings = {value.encode(), base64.b64encode(f"temps:{value}".encode())}
            if any(form in data for form in encodings):
                found.append(f"{name} in {where}")
    assert '"auth.failed"' in daemon.log_path.read_text(), "no failed authentication was logged"
    assert not found, f"secrets found: {found}"
