"""No secret where it must not be: in the daemon's log or its database.

Runs after every other test of the package (see `conftest.py`), on the daemon they share,
once every secret recorded in `seen_secrets` was used.
"""

from __future__ import annotations

import base64
import secrets

import httpx
import pytest

from tests.support.authmatrix import Hooks, Matrix
from tests.support.credentials import Secrets, bearer
from tests.support.daemon import TempsDaemon

pytestmark = pytest.mark.docker


def test_no_secret_is_written_to_the_daemon_log_or_the_database(
    daemon: TempsDaemon, seen_secrets: Secrets, matrix: Matrix, hooks: Hooks
) -> None:
    """The log records failed authentications without what was sent; the database keeps
    token hashes, sealed webhook secrets and sealed environments only."""
    # A wrong token of its own: the package's files may have run on other test workers.
    wrong = seen_secrets.add("wrong token", secrets.token_urlsafe(24))
    assert httpx.get(f"{daemon.api_url}/api/apps", headers=bearer(wrong)).status_code == 401
    # An app's environment is sealed at rest, in the app's row and in each release's.
    password = seen_secrets.add("environment value", secrets.token_urlsafe(24))
    daemon.create_app("sealed-env")
    with daemon.client() as api:
        answer = api.patch("/api/apps/sealed-env/config", json={"env": {"DB_PASSWORD": password}})
    assert answer.status_code == 200, answer.text
    # So is a commit status token; nothing is posted with it (no deploy follows).
    token = seen_secrets.add("commit status token", "ghp_" + secrets.token_urlsafe(24))
    with daemon.client() as api:
        statuses = {"provider": "github", "repository": "acme/sealed-env", "token": token}
        answer = api.put("/api/apps/sealed-env/statuses", json=statuses)
    assert answer.status_code == 200, answer.text
    assert token not in answer.text and answer.json()["token_set"] is True
    assert len(seen_secrets.values) >= 8, sorted(seen_secrets.values)
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
