"""End to end, skew protection (`[skew]`): the real daemon, dockerd, Traefik and git.

What a user checks: a page loaded from v1 (its answer said `X-Temps-Release: v1`) whose later
requests name v1, by header, by cookie or by query, keeps reaching v1 after v2 is live, for
as long as v1 is kept, and the live release after that; a request that names no release
always reaches v2, one that names an unknown release or one no longer kept reaches it too,
never an error; the API lists the kept release and until when; once its time is over its
container is gone. Kept releases outlive a daemon restart with the time they had left, an app
keeps three at most, one whose container stops is let go, and in maintenance every request
gets the maintenance page, whatever release it names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.checks import container, push_ok
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import container_names, docker
from tests.support.load import version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker

KEEP = 25.0  # seconds v1 stays kept: short, so the test sees it end
SETTINGS = {"skew": {"keep": KEEP}}
# How a front end names the release its page came from.
WAYS: dict[str, dict[str, Any]] = {
    "header": {"headers": {"X-Temps-Release": "v1"}},
    "cookie": {"headers": {"Cookie": "theme=dark; temps_release=v1"}},
    "query": {"params": {"temps_release": "v1"}},
}
GENEROUS = 90.0  # for anything that waits on a loaded machine


def ask(
    daemon: TempsDaemon,
    app: str,
    path: str = "/",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """One request through Traefik for the app's host, on a fresh connection."""
    sent = {"Host": f"{app}.{daemon.domain}", **(headers or {})}
    return httpx.get(f"{daemon.http_url}{path}", headers=sent, params=params, timeout=10)


def served(response: httpx.Response) -> tuple[int, str | None, str | None]:
    return response.status_code, version_of(response.text), response.headers.get("x-temps-release")


def test_a_page_of_a_replaced_release_keeps_reaching_it_while_it_is_kept(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "skew"
    daemon.create_app(app)
    repo = tmp_path / "repo"
    push_ok(daemon, repo, app, "v1", settings=SETTINGS)
    page = ask(daemon, app)
    assert served(page) == (200, "v1", "v1")
    release = page.headers["x-temps-release"]  # what a front end reads once and sends back

    push_ok(daemon, repo, app, "v2", settings=SETTINGS)
    kept = daemon.app(app)["kept_releases"]
    assert [(k["release"], k["containers"]) for k in kept] == [(release, [container(app, 1)])]
    until = kept[0]["until"]
    assert time.time() < until <= time.time() + KEEP

    # While v1 is kept: every way of naming it reaches it, nothing else does.
    rounds = 0
    while time.time() < until - 5 or rounds == 0:
        for way, how in WAYS.items():
            assert served(ask(daemon, app, **how)) == (200, "v1", "v1"), way
        assert served(ask(daemon, app)) == (200, "v2", "v2")
        unknown = {"headers": {"X-Temps-Release": "v99"}}
        assert served(ask(daemon, app, **unknown)) == (200, "v2", "v2")
        assert served(ask(daemon, app, params={"temps_release": "v99"})) == (200, "v2", "v2")
        rounds += 1
        time.sleep(1.0)
    assert container(app, 1) in container_names(f"label=temps.app={app}")

    # Its time over: its routers go, then its container.
    def let_go() -> bool:
        gone = container(app, 1) not in container_names(f"label=temps.app={app}")
        return gone and not daemon.app(app)["kept_releases"]

    assert poll(let_go, bool, timeout=until - time.time() + GENEROUS, interval=0.5)
    assert time.time() >= until
    for way, how in WAYS.items():
        assert served(ask(daemon, app, **how)) == (200, "v2", "v2"), way
    assert served(ask(daemon, app)) == (200, "v2", "v2")


def test_a_replaced_release_is_reached_by_its_id_from_the_switch_through_its_bake_window(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """With a bake window the replaced release waits in standby: it is reached by its id from
    the switch on (not only once the window is over), and the window's end keeps it. A
    rollback that takes the standby over makes it live again, reached without an id, and no
    longer kept."""
    daemon, app = temps_daemon, "skew-bake"
    daemon.create_app(app)
    repo = tmp_path / "repo"
    push_ok(daemon, repo, app, "v1", settings=SETTINGS, bake=6)
    push_ok(daemon, repo, app, "v2", settings=SETTINGS, bake=6)
    assert [r["state"] for r in daemon.releases(app)[:2]] == ["live", "standby"]
    for way, how in WAYS.items():  # at once: inside the bake window
        assert served(ask(daemon, app, **how)) == (200, "v1", "v1"), way
    assert served(ask(daemon, app)) == (200, "v2", "v2")
    [kept] = daemon.app(app)["kept_releases"]
    until = kept["until"]

    def window_over() -> bool:
        return daemon.releases(app)[1]["state"] == "retired"

    assert poll(window_over, bool, timeout=GENEROUS, interval=0.5)
    for way, how in WAYS.items():
        assert served(ask(daemon, app, **how)) == (200, "v1", "v1"), way
    [still] = daemon.app(app)["kept_releases"]
    assert still["release"] == "v1" and still["until"] == until, "kept from the switch"

    # A third release, and a rollback to v2 inside v3's window: v2 takes its standby over.
    push_ok(daemon, repo, app, "v3", settings=SETTINGS, bake=30)
    for way, how in WAYS.items():
        assert served(ask(daemon, app, **how)) == (200, "v1", "v1"), way
    v2 = {"headers": {"X-Temps-Release": "v2"}}
    assert served(ask(daemon, app, **v2)) == (200, "v2", "v2")
    with daemon.client() as client:
        answer = client.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=120)
    assert answer.status_code < 300, answer.text
    assert served(ask(daemon, app)) == (200, "v2", "v4")
    kept_now = {k["release"] for k in daemon.app(app)["kept_releases"]}
    assert "v2" not in kept_now, "v2's containers serve v4 now: no longer kept as v2"
    assert served(ask(daemon, app, **v2)) == (200, "v2", "v4"), "an expired id: the live one"


def test_the_release_cookie_is_set_when_asked(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    """`[skew] cookie = true`: every answer sets `temps_release`. Traefik's header replaces a
    `Set-Cookie` the app sent itself (why it is off by default): this pins that down."""
    daemon, app = temps_daemon, "skew-cookie"
    daemon.create_app(app)
    repo = tmp_path / "repo"
    own = 'printf "Content-Type: text/plain\\r\\nSet-Cookie: session=abc\\r\\n\\r\\nok\\n"'
    settings = {"skew": {"keep": KEEP, "cookie": True}}
    push_ok(daemon, repo, app, "v1", settings=settings, scripts={"own": own})
    page = ask(daemon, app)
    assert page.headers.get_list("set-cookie") == ["temps_release=v1; Path=/; SameSite=Lax"]
    assert ask(daemon, app, "/cgi-bin/own").headers.get_list("set-cookie") == [
        "temps_release=v1; Path=/; SameSite=Lax"
    ]
    # A browser sends the cookie back: once v2 is live, it still reaches v1.
    push_ok(daemon, repo, app, "v2", settings=settings)
    cookie = {"headers": {"Cookie": "temps_release=v1"}}
    assert served(ask(daemon, app, **cookie)) == (200, "v1", "v1")
    fresh = ask(daemon, app)
    assert served(fresh) == (200, "v2", "v2")
    assert fresh.headers.get("set-cookie") == "temps_release=v2; Path=/; SameSite=Lax"


def test_kept_releases_outlive_a_restart_and_an_app_keeps_three_at_most(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """Kept for long, an app's releases stay routed across a daemon restart with the time
    they had left, three at most (a fourth lets the oldest go); kept briefly, a release
    whose time ran out while the daemon was down is let go as it starts again."""
    daemon, many, brief = temps_daemon, "skew-many", "skew-brief"
    short = {"skew": {"keep": 15.0}}
    daemon.create_app(brief)
    for version in ("v1", "v2"):
        push_ok(daemon, tmp_path / brief, brief, version, settings=short)
    [brief_kept] = daemon.app(brief)["kept_releases"]

    long = {"skew": {"keep": 600.0}}
    daemon.create_app(many)
    for number in range(1, 6):
        push_ok(daemon, tmp_path / many, many, f"v{number}", settings=long)
    kept = daemon.app(many)["kept_releases"]
    assert [k["release"] for k in kept] == ["v2", "v3", "v4"]
    labelled = f"label=temps.app={many}"
    assert poll(
        lambda: container_names(labelled),
        lambda names: container(many, 1) not in names,
        timeout=GENEROUS,
        interval=0.5,
    )
    assert served(ask(daemon, many, headers={"X-Temps-Release": "v1"})) == (200, "v5", "v5")

    daemon.terminate()
    time.sleep(max(0.0, brief_kept["until"] - time.time() + 1))
    daemon.restart()

    assert daemon.app(many)["kept_releases"] == kept
    for number in (2, 3, 4):
        named = {"params": {"temps_release": f"v{number}"}}
        assert served(ask(daemon, many, **named)) == (200, f"v{number}", f"v{number}")
    assert served(ask(daemon, many)) == (200, "v5", "v5")

    assert daemon.app(brief)["kept_releases"] == []
    assert poll(
        lambda: container_names(f"label=temps.app={brief}"),
        lambda names: container(brief, 1) not in names,
        timeout=GENEROUS,
        interval=0.5,
    )
    assert served(ask(daemon, brief, headers={"X-Temps-Release": "v1"})) == (200, "v2", "v2")


def test_in_maintenance_a_request_naming_a_kept_release_gets_the_maintenance_page(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "skew-paused"
    daemon.create_app(app)
    for version in ("v1", "v2"):
        push_ok(daemon, tmp_path / app, app, version, settings={"skew": {"keep": 600.0}})
    named = {"X-Temps-Release": "v1"}

    def maintenance(on: bool) -> None:
        answer = httpx.put(
            f"{daemon.api_url}/api/apps/{app}/maintenance",
            json={"on": on},
            headers={"Authorization": f"Bearer {daemon.admin_token}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text

    maintenance(True)
    assert ask(daemon, app, headers=named).status_code == 503
    assert ask(daemon, app).status_code == 503
    maintenance(False)
    assert served(ask(daemon, app, headers=named)) == (200, "v1", "v1")
    assert served(ask(daemon, app)) == (200, "v2", "v2")


def test_a_kept_release_whose_container_stops_is_let_go(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """Its container killed (Docker does not start it again), a kept release is let go: the
    requests that name it reach the live release rather than a dead server."""
    daemon, app = temps_daemon, "skew-lost"
    daemon.create_app(app)
    for version in ("v1", "v2"):
        push_ok(daemon, tmp_path / app, app, version, settings={"skew": {"keep": 600.0}})
    assert [k["release"] for k in daemon.app(app)["kept_releases"]] == ["v1"]
    docker("kill", container(app, 1), timeout=60)
    kept = poll(lambda: daemon.app(app)["kept_releases"], lambda kept: not kept, timeout=GENEROUS)
    assert kept == []
    named = {"X-Temps-Release": "v1"}
    assert poll(
        lambda: served(ask(daemon, app, headers=named)),
        lambda answer: answer == (200, "v2", "v2"),
        timeout=GENEROUS,
    ) == (200, "v2", "v2")
    assert poll(
        lambda: container_names(f"label=temps.app={app}"),
        lambda names: container(app, 1) not in names,
        timeout=GENEROUS,
        interval=0.5,
    )
