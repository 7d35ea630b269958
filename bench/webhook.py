"""webhook: deploys started from outside the daemon's own git endpoint, timed.

- A GitHub-style push webhook naming a new commit of an upstream repository (C git's
  `http-backend` on loopback, tests/support/gitserver.py): how long the daemon takes to answer
  the delivery (202, the release queued), and from the delivery to the release being live (the
  daemon fetches the commit with dulwich, builds it, gates it and switches).
- A `git push` over file:// to a bare repository on this host with `temps hook install` in it:
  the whole push, which returns once the hook has seen the release go live.

The end-to-end tests check that both work (tests/e2e/test_webhooks.py); this measures them.

    .venv/bin/python bench/webhook.py [--runs 5]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    TempsDaemon,
    commit_app,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    summary,
)

from tests.support.apprepo import git, git_env
from tests.support.daemon import TEMPS_BIN
from tests.support.gitserver import GitHttpServer
from tests.support.webhooks import WebhookClient, encode, github_push, new_delivery

MAIN = "refs/heads/main"
LIVE_TIMEOUT = 300.0


def webhook_app(daemon: TempsDaemon, upstream: GitHttpServer, work: Path, app: str) -> str:
    """The app with its source on the upstream and a webhook secret; returns the secret."""
    daemon.create_app(app)
    upstream.create(app)
    with daemon.client() as api:
        api.put(
            f"/api/apps/{app}/source", json={"repo_url": upstream.url(app), "branch": "main"}
        ).raise_for_status()
        answer = api.post(f"/api/apps/{app}/webhook-secret")
    answer.raise_for_status()
    commit_app(work, f"{app}-0")
    return str(answer.json()["secret"])


def wait_live(daemon: TempsDaemon, app: str, number: int) -> float:
    """Poll until release `number` is live; the time.monotonic() it was first seen so."""
    deadline = time.monotonic() + LIVE_TIMEOUT
    while time.monotonic() < deadline:
        found = [r for r in daemon.releases(app) if r["number"] == number]
        if found and found[0]["state"] == "live":
            return time.monotonic()
        if found and found[0]["state"] in ("failed", "superseded", "interrupted"):
            raise RuntimeError(f"v{number} of {app} ended {found[0]['state']}: {found[0]}")
        time.sleep(0.05)
    raise RuntimeError(f"v{number} of {app} not live within {LIVE_TIMEOUT:g} s")


def delivery_to_live(
    daemon: TempsDaemon, upstream: GitHttpServer, work: Path, app: str, secret: str, run: int
) -> dict[str, Any]:
    before = git(work, "rev-parse", "HEAD").strip()
    commit = commit_app(work, f"{app}-{run + 1}")
    pushed = push(work, str(upstream.push_path(app)))
    if pushed.code != 0:
        raise RuntimeError(f"push to the upstream failed:\n{pushed.output}")
    body = encode(github_push(MAIN, commit, upstream.url(app), before=before))
    with WebhookClient(daemon.api_url) as hooks:
        sent = time.monotonic()
        answer = hooks.github(app, body, secret=secret, delivery=new_delivery())
        answered = time.monotonic()
    if answer.status_code != 202:
        raise RuntimeError(f"delivery answered {answer.status_code}: {answer.text}")
    live = wait_live(daemon, app, int(answer.json()["number"]))
    return {"answered": answered - sent, "to_live": live - sent}


def hooked_repository(daemon: TempsDaemon, root: Path, app: str) -> str:
    """A bare repository with the daemon's hook installed for `app`: its file:// URL."""
    daemon.create_app(app)
    bare = root / f"{app}.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    subprocess.run(
        [str(TEMPS_BIN), "hook", "install", str(bare), "--app", app, "--url", daemon.api_url,
         "--token", daemon.admin_token],
        capture_output=True, text=True, timeout=60, env=git_env(), check=True,
    )  # fmt: skip
    return f"file://{bare}"


def main() -> None:
    args = parse_args("webhook delivery and hooked-repository push to live", runs=5)
    report = header("webhook", args)
    deliveries: list[dict[str, Any]] = []
    hooked: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="temps-bench-webhook-") as scratch,
        GitHttpServer(Path(scratch) / "upstream") as upstream,
        running_daemon("webhook", args.profile) as daemon,
    ):
        root = Path(scratch)
        work = root / "work"
        secret = webhook_app(daemon, upstream, work, "delivered")
        url = hooked_repository(daemon, root, "hooked")
        hooked_work = root / "hooked-work"
        for run in range(args.runs):
            row = delivery_to_live(daemon, upstream, work, "delivered", secret, run)
            deliveries.append(row)
            commit_app(hooked_work, f"hooked-{run}")
            pushed = push(hooked_work, url)
            if pushed.code != 0:
                raise RuntimeError(f"push to the hooked repository failed:\n{pushed.output}")
            hooked.append(pushed.seconds)
            print(
                f"    run {run + 1}: delivery answered in {ms(row['answered'])}, live after "
                f"{secs(row['to_live'])}; hooked push to live {secs(pushed.seconds)}",
                flush=True,
            )
    report.runs = [{**row, "hooked_push": s} for row, s in zip(deliveries, hooked, strict=True)]
    answered = summary([row["answered"] for row in deliveries])
    to_live = summary([row["to_live"] for row in deliveries])
    pushes = summary(hooked)
    report.figure("delivery_answered", answered, f"delivery answered (202): {spread(answered)}")
    report.figure("delivery_to_live", to_live, f"delivery to live release: {spread(to_live, secs)}")
    report.figure(
        "hooked_push_to_live", pushes, f"git push to a hooked repository: {spread(pushes, secs)}"
    )
    report.write()


if __name__ == "__main__":
    main()
