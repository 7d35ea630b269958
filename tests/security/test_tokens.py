"""Tokens: revocation takes effect at once, listings never show a secret, and the
failed-authentication rate limit (on daemons of their own with `--auth-failures 3`) blocks
an address for its window without locking out valid git clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.apprepo import run_git
from tests.support.credentials import Secrets, admin, basic, bearer, make_token, wrong_token
from tests.support.daemon import TEMPS_BIN, TempsDaemon, running_daemon
from tests.support.wait import poll

pytestmark = pytest.mark.docker


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


def temps_tokens(daemon: TempsDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """`temps tokens <args> --url <the daemon>`, with its admin token in TEMPS_TOKEN."""
    return subprocess.run(
        [str(TEMPS_BIN), "tokens", *args, "--url", daemon.api_url],
        env={**os.environ, "TEMPS_TOKEN": daemon.admin_token},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_token_listings_never_show_a_secret(daemon: TempsDaemon, seen_secrets: Secrets) -> None:
    daemon.create_app("listed")
    created = temps_tokens(daemon, "create", "cli-made", "--scope", "deploy", "--app", "listed")
    assert created.returncode == 0, created.stderr
    token = seen_secrets.add("token made by the CLI", created.stdout.strip().splitlines()[0])
    assert token.startswith("temps_")
    listed = temps_tokens(daemon, "list")
    api_listing = admin(daemon, "GET", "/api/tokens").text
    for where, text in (("temps tokens list", listed.stdout), ("GET /api/tokens", api_listing)):
        assert "cli-made" in text, f"{where} does not list the new token:\n{text}"
        shown = [name for name, value in seen_secrets.values.items() if value in text]
        assert not shown, f"{where} shows secrets: {shown}"
    token_id = next(row["id"] for row in json.loads(api_listing) if row["name"] == "cli-made")
    revoked = temps_tokens(daemon, "revoke", str(token_id))
    assert revoked.returncode == 0, revoked.stderr
    answer = httpx.get(f"{daemon.api_url}/api/apps/listed", headers=bearer(token), timeout=10)
    assert answer.status_code == 401


# --- the failed-authentication rate limit, on daemons of their own -------------------------------

ALLOWED_FAILURES = 3
LIMITED = ["--auth-failures", str(ALLOWED_FAILURES)]


def test_too_many_failures_block_the_address_until_the_window_passes(
    busybox_image: str, tmp_path: Path
) -> None:
    with running_daemon(tmp_path / "home", "test-security-ratelimit", LIMITED) as daemon:
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
    with running_daemon(tmp_path / "home", "test-security-challenge", LIMITED) as daemon:
        daemon.create_app("busy")
        outcomes = []
        for _ in range(ALLOWED_FAILURES + 2):
            code, output = run_git(tmp_path, "ls-remote", daemon.git_url("busy"), timeout=60)
            outcomes.append((code, output.strip().splitlines()[-1:] if code else ""))
        assert all(code == 0 for code, _ in outcomes), (
            f"valid `git ls-remote` runs in a row: {outcomes}"
        )
