"""End to end, maintenance mode (`temps maintenance APP on|off`, `PUT /api/apps/<app>/maintenance`):
the real daemon, dockerd, Traefik and git.

What a user checks: while another app serves under load without a single non-2xx, every request
to the app in maintenance is answered 503 with `Retry-After` and the app's page, from the
moment the switch returns until it is switched off, after which every request is the live
release's again; the containers keep running; a deploy meanwhile goes live behind the page and
leaves maintenance on; it holds across a daemon restart, and while the daemon is down the 503
stays.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.checks import assert_no_failures, container, push_ok, start_load
from tests.support.credentials import bearer, make_token
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import container_names
from tests.support.load import version_of

pytestmark = pytest.mark.docker

RETRY_AFTER = "60"  # the daemon's default
PAGE = "<h1>back at five</h1>"
PLAIN_PAGE = "is down for maintenance"


@dataclass(frozen=True)
class Answer:
    method: str
    sent: float  # monotonic, when the request went out
    status: int | None  # None: no answer (the error says why)
    retry_after: str | None
    release: str | None  # X-Temps-Release
    body: str
    error: str = ""


class Prober:
    """GET and POST the app through Traefik, one after the other, for as long as it runs:
    every answer with the time its request went out. (The app serves static files: it
    answers POST with 501.)"""

    def __init__(self, daemon: TempsDaemon, app: str) -> None:
        self.url = f"{daemon.http_url}/"
        self.host = f"{app}.{daemon.domain}"
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prober")

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        with httpx.Client(timeout=10, headers={"Host": self.host}) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                method = "POST" if len(self.answers) % 5 == 4 else "GET"
                sent = time.monotonic()
                try:
                    response = client.request(method, self.url)
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(method, sent, None, None, None, "", repr(exc)))
                else:
                    self.answers.append(
                        Answer(
                            method,
                            sent,
                            response.status_code,
                            response.headers.get("retry-after"),
                            response.headers.get("x-temps-release"),
                            response.text,
                        )
                    )
                time.sleep(0.01)

    def between(self, start: float, end: float) -> list[Answer]:
        return [answer for answer in self.answers if start <= answer.sent < end]


def switch(daemon: TempsDaemon, app: str, on: bool, token: str | None = None) -> httpx.Response:
    return httpx.put(
        f"{daemon.api_url}/api/apps/{app}/maintenance",
        json={"on": on},
        headers=bearer(token or daemon.admin_token),
        timeout=60,
    )


def assert_in_maintenance(answers: list[Answer], page: str) -> None:
    assert answers, "no request was sent while the app was in maintenance"
    wrong = [
        a for a in answers if (a.status, a.retry_after) != (503, RETRY_AFTER) or page not in a.body
    ]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers were not the page: {wrong[:3]}"


def assert_served(answers: list[Answer], version: str) -> None:
    """Every GET answered by `version`, every POST by the app itself."""
    gets = [a for a in answers if a.method == "GET"]
    assert gets, "no request was sent while the app was served"
    wrong = [a for a in gets if a.status != 200 or version_of(a.body) != version]
    wrong += [a for a in answers if a.method == "POST" and a.status != 501]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers were not {version}'s: {wrong[:3]}"


def test_maintenance_answers_503_with_the_page_then_serves_again_and_survives_a_deploy(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, other = temps_daemon, "quiet", "busy"
    for name in (app, other):
        daemon.create_app(name)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1")
    push_ok(daemon, tmp_path / other, other, "v1")
    load = start_load(daemon, other)
    try:
        with Prober(daemon, app) as prober:
            time.sleep(1)
            asked_on = time.monotonic()
            on = switch(daemon, app, True)
            switched_on = time.monotonic()
            assert on.status_code == 200, on.text
            assert on.json()["on"] is True and on.json()["retry_after"] == int(RETRY_AFTER)
            time.sleep(2)
            # No maintenance.html in v1: the plain page. The containers keep running.
            assert_in_maintenance(prober.between(switched_on, time.monotonic()), PLAIN_PAGE)
            assert container_names(f"label=temps.app={app}") == [container(app, 1)]

            # A deploy meanwhile goes through the gate and goes live behind the page, which is
            # now the new live commit's.
            (repo / "maintenance.html").write_text(f"<!doctype html>{PAGE}\n")
            push_ok(daemon, repo, app, "v2")
            assert daemon.app(app)["live_release"]["number"] == 2
            assert daemon.app(app)["maintenance_since"] is not None
            deployed = time.monotonic()
            time.sleep(1.5)
            assert_in_maintenance(prober.between(deployed, time.monotonic()), PAGE)

            asked_off = time.monotonic()
            off = switch(daemon, app, False)
            switched_off = time.monotonic()
            assert off.status_code == 200 and off.json()["on"] is False, off.text
            time.sleep(2)
            ended = time.monotonic()

        before = prober.between(0, asked_on)
        assert_served(before, "v1")
        assert_in_maintenance(prober.between(switched_on, asked_off), "")
        assert_served(prober.between(switched_off, ended), "v2")
        # Requests sent while a switch was under way got one answer or the other, nothing else.
        switching = prober.between(asked_on, switched_on) + prober.between(asked_off, switched_off)
        for answer in switching:
            assert answer.status in (200, 501, 503), answer
        posts = [a for a in prober.between(switched_on, asked_off) if a.method == "POST"]
        assert posts, "no POST was sent in maintenance"
    finally:
        load.stop()
    assert_no_failures(load.summary())


def test_maintenance_holds_across_a_restart_and_keeps_the_503_while_the_daemon_is_down(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "kept"
    daemon.create_app(app)
    (tmp_path / app).mkdir()
    (tmp_path / app / "maintenance.html").write_text(PAGE)
    push_ok(daemon, tmp_path / app, app, "v1")
    assert switch(daemon, app, True).status_code == 200

    daemon.kill()
    try:
        # Traefik keeps its 503 and Retry-After with nobody to give it the page.
        down = daemon.get_app_page(app)
        assert (down.status_code, down.headers.get("retry-after")) == (503, RETRY_AFTER)
    finally:
        daemon.restart()
    page = daemon.get_app_page(app)
    assert (page.status_code, page.headers.get("retry-after")) == (503, RETRY_AFTER)
    assert PAGE in page.text
    assert daemon.app(app)["maintenance_since"] is not None

    assert switch(daemon, app, False).status_code == 200
    back = daemon.get_app_page(app)
    assert back.status_code == 200 and version_of(back.text) == "v1", back.text


def test_the_cli_switches_it_with_the_apps_own_token_and_bad_input_changes_nothing(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, stranger = temps_daemon, "clim", "climother"
    daemon.create_app(app)
    daemon.create_app(stranger)
    push_ok(daemon, tmp_path / app, app, "v1")
    _, deploy_token = make_token(daemon, "clim-ci", app=app)

    def cli(*words: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = daemon.cli_env() | ({"TEMPS_TOKEN": token} if token else {})
        return subprocess.run(
            [str(TEMPS_BIN), "maintenance", *words],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = cli(app)
    assert shown.returncode == 0 and "maintenance off" in shown.stdout, shown
    done = cli(app, "on", token=deploy_token)
    assert done.returncode == 0 and "maintenance on since" in done.stdout, done
    assert "Retry-After: 60" in done.stdout
    assert daemon.get_app_page(app).status_code == 503
    again = cli(app, "on")
    assert again.returncode == 0 and "maintenance on" in again.stdout, again

    # Another app's token, an unknown app and a bad body: refused, nothing changed.
    refused = switch(daemon, stranger, True, token=deploy_token)
    assert refused.status_code == 403, refused.text
    assert daemon.app(stranger)["maintenance_since"] is None
    unknown = cli("nosuchapp", "on")
    assert unknown.returncode != 0 and "nosuchapp" in unknown.stderr, unknown
    bad = httpx.put(
        f"{daemon.api_url}/api/apps/{app}/maintenance",
        json={"on": "maybe"},
        headers=bearer(daemon.admin_token),
        timeout=30,
    )
    assert bad.status_code == 422, bad.text
    assert daemon.app(app)["maintenance_since"] is not None
    # The page is shown only for an app in maintenance.
    assert httpx.get(f"{daemon.api_url}/_temps/maintenance/{stranger}").status_code == 404

    off = cli(app, "off")
    assert off.returncode == 0 and "maintenance off" in off.stdout, off
    assert daemon.get_app_page(app).status_code == 200
