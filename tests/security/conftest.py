"""The daemon the security tests share, and what they record on it.

One daemon serves the auth matrix, the token tests, the git edge cases, the container
settings and the load, across the files of this package (one per test worker that runs some
of them) (each limit and the rate limit run
on daemons of their own). It allows a huge number of failed authentications: the matrix
sends wrong and revoked tokens on purpose, and would lock its own address out otherwise.

Every secret handed to it is recorded in `seen_secrets`; `test_secrets.py` runs after every
other test of the package, and looks for them all in the daemon's log and database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.authmatrix import Hooks, Matrix
from tests.support.credentials import Secrets, admin, make_token, wrong_token
from tests.support.daemon import MANY_FAILURES, TempsDaemon, running_daemon

HERE = Path(__file__).resolve().parent
LAST = HERE / "test_secrets.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run `test_secrets.py` after every other test of this package, whatever the order."""
    last = [item for item in items if item.path == LAST]
    if not last:
        return
    rest = [item for item in items if item.path != LAST]
    after = max(
        (i for i, item in enumerate(rest) if HERE in item.path.parents), default=len(rest) - 1
    )
    items[:] = [*rest[: after + 1], *last, *rest[after + 1 :]]


@pytest.fixture(scope="package")
def daemon(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempsDaemon]:
    """The daemon of the matrix, the git edge cases, the container settings and the load."""
    home = tmp_path_factory.mktemp("home-security")
    with running_daemon(home, "test-security-main", MANY_FAILURES) as d:
        yield d


@pytest.fixture(scope="package")
def seen_secrets(daemon: TempsDaemon) -> Secrets:
    found = Secrets()
    found.add("admin token", daemon.admin_token)
    return found


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
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
