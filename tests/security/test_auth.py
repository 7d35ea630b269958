"""Who may call what: the auth matrix over every operation of the daemon's OpenAPI schema
(read from the app factory the daemon runs, and checked against the live `/openapi.json`) and
over the four git requests, for no token, a wrong token, a revoked token, a deploy token of
another app, a deploy token of the app and the admin token; webhooks by their signatures.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.authmatrix import (
    HOOK_CREDENTIALS,
    OPERATIONS,
    ROLES,
    Call,
    Hooks,
    Matrix,
    calls,
    expected,
    hook_request,
    kind_of,
    request_for,
    state_of,
)
from tests.support.checks import states
from tests.support.daemon import TempsDaemon

pytestmark = pytest.mark.docker


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
