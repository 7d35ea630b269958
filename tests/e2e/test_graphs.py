"""End to end: the dashboard's graphs in the real Chromium, after deploys under load through
the real Traefik, with the series read from its real access log by the daemon.

The release page's graph of the switch adds up to the release's traffic report and marks
the switch where the release's events put it; the app page's hour marks each deploy at the
x of its time. Screenshots land in tests/artifacts/graphs/ for a person to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import wait_states
from tests.support.daemon import ARTIFACTS, TempsDaemon
from tests.support.load import LoadGenerator
from tests.support.wait import poll

pytestmark = pytest.mark.docker

SHOTS = ARTIFACTS / "graphs"
APP = "graphs"
SERIES_INTERVAL = 5.0  # pipeline.settings: how often the daemon reads the access log


def push(daemon: TempsDaemon, repo: Path, version: str) -> None:
    make_app_repo(repo, version)
    code, output = git_push(repo, daemon.git_url(APP))
    assert code == 0, f"git push of {version} failed (exit {code}):\n{output}"


def series_totals(series: dict[str, Any], since: float) -> tuple[int, int]:
    first = round((since - series["start"]) / series["step"])
    sides = series["sides"].values()
    return (
        sum(sum(side["requests"][first:]) for side in sides),
        sum(sum(side["errors"][first:]) for side in sides),
    )


def switched_at(release: dict[str, Any]) -> float:
    return next(e["at"] for e in release["events"] if e["was"] == "switching")


def switch_started(release: dict[str, Any]) -> float:
    return next(e["at"] for e in release["events"] if e["state"] == "switching")


@pytest.fixture(scope="module")
def deployed_under_load(
    temps_daemon: TempsDaemon, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """v1 then v2 of an app, v2 pushed while requests come at ~80/s: v2's record."""
    temps_daemon.create_app(APP)
    repo = tmp_path_factory.mktemp("graphs-repo") / APP
    push(temps_daemon, repo, "v1")
    host = f"{APP}.{temps_daemon.domain}"
    with LoadGenerator(temps_daemon.http_url, host, rate=80, workers=4) as load:
        time.sleep(3)
        push(temps_daemon, repo, "v2")
        time.sleep(2)
    summary = load.summary()
    assert summary.non_2xx == 0 and summary.errors == 0, summary.line()
    wait_states(temps_daemon, APP, [(2, "live"), (1, "retired")])
    return temps_daemon.release(APP, 2)


def browser_module() -> Any:
    from tests.support import browser

    return browser


def sign_in(page: Any, daemon: TempsDaemon) -> None:
    page.open(f"{daemon.api_url}/dashboard/login")
    page.find("#token").send_keys(daemon.admin_token)
    page.find("form.stack button[type=submit]").click()
    page.wait_for_text("h1", "Apps")


def test_the_release_page_draws_its_switch_summing_to_its_report(
    temps_daemon: TempsDaemon, deployed_under_load: dict[str, Any], tmp_path: Path
) -> None:
    release = deployed_under_load
    traffic = release["traffic"]
    series = traffic["series"]
    assert series["switch_at"] == switch_started(release)
    assert series_totals(series, series["switch_at"]) == (traffic["requests"], traffic["errors"])
    assert traffic["requests"] > 0 and set(series["sides"]) >= {"v2"}
    browser = browser_module()
    with browser.chromium(tmp_path / "chromium-profile") as page:
        sign_in(page, temps_daemon)
        page.open(f"{temps_daemon.api_url}/dashboard/apps/{APP}/releases/2")
        page.find("#switch-chart-1 svg .series")
        drawn = page.find_all("#switch-chart-1 .series")
        assert {e.get_attribute("data-series") for e in drawn} >= {"v2 requests", "v2 errors"}
        marks = {
            e.get_attribute("data-kind"): float(e.get_attribute("data-at") or 0)
            for e in page.find_all("#switch-chart-1 .mark")
        }
        assert marks["switch"] == pytest.approx(switched_at(release), abs=1e-3), marks
        assert "gate" in marks and "drain" in marks, marks
        # The table under the graph holds the same buckets the record has, every side's.
        page.driver.execute_script("document.querySelector('.chart-values').open = true")
        cells = page.driver.execute_script(
            "return [...document.querySelectorAll('.switch-graphs td')]"
            ".filter(td => / requests$/.test(td.dataset.label)).map(td => td.textContent)"
        )
        assert sum(int(c) for c in cells) == series_totals(series, series["start"])[0]
        page.driver.execute_script("document.querySelector('.chart-values').open = false")
        shot = page.screenshot(SHOTS / "release-switch.png")
        print(f"screenshot: {shot}")


def test_the_app_page_marks_each_deploy_at_its_time(
    temps_daemon: TempsDaemon, deployed_under_load: dict[str, Any], tmp_path: Path
) -> None:
    releases = [temps_daemon.release(APP, n) for n in (1, 2)]
    with temps_daemon.client() as api:

        def hour() -> dict[str, Any]:
            answer: dict[str, Any] = api.get(
                f"/api/apps/{APP}/series", params={"range": "1h"}
            ).json()
            return answer

        answer = poll(
            hour,
            lambda a: sum(p["requests"] for p in a["points"]) > 300,
            timeout=SERIES_INTERVAL * 6,
        )
    assert len(answer["points"]) <= 500
    # A step is at most the longest range: past it the answer is a refusal, not an error.
    with temps_daemon.client() as api:
        steps = {
            step: api.get(f"/api/apps/{APP}/series", params={"step": step})
            for step in (31 * 86400, 31 * 86400 + 1, 2**107)
        }
    assert [answer.status_code for answer in steps.values()] == [200, 422, 422]
    deploys = [m for m in answer["marks"] if m["kind"] == "deploy"]
    assert [m["label"] for m in deploys] == ["v1 deployed", "v2 deployed"]
    browser = browser_module()
    with browser.chromium(tmp_path / "chromium-profile") as page:
        sign_in(page, temps_daemon)
        page.find("svg.sparkline polyline")
        print(f"screenshot: {page.screenshot(SHOTS / 'apps-sparklines.png')}")
        page.open(f"{temps_daemon.api_url}/dashboard/apps/{APP}")
        svg = page.find("#app-chart-1 svg")
        since, until = (float(svg.get_attribute(a) or 0) for a in ("data-since", "data-until"))
        left, right = (float(svg.get_attribute(a) or 0) for a in ("data-left", "data-right"))
        drawn = [
            (float(e.get_attribute("data-at") or 0), float(e.get_attribute("data-x") or 0))
            for e in page.find_all("#app-chart-1 .mark-deploy")
        ]
        assert len(drawn) == 2, drawn
        for release, (at, x) in zip(releases, drawn, strict=True):
            assert at == pytest.approx(switch_started(release), abs=1e-3)
            assert x == pytest.approx(
                left + (at - since) / (until - since) * (right - left), abs=0.2
            )
        # Hovering a point's column shows its values.
        titles = page.driver.execute_script(
            "return [...document.querySelectorAll('#app-chart-1 .hover rect title')]"
            ".map(t => t.textContent).filter(t => !/2xx 0,/.test(t))"
        )
        assert titles and re.search(r"2xx \d", titles[-1]), titles[-3:]
        shot = page.screenshot(SHOTS / "app-hour.png")
        print(f"screenshot: {shot}")
        page.click_link("24h")
        page.wait_for_url("range=24h")
        page.find("#app-chart-1 .mark-deploy")
        print(f"screenshot: {page.screenshot(SHOTS / 'app-day.png')}")
