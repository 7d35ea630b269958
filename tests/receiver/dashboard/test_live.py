"""The web dashboard against a real daemon: plain HTTP for its guards, headless Chromium for
what a person does with it (sign in, find the app, read a release, roll back).

Screenshots of every page, at a laptop size and a phone size, land in
tests/artifacts/dashboard/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import assert_serves, wait_states
from tests.support.daemon import ARTIFACTS, TempsDaemon
from tests.support.wait import poll

pytestmark = pytest.mark.docker

SHOTS = ARTIFACTS / "dashboard"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
DEPLOY_TIMEOUT = 120.0


def push(daemon: TempsDaemon, repo: Path, app: str, version: str) -> None:
    make_app_repo(repo, version)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of {version} to {app} failed (exit {code}):\n{output}"


@pytest.fixture(scope="module")
def two_releases(
    temps_daemon: TempsDaemon, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """An app with v1 retired and v2 live, and its repository."""
    app = "dash"
    temps_daemon.create_app(app)
    repo = tmp_path_factory.mktemp("dash-repo") / app
    push(temps_daemon, repo, app, "v1")
    push(temps_daemon, repo, app, "v2")
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")])
    return app, repo


@pytest.fixture
def dashboard(temps_daemon: TempsDaemon) -> Iterator[httpx.Client]:
    """A client without a session that shows every redirect instead of following it."""
    with httpx.Client(base_url=temps_daemon.api_url, timeout=30) as client:
        yield client


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/dashboard/login", data={"token": token, "next": "/dashboard"})


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found, f"no CSRF field on {page.url}:\n{page.text[:2000]}"
    return found.group(1)


def assert_to_login(response: httpx.Response) -> None:
    assert response.status_code == 303, f"{response.url}: {response.status_code}"
    assert response.headers["location"].startswith("/dashboard/login?next="), response.headers


# --- plain HTTP ----------------------------------------------------------------------------------


def test_maintenance_is_shown_and_switched_from_the_apps_page(
    temps_daemon: TempsDaemon, tmp_path: Path, dashboard: httpx.Client
) -> None:
    app = "dash-quiet"
    temps_daemon.create_app(app)
    push(temps_daemon, tmp_path / app, app, "v1")
    wait_states(temps_daemon, app, [(1, "live")])
    sign_in(dashboard, temps_daemon.admin_token)
    assert '<dd id="maintenance">off</dd>' in dashboard.get(f"/dashboard/apps/{app}").text

    confirm = dashboard.get(f"/dashboard/apps/{app}/maintenance")
    assert f"Put {app} in maintenance?" in confirm.text, confirm.text
    forged = dashboard.post(f"/dashboard/apps/{app}/maintenance", data={"on": "on"})
    assert forged.status_code == 403
    assert temps_daemon.app(app)["maintenance_since"] is None
    done = dashboard.post(
        f"/dashboard/apps/{app}/maintenance", data={"csrf": csrf_of(confirm), "on": "on"}
    )
    assert done.status_code == 303, done.text
    page = dashboard.get(done.headers["location"]).text
    assert f"{app} is in maintenance" in page and 'data-state="maintenance">on' in page
    assert temps_daemon.get_app_page(app).status_code == 503
    assert 'data-state="maintenance">maintenance</span>' in dashboard.get("/dashboard").text

    confirm = dashboard.get(f"/dashboard/apps/{app}/maintenance")
    assert f"End maintenance of {app}?" in confirm.text
    dashboard.post(
        f"/dashboard/apps/{app}/maintenance", data={"csrf": csrf_of(confirm), "on": "off"}
    )
    assert temps_daemon.app(app)["maintenance_since"] is None
    assert temps_daemon.get_app_page(app).status_code == 200


def test_pages_need_a_session_and_actions_a_csrf_token(
    temps_daemon: TempsDaemon, tmp_path: Path, dashboard: httpx.Client
) -> None:
    app = "dash-http"
    temps_daemon.create_app(app)
    push(temps_daemon, tmp_path / app, app, "v1")
    wait_states(temps_daemon, app, [(1, "live")])

    for page in (
        "/dashboard",
        f"/dashboard/apps/{app}",
        f"/dashboard/apps/{app}/releases/1",
        f"/dashboard/apps/{app}/rollback?release=1",
        f"/dashboard/apps/{app}/releases/1/log.txt",
    ):
        assert_to_login(dashboard.get(page))
    assert dashboard.get(f"/dashboard/apps/{app}/releases/1/log").status_code == 401
    assert_to_login(dashboard.post(f"/dashboard/apps/{app}/redeploy", data={"csrf": "x"}))

    refused = sign_in(dashboard, "temps_not-the-token")
    assert refused.status_code == 401, refused.status_code
    assert "That token is not valid." in refused.text
    assert "set-cookie" not in refused.headers

    token = temps_daemon.admin_token
    signed_in = sign_in(dashboard, token)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
    cookie = signed_in.headers["set-cookie"]
    assert token not in cookie, "the admin token itself went into the cookie"
    for attribute in ("httponly", "samesite=strict", "path=/dashboard"):
        assert attribute in cookie.lower(), f"cookie without {attribute}: {cookie}"

    apps = dashboard.get("/dashboard")
    assert apps.status_code == 200, apps.text
    assert app in apps.text and f"http://{app}.{temps_daemon.domain}" in apps.text
    assert "default-src 'none'" in apps.headers["content-security-policy"]

    # Actions without the session's CSRF token change nothing.
    for form in ({}, {"csrf": "forged", "release": "1"}):
        for action in ("rollback", "redeploy"):
            answer = dashboard.post(f"/dashboard/apps/{app}/{action}", data=form)
            assert answer.status_code == 403, f"{action} with {form}: {answer.status_code}"
    assert [r["number"] for r in temps_daemon.releases(app)] == [1]

    # Errors from the pipeline come back as a message on the page, not a problem document.
    confirm = dashboard.get(f"/dashboard/apps/{app}/redeploy")
    csrf = csrf_of(confirm)
    refused_rollback = dashboard.post(
        f"/dashboard/apps/{app}/rollback", data={"csrf": csrf, "release": "1"}
    )
    assert refused_rollback.status_code == 303
    back = dashboard.get(refused_rollback.headers["location"])
    assert "Rollback to v1 refused: v1 is already live" in back.text, back.text
    missing = dashboard.get("/dashboard/apps/nope")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "no app named &#x27;nope&#x27;" in missing.text, missing.text

    redeployed = dashboard.post(f"/dashboard/apps/{app}/redeploy", data={"csrf": csrf})
    assert redeployed.status_code == 303, redeployed.text
    assert redeployed.headers["location"] == f"/dashboard/apps/{app}/releases/2"
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")], timeout=DEPLOY_TIMEOUT)
    # The follow endpoint answers once a line arrives or a few seconds pass; the job ends soon
    # after the release goes live (the traffic report is written last).
    log = poll(
        lambda: dashboard.get(f"/dashboard/apps/{app}/releases/2/log", params={"position": 0}),
        lambda answer: answer.status_code != 200 or answer.json()["done"],
        timeout=60,
    )
    assert log.status_code == 200 and log.json()["done"] is True, log.text
    assert log.json()["lines"] and log.json()["state"] == "live", log.text

    old_cookie = dashboard.cookies.get("temps_session")
    signed_out = dashboard.post("/dashboard/logout", data={"csrf": csrf})
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/dashboard/login"
    dashboard.cookies.clear()
    assert old_cookie
    dashboard.cookies.set("temps_session", old_cookie, path="/dashboard")
    assert_to_login(dashboard.get("/dashboard"))


# --- in a browser --------------------------------------------------------------------------------


def browser_support() -> ModuleType:
    try:
        from tests.support import browser
    except ImportError as exc:
        pytest.fail(f"the dashboard browser test needs selenium (a test dependency): {exc}")
    return browser


def test_sign_in_read_a_release_and_roll_back_in_chromium(
    temps_daemon: TempsDaemon, two_releases: tuple[str, Path], tmp_path: Path
) -> None:
    app, repo = two_releases
    browser = browser_support()
    base = temps_daemon.api_url
    with browser.chromium(tmp_path / "chromium-profile") as page:
        page.open(f"{base}/dashboard")
        page.wait_for_url("/dashboard/login")
        page.find("#token")
        page.screenshot(SHOTS / "login-desktop.png")

        page.find("#token").send_keys("temps_wrong-token")
        page.find("form.stack button[type=submit]").click()
        page.wait_for_text(".flash-error", "That token is not valid.")

        page.find("#token").send_keys(temps_daemon.admin_token)
        page.find("form.stack button[type=submit]").click()
        page.wait_for_text("h1", "Apps")
        apps = page.text("table")
        assert app in apps and "v2" in apps, apps
        page.screenshot(SHOTS / "apps-desktop.png")

        page.click_link(app)
        history = page.wait_for_text("table.releases", "v1")
        assert "live" in history and "retired" in history, history
        assert "Roll back to v1" in history, history
        page.screenshot(SHOTS / "app-desktop.png")

        page.click_link("v2")
        timeline = page.wait_for_text("#timeline", "Live")
        for step in ("Queued", "Build", "Boot", "Health gate", "Switch", "Live"):
            assert step in timeline, f"{step!r} missing from the timeline:\n{timeline}"
        assert page.text("#log").strip(), "the release page shows no log"
        page.screenshot(SHOTS / "release-desktop.png")

        page.click_link(app)
        page.click_link("Roll back to v1")
        page.wait_for_text("h1", f"Roll back {app} to v1?")
        page.screenshot(SHOTS / "confirm-rollback-desktop.png")
        page.find(".confirm button[type=submit]").click()

        page.wait_for_url(f"/dashboard/apps/{app}/releases/3")
        page.screenshot(SHOTS / "release-running-desktop.png")
        page.wait_for_text("#state-badge", "live", timeout=DEPLOY_TIMEOUT)
        # Once the job ends the page reloads itself with the final timeline and report.
        page.wait_until('document.getElementById("log").dataset.follow === "0"', DEPLOY_TIMEOUT)
        assert "rollback of v1" in page.text(".page-head"), page.text(".page-head")
        assert "Live" in page.text("#timeline")
        page.screenshot(SHOTS / "release-rollback-desktop.png")

        wait_states(temps_daemon, app, [(3, "live"), (2, "retired"), (1, "retired")])
        assert_serves(temps_daemon, app, "v1", 3)
        report = temps_daemon.releases(app)[0].get("traffic")
        if report:
            shown = page.text(".traffic")
            assert f"{report['errors']} error" in shown and "request" in shown, shown

        page.click_link(app)
        first_row = page.text("table.releases tbody tr")
        assert "v3" in first_row and "live" in first_row, first_row
        page.screenshot(SHOTS / "app-after-rollback-desktop.png")

        # A push whose container exits at once: the page says where and why it failed.
        make_app_repo(repo, "v4", crash=True)
        code, output = git_push(repo, temps_daemon.git_url(app))
        assert code != 0, f"a crashing version was accepted:\n{output}"
        page.open(f"{base}/dashboard/apps/{app}/releases/4")
        page.wait_until('document.getElementById("log").dataset.follow === "0"', DEPLOY_TIMEOUT)
        failure = page.text(".failure")
        assert "Failed at" in failure and "crashing on purpose" in failure, failure
        assert "failed" in page.text("#state-badge")
        page.screenshot(SHOTS / "release-failed-desktop.png")

        page.phone()
        page.open(f"{base}/dashboard")
        page.wait_for_text("h1", "Apps")
        page.screenshot(SHOTS / "apps-phone.png")
        page.open(f"{base}/dashboard/apps/{app}")
        page.wait_for_text("table.releases", "v4")
        page.screenshot(SHOTS / "app-phone.png")
        page.open(f"{base}/dashboard/apps/{app}/releases/3")
        page.wait_for_text("#timeline", "Live")
        page.screenshot(SHOTS / "release-phone.png")

        page.desktop()
        page.dark()
        page.open(f"{base}/dashboard/apps/{app}/releases/3")
        page.wait_for_text("#timeline", "Live")
        page.screenshot(SHOTS / "release-dark-desktop.png")
        page.dark(False)

        page.phone()
        page.find(".nav button[type=submit]").click()
        page.wait_for_url("/dashboard/login")
        page.find("#token")
        page.screenshot(SHOTS / "login-phone.png")
        page.open(f"{base}/dashboard")
        page.wait_for_url("/dashboard/login")
