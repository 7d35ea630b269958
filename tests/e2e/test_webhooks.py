"""End to end: deploys started from outside the daemon's own git endpoint.

- GitHub- and GitLab-style push webhooks naming a commit in a real upstream repository,
  served on 127.0.0.1 by C git's `http-backend`: the daemon fetches it with dulwich, builds
  it and puts it live behind Traefik while load runs through Traefik.
- Deliveries that must deploy nothing: unsigned, badly signed, wrong token, malformed,
  oversized, unknown app, replayed, other branch, tag, deleted branch.
- Fetch failures (closed port, wrong credentials, commit missing upstream) failing the release.
- `temps hook install` in a bare repository on this host, then a real `git push` to it.
- Outbound notifications, signed with HMAC-SHA256, arriving at a receiver on loopback.
"""

from __future__ import annotations

import hmac
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git, git_env, git_push, make_app_repo, remote_main
from tests.support.checks import (
    api_post,
    assert_no_failures,
    assert_serves,
    remote_lines,
    start_load,
)
from tests.support.daemon import TEMPS_BIN, TempsDaemon, free_port
from tests.support.gitserver import GitHttpServer
from tests.support.sink import NotificationSink, Received
from tests.support.wait import poll
from tests.support.webhooks import (
    ZERO_SHA,
    WebhookClient,
    encode,
    github_push,
    gitlab_push,
    hub_signature,
    new_delivery,
)

pytestmark = pytest.mark.docker

DEPLOY_TIMEOUT = 180.0
NOTIFY_TIMEOUT = 30.0
WEBHOOK_LIMIT = 5 * 1024 * 1024
PROBLEM_TYPE = "application/problem+json"
MAIN = "refs/heads/main"
FINAL = {"live", "failed", "superseded", "interrupted", "retired"}

Snapshot = list[tuple[int, str, str]]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    """The stand-in for GitHub/GitLab: bare repositories behind `git http-backend`."""
    with GitHttpServer(tmp_path_factory.mktemp("upstream")) as server:
        yield server


@pytest.fixture
def hooks(temps_daemon: TempsDaemon) -> Iterator[WebhookClient]:
    with WebhookClient(temps_daemon.api_url) as client:
        yield client


# --- API calls -----------------------------------------------------------------------------------


def set_source(
    daemon: TempsDaemon, app: str, repo_url: str | None, token: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"repo_url": repo_url, "branch": "main"}
    if token is not None:
        body["token"] = token
    with daemon.client() as api:
        response = api.put(f"/api/apps/{app}/source", json=body)
    assert response.status_code == 200, f"PUT source: {response.status_code} {response.text}"
    answer: dict[str, Any] = response.json()
    assert answer == {"repo_url": repo_url, "branch": "main", "token_set": token is not None}, (
        answer
    )
    return answer


def webhook_secret(daemon: TempsDaemon, app: str, secret: str | None = None) -> str:
    """Set (or generate) the app's webhook secret; check the answer names both endpoints."""
    response = api_post(
        daemon, f"/api/apps/{app}/webhook-secret", {"secret": secret} if secret else None
    )
    assert response.status_code == 200, f"webhook-secret: {response.status_code} {response.text}"
    answer = response.json()
    assert answer["github_url"] == f"{daemon.api_url}/hooks/github/{app}", answer
    assert answer["gitlab_url"] == f"{daemon.api_url}/hooks/gitlab/{app}", answer
    value = answer["secret"]
    assert isinstance(value, str) and len(value) >= 16, answer
    if secret is not None:
        assert value == secret, answer
    with daemon.client() as api:
        shown = api.get(f"/api/apps/{app}").text
    assert value not in shown, "the webhook secret is shown again by GET /api/apps/<app>"
    assert_not_stored_plain(daemon, value, "the webhook secret")
    return value


def deliveries(daemon: TempsDaemon, app: str) -> dict[str, dict[str, Any]]:
    """The app's recorded deliveries by delivery id (each id must appear once)."""
    with daemon.client() as api:
        response = api.get(f"/api/apps/{app}/deliveries")
    assert response.status_code == 200, f"deliveries: {response.status_code} {response.text}"
    items = response.json()
    ids = [item["delivery_id"] for item in items]
    assert len(ids) == len(set(ids)), f"a delivery is recorded twice: {items}"
    return {item["delivery_id"]: item for item in items}


def assert_not_stored_plain(daemon: TempsDaemon, secret: str, what: str) -> None:
    """A copy of the database (with its WAL) does not reveal `secret`."""
    files = sorted(daemon.home.glob("temps.db*"))
    assert files, f"no database files in {daemon.home}"
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"{what} is stored in plain text in {path}"


def snapshot(daemon: TempsDaemon, app: str) -> Snapshot:
    return [(r["number"], r["state"], r["commit"]) for r in daemon.releases(app)]


def wait_final(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    """Release `number` once it has reached live or an end state."""
    found = poll(
        lambda: daemon.release(app, number),
        lambda r: r["state"] in FINAL,
        timeout=DEPLOY_TIMEOUT,
        interval=0.25,
    )
    assert found["state"] in FINAL, f"v{number} of {app} still {found['state']}"
    return found


def wait_live(daemon: TempsDaemon, app: str, number: int, commit: str) -> dict[str, Any]:
    found = wait_final(daemon, app, number)
    assert found["state"] == "live", (
        f"v{number} of {app} ended {found['state']}: {found['failure_reason']}\n{found['log_tail']}"
    )
    assert found["commit"] == commit, f"v{number} deployed {found['commit']}, expected {commit}"
    return found


def wait_failed(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    found = wait_final(daemon, app, number)
    assert found["state"] == "failed", f"v{number} of {app} ended {found['state']}, not failed"
    assert found["failure_reason"], f"v{number} of {app} failed without a reason"
    return found


# --- checks --------------------------------------------------------------------------------------


def assert_queued(response: httpx.Response, number: int, commit: str) -> dict[str, Any]:
    """202 with the release the delivery queued, at once (before any deploy step ran)."""
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    release: dict[str, Any] = response.json()
    assert release.get("number") == number, release
    assert release.get("source") == "webhook", release
    assert release.get("commit") == commit, release
    assert release.get("state") == "queued", release
    return release


def assert_problem(response: httpx.Response, status: int, *words: str, case: str = "") -> None:
    label = f"{case}: " if case else ""
    assert response.status_code == status, (
        f"{label}expected {status}, got {response.status_code}: {response.text[:300]}"
    )
    assert response.headers.get("content-type", "").startswith(PROBLEM_TYPE), (
        f"{label}{status} answer is {response.headers.get('content-type')}, not {PROBLEM_TYPE}"
    )
    problem = response.json()
    assert problem.get("status") == status and problem.get("detail"), f"{label}{problem}"
    for word in words:
        assert word.lower() in problem["detail"].lower(), (
            f"{label}{word!r} not in {problem['detail']!r}"
        )


def assert_ignored(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"ignored"}, f"an ignored delivery answered {body}"
    for word in words:
        assert word in body["ignored"], f"{word!r} not in {body['ignored']!r}"
    return str(body["ignored"])


def publish(upstream: GitHttpServer, work: Path, name: str, version: str, **opts: Any) -> str:
    """Commit `version` in the work repo and push it to the upstream repository `name`."""
    commit = make_app_repo(work, version, **opts)
    code, output = git_push(work, str(upstream.push_path(name)))
    assert code == 0, f"push of {version} to the upstream failed:\n{output}"
    assert upstream.tip(name) == commit
    return commit


def webhook_app(
    daemon: TempsDaemon, upstream: GitHttpServer, root: Path, app: str
) -> tuple[Path, str, str, str]:
    """Create the app with its source on the upstream, where v1 is published, and a webhook
    secret: (the work repository, the upstream URL, v1's commit, the secret)."""
    daemon.create_app(app)
    upstream.create(app)
    work = root / app
    url = upstream.url(app)
    v1 = publish(upstream, work, app, "v1")
    set_source(daemon, app, url)
    return work, url, v1, webhook_secret(daemon, app)


def local_ref(daemon: TempsDaemon, app: str, ref: str) -> str | None:
    """A ref in the daemon's own repository of the app, or None when it is absent."""
    done = subprocess.run(
        [
            "git",
            "--git-dir",
            str(daemon.home / "repos" / f"{app}.git"),
            "rev-parse",
            "-q",
            "--verify",
            ref,
        ],
        env=git_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() or None


def valid_signature(item: Received, secret: str) -> bool:
    given = item.headers.get("x-temps-signature-256", "")
    return hmac.compare_digest(given, hub_signature(secret, item.body))


# --- webhooks from a real upstream ---------------------------------------------------------------


def test_github_and_gitlab_pushes_deploy_from_a_real_upstream_under_load(
    temps_daemon: TempsDaemon,
    upstream: GitHttpServer,
    hooks: WebhookClient,
    tmp_path: Path,
) -> None:
    app = "upstream-hub"
    work, url, v1, secret = webhook_app(temps_daemon, upstream, tmp_path, app)
    used: list[str] = []

    ping = hooks.github(
        app, encode({"zen": "Keep it simple.", "hook_id": 1}), secret=secret, event="ping"
    )
    assert ping.status_code == 200, f"ping: {ping.status_code} {ping.text}"
    assert snapshot(temps_daemon, app) == [], "a ping created a release"

    # GitHub: the first deploy of the app, fetched from the upstream.
    used.append(new_delivery())
    answer = hooks.github(app, encode(github_push(MAIN, v1, url)), secret=secret, delivery=used[-1])
    assert_queued(answer, 1, v1)
    wait_live(temps_daemon, app, 1, v1)
    assert_serves(temps_daemon, app, "v1", 1)
    assert upstream.fetches(app), f"no fetch reached the upstream: {upstream.requests()}"
    assert local_ref(temps_daemon, app, "refs/remotes/origin/main") == v1

    load = start_load(temps_daemon, app)
    try:
        time.sleep(1.0)
        # GitLab: a delivery naming v2 that arrives after v3 was pushed: the named commit,
        # older than the upstream tip, is what goes live.
        v2 = publish(upstream, work, app, "v2")
        v3 = publish(upstream, work, app, "v3")
        fetched_before = len(upstream.fetches(app))
        used.append(new_delivery())
        answer = hooks.gitlab(
            app, encode(gitlab_push(MAIN, v2, url, before=v1)), token=secret, delivery=used[-1]
        )
        assert_queued(answer, 2, v2)
        wait_live(temps_daemon, app, 2, v2)
        assert_serves(temps_daemon, app, "v2", 2)
        assert len(upstream.fetches(app)) > fetched_before, "v2 was deployed without a fetch"
        assert local_ref(temps_daemon, app, "refs/remotes/origin/main") == v3, (
            "refs/remotes/origin/main is not the upstream tip after the fetch"
        )

        # GitHub again, for a commit the daemon has not seen yet.
        v4 = publish(upstream, work, app, "v4")
        used.append(new_delivery())
        answer = hooks.github(
            app, encode(github_push(MAIN, v4, url, before=v3)), secret=secret, delivery=used[-1]
        )
        assert_queued(answer, 3, v4)
        wait_live(temps_daemon, app, 3, v4)
        assert_serves(temps_daemon, app, "v4", 3)
        assert local_ref(temps_daemon, app, "refs/remotes/origin/main") == v4
        time.sleep(1.0)
    finally:
        summary = load.stop()

    assert_no_failures(summary)
    assert set(summary.versions) <= {"v1", "v2", "v4"}, summary.versions
    assert "v4" in summary.versions, summary.line()
    assert "v3" not in summary.per_version, "v3 (the tip no delivery named) was served"

    history = [(r["number"], r["state"], r["source"]) for r in temps_daemon.releases(app)]
    assert history == [
        (3, "live", "webhook"),
        (2, "retired", "webhook"),
        (1, "retired", "webhook"),
    ], history
    seen = deliveries(temps_daemon, app)
    for delivery in used:
        assert delivery in seen, f"delivery {delivery} not recorded: {seen}"
        assert seen[delivery]["outcome"] == "queued", seen[delivery]
    assert {seen[d]["provider"] for d in used} == {"github", "gitlab"}, seen


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_a_payload_cannot_name_the_upstream(
    temps_daemon: TempsDaemon,
    upstream: GitHttpServer,
    hooks: WebhookClient,
    tmp_path: Path,
    provider: str,
) -> None:
    """No source set through the API: the repository URL in the payload (GitHub's
    repository.clone_url, GitLab's project.git_http_url) is not taken, since a payload may
    name any host. The delivery is refused with the way out, and once an admin has set the
    source the sender's retry of the same delivery deploys."""
    app = f"payload-{provider}"
    temps_daemon.create_app(app)
    upstream.create(app)
    v1 = publish(upstream, tmp_path / app, app, "v1")
    secret = webhook_secret(temps_daemon, app, f"chosen-secret-for-{app}")
    delivery = new_delivery()

    def send() -> httpx.Response:
        url = upstream.url(app)
        if provider == "github":
            return hooks.github(
                app, encode(github_push(MAIN, v1, url)), secret=secret, delivery=delivery
            )
        return hooks.gitlab(
            app, encode(gitlab_push(MAIN, v1, url)), token=secret, delivery=delivery
        )

    refused = send()
    assert refused.status_code == 409, refused.text
    assert "no repository URL" in refused.json()["detail"], refused.json()
    assert temps_daemon.releases(app) == []
    assert not upstream.fetches(app), "the payload's URL was fetched"

    set_source(temps_daemon, app, upstream.url(app))
    assert_queued(send(), 1, v1)
    wait_live(temps_daemon, app, 1, v1)
    assert_serves(temps_daemon, app, "v1", 1)
    assert upstream.fetches(app), "the commit did not come from the upstream"


# --- deliveries that deploy nothing ---------------------------------------------------------------


def oversized_body() -> bytes:
    padding = b"x" * (WEBHOOK_LIMIT + 1)
    return b'{"ref": "refs/heads/main", "padding": "' + padding + b'"}'


def body_of_size(payload: dict[str, Any], size: int) -> bytes:
    """`payload` as JSON padded with a `padding` field to exactly `size` bytes."""
    bare = json.dumps({**payload, "padding": ""}).encode()
    body = json.dumps({**payload, "padding": "x" * (size - len(bare))}).encode()
    assert len(body) == size
    return body


def chunks_of(body: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@dataclass(frozen=True)
class Guarded:
    """An app live at v1 from a webhook, with v2 published upstream but not deployed."""

    app: str
    url: str  # of its upstream repository
    work: Path  # the repository its versions are committed in
    secret: str
    v1: str
    v2: str
    baseline: Snapshot  # its releases: no refused or ignored delivery changes them
    recorded: dict[str, dict[str, Any]]  # its deliveries before any refused one

    @property
    def push_v2(self) -> bytes:
        return encode(github_push(MAIN, self.v2, self.url, before=self.v1))

    @property
    def lab_v2(self) -> bytes:
        return encode(gitlab_push(MAIN, self.v2, self.url, before=self.v1))


@pytest.fixture(scope="module")
def guarded(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, tmp_path_factory: pytest.TempPathFactory
) -> Guarded:
    """The app the bad deliveries aim at, shared by the tests below in their file order: the
    refused deliveries record nothing, the ignored ones record themselves, and the replays,
    last, deploy v2 and v3 and rotate the secret."""
    app = "guarded"
    work, url, v1, secret = webhook_app(temps_daemon, upstream, tmp_path_factory.mktemp(app), app)
    with WebhookClient(temps_daemon.api_url) as hooks:
        assert_queued(hooks.github(app, encode(github_push(MAIN, v1, url)), secret=secret), 1, v1)
    wait_live(temps_daemon, app, 1, v1)
    v2 = publish(upstream, work, app, "v2")
    baseline = snapshot(temps_daemon, app)
    return Guarded(app, url, work, secret, v1, v2, baseline, deliveries(temps_daemon, app))


def case_ids(table: list[tuple[Any, ...]]) -> list[str]:
    """Test ids from each row's case name: lower case, words joined by dashes."""
    return [re.sub(r"[^a-z0-9]+", "-", row[0].lower()).strip("-") for row in table]


# Refused before anything is parsed or recorded: (case, send, status, words in the detail).
REFUSED: list[
    tuple[str, Callable[[WebhookClient, Guarded], httpx.Response], int, tuple[str, ...]]
] = [
    (
        "GitHub unsigned",
        lambda h, g: h.github(g.app, g.push_v2, secret=None),
        401,
        ("X-Hub-Signature-256",),
    ),
    (
        "GitHub signed with another secret",
        lambda h, g: h.github(g.app, g.push_v2, secret="not-the-secret-" + g.secret),
        401,
        (),
    ),
    (
        "GitHub signature of another body",
        lambda h, g: h.github(
            g.app, g.push_v2, secret=None, signature=hub_signature(g.secret, g.push_v2 + b" ")
        ),
        401,
        (),
    ),
    (
        "GitHub sha1 signature",
        lambda h, g: h.github(g.app, g.push_v2, secret=None, signature="sha1=" + "0" * 40),
        401,
        (),
    ),
    (
        "GitHub unsigned ping",
        lambda h, g: h.github(g.app, b'{"zen": "x"}', secret=None, event="ping"),
        401,
        (),
    ),
    (
        "GitHub malformed JSON",
        lambda h, g: h.github(g.app, b'{"ref": "refs/heads/main", ', secret=g.secret),
        400,
        ("JSON",),
    ),
    ("GitHub JSON array", lambda h, g: h.github(g.app, b"[]", secret=g.secret), 400, ()),
    (
        "GitHub push without after",
        lambda h, g: h.github(g.app, encode({"ref": MAIN}), secret=g.secret),
        400,
        ("after",),
    ),
    (
        "GitHub push with a bad sha",
        lambda h, g: h.github(g.app, encode({"ref": MAIN, "after": "main"}), secret=g.secret),
        400,
        ("after",),
    ),
    (
        "GitHub oversized payload",
        lambda h, g: h.github(g.app, oversized_body(), secret=g.secret),
        413,
        (),
    ),
    (
        "GitHub oversized payload, chunked",
        lambda h, g: h.github(
            g.app, chunks_of(oversized_body()), secret=None, signature="sha256=" + "0" * 64
        ),
        413,
        (),
    ),
    (
        "GitHub unknown app",
        lambda h, g: h.github("no-such-app", g.push_v2, secret=g.secret),
        404,
        (),
    ),
    (
        "GitLab without token",
        lambda h, g: h.gitlab(g.app, g.lab_v2, token=None),
        401,
        ("X-Gitlab-Token",),
    ),
    (
        "GitLab wrong token",
        lambda h, g: h.gitlab(g.app, g.lab_v2, token="not-the-secret-" + g.secret),
        401,
        (),
    ),
    (
        "GitLab signature instead of token",
        lambda h, g: h.gitlab(g.app, g.lab_v2, token=hub_signature(g.secret, g.lab_v2)),
        401,
        (),
    ),
    (
        "GitLab malformed JSON",
        lambda h, g: h.gitlab(g.app, b"ref=refs/heads/main", token=g.secret),
        400,
        ("JSON",),
    ),
    (
        "GitLab push without ref",
        lambda h, g: h.gitlab(g.app, encode({"after": g.v2, "checkout_sha": g.v2}), token=g.secret),
        400,
        ("ref",),
    ),
    (
        "GitLab oversized payload",
        lambda h, g: h.gitlab(g.app, oversized_body(), token=g.secret),
        413,
        (),
    ),
    (
        "GitLab unknown app",
        lambda h, g: h.gitlab("no-such-app", g.lab_v2, token=g.secret),
        404,
        (),
    ),
]


@pytest.mark.parametrize(("case", "send", "status", "words"), REFUSED, ids=case_ids(REFUSED))
def test_a_bad_delivery_is_refused_and_deploys_nothing(
    temps_daemon: TempsDaemon,
    guarded: Guarded,
    hooks: WebhookClient,
    case: str,
    send: Callable[[WebhookClient, Guarded], httpx.Response],
    status: int,
    words: tuple[str, ...],
) -> None:
    try:
        response = send(hooks, guarded)
    except httpx.HTTPError as exc:
        pytest.fail(f"{case}: no answer ({type(exc).__name__}: {exc})")
    assert_problem(response, status, *words, case=case)
    assert snapshot(temps_daemon, guarded.app) == guarded.baseline, f"{case}: the releases changed"
    recorded = deliveries(temps_daemon, guarded.app)
    assert recorded == guarded.recorded, f"refused deliveries were recorded: {recorded}"
    with temps_daemon.client() as api:
        assert api.get("/api/apps/no-such-app").status_code == 404, "an unknown app appeared"


def test_an_app_without_a_webhook_secret_accepts_nothing(
    temps_daemon: TempsDaemon, guarded: Guarded, hooks: WebhookClient
) -> None:
    bare = "no-secret"
    temps_daemon.create_app(bare)
    assert_problem(hooks.github(bare, guarded.push_v2, secret=guarded.secret), 401, "secret")
    assert_problem(hooks.gitlab(bare, guarded.lab_v2, token=guarded.secret), 401, "secret")
    assert snapshot(temps_daemon, bare) == []


TAG = "refs/tags/v1.0"
FEATURE = "refs/heads/feature"

# Acknowledged (202), recorded as ignored, deploying nothing: (case, provider, the ref pushed
# (None: GitHub's `issues` body), whether the push deletes it, the event header when it is not
# the provider's push event, words in the reason).
IGNORED: list[tuple[str, str, str | None, bool, str | None, tuple[str, ...]]] = [
    ("GitHub push to another branch", "github", FEATURE, False, None, (FEATURE,)),
    ("GitHub tag push", "github", TAG, False, None, (TAG,)),
    ("GitHub deletion of main", "github", MAIN, True, None, ("deleted",)),
    ("GitHub deletion of another branch", "github", FEATURE, True, None, (FEATURE,)),
    ("GitHub issues event", "github", None, False, "issues", ("issues",)),
    ("GitLab push to another branch", "gitlab", FEATURE, False, None, (FEATURE,)),
    ("GitLab tag push (Push Hook)", "gitlab", TAG, False, None, (TAG,)),
    ("GitLab Tag Push Hook", "gitlab", TAG, False, "Tag Push Hook", ("Tag Push Hook",)),
    ("GitLab deletion of main", "gitlab", MAIN, True, None, ("deleted",)),
]


def ignorable(
    hooks: WebhookClient,
    g: Guarded,
    provider: str,
    ref: str | None,
    deletes: bool,
    event: str | None,
    delivery: str,
) -> httpx.Response:
    """The delivery of one IGNORED row: a push of `ref` to v2, or its deletion from v1."""
    push = github_push if provider == "github" else gitlab_push
    if ref is None:
        body = {"action": "opened"}
    elif deletes:
        body = push(ref, ZERO_SHA, g.url, before=g.v1)
    else:
        body = push(ref, g.v2, g.url)
    named = {"event": event} if event else {}
    if provider == "github":
        return hooks.github(g.app, encode(body), secret=g.secret, delivery=delivery, **named)
    return hooks.gitlab(g.app, encode(body), token=g.secret, delivery=delivery, **named)


@pytest.mark.parametrize(
    ("case", "provider", "ref", "deletes", "event", "words"), IGNORED, ids=case_ids(IGNORED)
)
def test_an_ignored_delivery_is_recorded_and_deploys_nothing(
    temps_daemon: TempsDaemon,
    guarded: Guarded,
    hooks: WebhookClient,
    case: str,
    provider: str,
    ref: str | None,
    deletes: bool,
    event: str | None,
    words: tuple[str, ...],
) -> None:
    delivery = new_delivery()
    why = assert_ignored(ignorable(hooks, guarded, provider, ref, deletes, event, delivery), *words)
    assert snapshot(temps_daemon, guarded.app) == guarded.baseline, f"{case}: the releases changed"
    record = deliveries(temps_daemon, guarded.app).get(delivery)
    assert record is not None, f"{case}: delivery {delivery} not recorded"
    assert record["provider"] == provider, (case, record)
    assert record["outcome"].startswith("ignored"), (case, record)
    assert why in record["outcome"], (case, why, record)


def test_a_replayed_delivery_deploys_nothing_and_a_rotated_secret_holds_at_once(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, guarded: Guarded, hooks: WebhookClient
) -> None:
    """One story, in order, after the cases above: it deploys v2 and v3 and rotates the secret
    they rely on."""
    app, url, secret, v2 = guarded.app, guarded.url, guarded.secret, guarded.v2
    push_v2 = guarded.push_v2
    # A redelivery of a deploying push: the first queues and deploys, the replay nothing.
    first = new_delivery()
    assert_queued(hooks.github(app, push_v2, secret=secret, delivery=first), 2, v2)
    wait_live(temps_daemon, app, 2, v2)
    after_first = snapshot(temps_daemon, app)
    replay = hooks.github(app, push_v2, secret=secret, delivery=first)
    assert replay.status_code == 200, f"replay: {replay.status_code} {replay.text}"
    assert replay.json().get("duplicate") == first, replay.json()
    assert snapshot(temps_daemon, app) == after_first, "a replayed GitHub delivery deployed"
    # A captured delivery replayed under a new id (or none) deploys nothing either: it could
    # bring back old code long after.
    renamed = new_delivery()
    replay = hooks.github(app, push_v2, secret=secret, delivery=renamed)
    assert replay.json().get("duplicate") == renamed, replay.json()
    unnamed = httpx.post(
        f"{temps_daemon.api_url}/hooks/github/{app}",
        content=push_v2,
        headers={
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": hub_signature(secret, push_v2),
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert_problem(unnamed, 400, "X-GitHub-Delivery")
    assert snapshot(temps_daemon, app) == after_first, "a renamed replay deployed"

    v3 = publish(upstream, guarded.work, app, "v3")
    lab_v3 = encode(gitlab_push(MAIN, v3, url, before=v2))
    uuid = new_delivery()
    assert_queued(hooks.gitlab(app, lab_v3, token=secret, delivery=uuid), 3, v3)
    wait_live(temps_daemon, app, 3, v3)
    after_second = snapshot(temps_daemon, app)
    replay = hooks.gitlab(app, lab_v3, token=secret, delivery=uuid)
    assert replay.status_code == 200, f"replay: {replay.status_code} {replay.text}"
    assert replay.json().get("duplicate") == uuid, replay.json()

    time.sleep(1.0)  # a replay that queued anything would show by now
    assert snapshot(temps_daemon, app) == after_second, "a replayed GitLab delivery deployed"
    assert_serves(temps_daemon, app, "v3", 3)
    recorded = deliveries(temps_daemon, app)
    assert recorded[first]["outcome"] == "queued", recorded[first]
    assert recorded[uuid]["outcome"] == "queued", recorded[uuid]

    # A payload of exactly the limit is read and judged (here: another branch, ignored).
    at_limit = body_of_size(github_push(FEATURE, v3, url), WEBHOOK_LIMIT)
    assert_ignored(hooks.github(app, at_limit, secret=secret), FEATURE)
    assert_problem(hooks.github(app, at_limit + b" ", secret=secret), 413)

    # Rotation: the old secret stops working at once, for both providers.
    rotated = webhook_secret(temps_daemon, app)
    assert rotated != secret
    feature_push = encode(github_push(FEATURE, v3, url))
    assert_problem(hooks.github(app, feature_push, secret=secret), 401)
    assert_problem(hooks.gitlab(app, encode(gitlab_push(FEATURE, v3, url)), token=secret), 401)
    assert_ignored(hooks.github(app, feature_push, secret=rotated), FEATURE)
    assert_ignored(hooks.gitlab(app, encode(gitlab_push(FEATURE, v3, url)), token=rotated), FEATURE)
    assert snapshot(temps_daemon, app) == after_second, "rotation or the limit cases deployed"


# --- fetch failures ------------------------------------------------------------------------------


def closed_port_url() -> str:
    """A URL on loopback where nothing listens (a port just freed by the kernel)."""
    return f"http://127.0.0.1:{free_port()}/gone.git"


def test_fetch_failures_fail_the_release_with_a_clear_reason(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, hooks: WebhookClient, tmp_path: Path
) -> None:
    app = "private-src"
    temps_daemon.create_app(app)
    upstream.create(app)
    password = "upstream-password-of-private-src"
    upstream.make_private(app, password)
    work = tmp_path / app
    url = upstream.url(app)
    secret = webhook_secret(temps_daemon, app)

    # A private repository with the right token deploys.
    v1 = publish(upstream, work, app, "v1")
    set_source(temps_daemon, app, url, token=password)
    assert_not_stored_plain(temps_daemon, password, "the upstream token")
    assert_queued(hooks.github(app, encode(github_push(MAIN, v1, url)), secret=secret), 1, v1)
    wait_live(temps_daemon, app, 1, v1)
    assert any(s.user for s in upstream.fetches(app)), "the fetch sent no credentials"

    # Wrong credentials.
    wrong = "wrong-token-for-private-src"
    set_source(temps_daemon, app, url, token=wrong)
    v2 = publish(upstream, work, app, "v2")
    denied_before = sum(s.status == 401 for s in upstream.requests(app))
    assert_queued(hooks.github(app, encode(github_push(MAIN, v2, url)), secret=secret), 2, v2)
    failed = wait_failed(temps_daemon, app, 2)
    reason = failed["failure_reason"]
    assert f"fetch from {url} failed" in reason, reason
    assert "credentials" in reason.lower(), reason
    assert wrong not in reason and wrong not in (failed["log_tail"] or ""), "token leaked"
    assert failed["failed_step"] == "building", failed
    assert sum(s.status == 401 for s in upstream.requests(app)) > denied_before
    assert_serves(temps_daemon, app, "v1", 1)

    # Nothing listening at the URL.
    gone = closed_port_url()
    set_source(temps_daemon, app, gone)
    v3 = publish(upstream, work, app, "v3")
    assert_queued(hooks.gitlab(app, encode(gitlab_push(MAIN, v3, gone)), token=secret), 3, v3)
    failed = wait_failed(temps_daemon, app, 3)
    reason = failed["failure_reason"]
    assert f"fetch from {gone} failed" in reason, reason
    assert "connect" in reason.lower() or "refused" in reason.lower(), reason
    assert_serves(temps_daemon, app, "v1", 1)

    # A commit the upstream does not have (force-pushed away, or never pushed).
    set_source(temps_daemon, app, url, token=password)
    stray = make_app_repo(work, "v4")
    assert_queued(hooks.github(app, encode(github_push(MAIN, stray, url)), secret=secret), 4, stray)
    failed = wait_failed(temps_daemon, app, 4)
    assert stray[:12] in failed["failure_reason"], failed["failure_reason"]
    assert "not on main" in failed["failure_reason"], failed["failure_reason"]
    assert local_ref(temps_daemon, app, "refs/remotes/origin/main") == v3

    assert [(n, s) for n, s, _ in snapshot(temps_daemon, app)] == [
        (4, "failed"),
        (3, "failed"),
        (2, "failed"),
        (1, "live"),
    ]
    assert_serves(temps_daemon, app, "v1", 1)


# --- the hook for bare repositories on this host -------------------------------------------------


def install_hook(daemon: TempsDaemon, bare: Path, app: str) -> str:
    done = subprocess.run(
        [
            str(TEMPS_BIN),
            "hook",
            "install",
            str(bare),
            "--app",
            app,
            "--url",
            daemon.api_url,
            "--token",
            daemon.admin_token,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=git_env(),
        check=False,
    )
    assert done.returncode == 0, f"temps hook install failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_push_to_a_bare_repo_with_the_hook_deploys_and_reports_failure(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "hooked"
    temps_daemon.create_app(app)
    bare = tmp_path / "server" / f"{app}.git"
    bare.parent.mkdir()
    git(bare.parent, "init", "-q", "--bare", "-b", "main", str(bare))
    said = install_hook(temps_daemon, bare, app)
    assert app in said, said
    for name in ("pre-receive", "post-receive"):
        hook = bare / "hooks" / name
        assert hook.is_file() and hook.stat().st_mode & 0o111, f"{hook} missing or not executable"
    assert git(bare, "config", "--get", "temps.app").strip() == app
    push_url = f"file://{bare}"
    work = tmp_path / app

    v1 = make_app_repo(work, "v1")
    code, output = git_push(work, push_url)
    assert code == 0, f"git push to the hooked repository failed (exit {code}):\n{output}"
    said_remote = "\n".join(remote_lines(output))
    assert f"deploying {v1[:12]} to {app}" in said_remote, output
    assert "Building" in said_remote, f"no build output reached the pusher:\n{output}"
    assert re.search(r"\bv1\b.*\blive\b", said_remote), (
        f"the pusher was not told the release went live:\n{output}"
    )
    release = wait_live(temps_daemon, app, 1, v1)
    assert release["source"] == "push", release
    assert_serves(temps_daemon, app, "v1", 1)
    assert git(bare, "rev-parse", "refs/heads/main").strip() == v1
    assert remote_main(temps_daemon.git_url(app)) == v1

    v2 = make_app_repo(work, "v2", health=False)
    code, output = git_push(work, push_url)
    assert code != 0, f"a failing release was accepted by the hooked repository:\n{output}"
    assert "pre-receive hook declined" in output, output
    failed = wait_failed(temps_daemon, app, 2)
    assert failed["commit"] == v2
    said_remote = "\n".join(remote_lines(output))
    assert f"deploying {v2[:12]} to {app}" in said_remote, output
    assert failed["failure_reason"] in output, (
        f"the reason {failed['failure_reason']!r} did not reach the pusher:\n{output}"
    )
    assert f"deploy of {v2[:12]} failed" in output, output
    assert git(bare, "rev-parse", "refs/heads/main").strip() == v1, "main moved on a failure"
    assert remote_main(temps_daemon.git_url(app)) == v1
    assert_serves(temps_daemon, app, "v1", 1)


# --- outbound notifications ----------------------------------------------------------------------


def set_notifications(daemon: TempsDaemon, app: str, url: str) -> str:
    with daemon.client() as api:
        response = api.put(f"/api/apps/{app}/notifications", json={"url": url})
    assert response.status_code == 200, f"notifications: {response.status_code} {response.text}"
    answer = response.json()
    assert answer["url"] == url, answer
    assert answer["signature_header"] == "X-Temps-Signature-256", answer
    assert isinstance(answer["secret"], str) and len(answer["secret"]) >= 16, answer
    assert_not_stored_plain(daemon, answer["secret"], "the notification secret")
    return str(answer["secret"])


def notification(sink: NotificationSink, release: int) -> Received:
    def about(item: Received) -> bool:
        try:
            return bool(item.json().get("release") == release)
        except ValueError:
            return False

    found = sink.wait_for(about, NOTIFY_TIMEOUT)
    assert found is not None, (
        f"no notification for v{release} in {NOTIFY_TIMEOUT:.0f} s; got "
        f"{[item.body[:200] for item in sink.received()]}"
    )
    return found


def assert_signed(item: Received, secret: str) -> dict[str, Any]:
    assert item.headers.get("content-type", "").startswith("application/json"), item.headers
    assert item.headers.get("x-temps-signature-256", "").startswith("sha256="), item.headers
    assert valid_signature(item, secret), (
        f"X-Temps-Signature-256 {item.headers.get('x-temps-signature-256')} is not the HMAC of "
        "the body with the secret the API returned"
    )
    assert not valid_signature(item, secret + "x"), "the signature does not depend on the secret"
    return item.json()


def test_notifications_are_signed_for_live_failed_and_rolled_back_releases(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "notified"
    temps_daemon.create_app(app)
    work = tmp_path / app
    with NotificationSink() as sink:
        secret = set_notifications(temps_daemon, app, sink.url)

        v1 = make_app_repo(work, "v1")
        code, output = git_push(work, temps_daemon.git_url(app))
        assert code == 0, output
        body = assert_signed(notification(sink, 1), secret)
        assert body["event"] == "live", body
        assert (body["app"], body["version"], body["state"], body["commit"]) == (
            app,
            "v1",
            "live",
            v1,
        ), body
        assert body["failure_reason"] is None, body

        v2 = make_app_repo(work, "v2")
        code, output = git_push(work, temps_daemon.git_url(app))
        assert code == 0, output
        body = assert_signed(notification(sink, 2), secret)
        assert (body["event"], body["commit"]) == ("live", v2), body

        v3 = make_app_repo(work, "v3", health=False)
        code, output = git_push(work, temps_daemon.git_url(app))
        assert code != 0, output
        failed = wait_failed(temps_daemon, app, 3)
        body = assert_signed(notification(sink, 3), secret)
        assert (body["event"], body["state"], body["commit"]) == ("failed", "failed", v3), body
        assert body["failure_reason"] == failed["failure_reason"], body
        assert body["failed_step"] == failed["failed_step"], body
        assert body["log_tail"] and body["log_tail"] == failed["log_tail"], body

        response = api_post(temps_daemon, f"/api/apps/{app}/rollback?wait=true")
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "live", response.json()
        body = assert_signed(notification(sink, 4), secret)
        assert (body["event"], body["rollback_of"], body["commit"]) == ("rolled_back", 1, v1), body

        time.sleep(1.0)
        numbers = sorted(json.loads(item.body)["release"] for item in sink.received())
        assert numbers == [1, 2, 3, 4], f"notifications per release: {numbers}"
