"""End to end, issue 19: canary deploys judged by the requests they served, against real
Traefik under steady load.

The load asks `/cgi-bin/page` as new clients would (no cookie kept), so Traefik's weighted
service sends each request to the canary with the configured weight. Each version's page says
its version; a bad one answers 500 to every fifth request, or answers slowly, while its
health check passes.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import assert_no_failures, recorded_urls, rejection, route_servers
from tests.support.daemon import ARTIFACTS, TEMPS_BIN, TempsDaemon
from tests.support.load import LoadGenerator, version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker

PAGE = "/cgi-bin/page"
GOOD_PAGE = """
printf 'Content-Type: text/plain\\r\\n\\r\\nversion {version}\\n'
"""
# Every fifth request this container serves fails: 20 % of the canary's requests.
FAILING_PAGE = """
n=$(( $(cat /tmp/count 2>/dev/null || echo 0) + 1 ))
echo "$n" > /tmp/count
if [ $(( n % 5 )) -eq 0 ]; then
  printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
  printf 'version {version} failed\\n'
  exit 0
fi
printf 'Content-Type: text/plain\\r\\n\\r\\nversion {version}\\n'
"""
# 0.6 s: the live release's own p95 stays well under a third of it on a loaded machine (a CGI
# fork under two busy workers took 80 ms and more at p95 in CI, where a 0.15 s page was not
# 2x slower).
SLOW_PAGE = """
sleep 0.6
printf 'Content-Type: text/plain\\r\\n\\r\\nversion {version}\\n'
"""


def settings(**canary: object) -> dict[str, dict[str, object]]:
    limits: dict[str, object] = {"weight": 10, "duration": 20, "min_requests": 80}
    return {"deploy": {"strategy": "canary"}, "canary": {**limits, **canary}}


def commit(repo: Path, version: str, page: str, **canary: object) -> None:
    make_app_repo(
        repo, version, scripts={"page": page.format(version=version)}, settings=settings(**canary)
    )


def page_load(daemon: TempsDaemon, app: str, rate: float = 150.0) -> LoadGenerator:
    host = f"{app}.{daemon.domain}"
    load = LoadGenerator(daemon.http_url, host, path=PAGE, rate=rate, cookies=False)
    load.start()
    return load


def live_v1(daemon: TempsDaemon, repo: Path, app: str, web: int = 1) -> None:
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.patch(f"/api/apps/{app}/formation", json={"web": web}).status_code == 200
    commit(repo, "v1", GOOD_PAGE)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, output  # nothing live: the first release switches as blue-green


def push_v2_under_load(
    daemon: TempsDaemon, repo: Path, app: str, page: str, **canary: object
) -> tuple[int, str, LoadGenerator]:
    """Push v2 with `page` and the `canary` settings while page_load runs: git's exit code and
    output, and the load, stopped."""
    load = page_load(daemon, app)
    try:
        commit(repo, "v2", page, **canary)
        code, output = git_push(repo, daemon.git_url(app))
    finally:
        load.stop()
    return code, output, load


def push_until_its_canary(
    daemon: TempsDaemon, repo: Path, app: str
) -> Callable[[], tuple[int, str]]:
    """Push the repo's tip in the background and return once v2 is in its canary; what is
    returned waits for the push's exit code and output."""
    pushed: dict[str, tuple[int, str]] = {}
    pusher = threading.Thread(
        target=lambda: pushed.update(result=git_push(repo, daemon.git_url(app))), daemon=True
    )
    pusher.start()
    poll(lambda: [r["state"] for r in daemon.releases(app) if r["number"] == 2],
         lambda states: states == ["canary"], timeout=60)  # fmt: skip

    def answer() -> tuple[int, str]:
        pusher.join(timeout=120)
        return pushed["result"]

    return answer


def canary_record(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    record: dict[str, Any] = daemon.release(app, number)["traffic"]["canary"]
    return record


def test_a_release_failing_a_fifth_of_its_requests_is_withdrawn(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "canary-bad", tmp_path / "repo"
    live_v1(daemon, repo, app)
    code, output, load = push_v2_under_load(daemon, repo, app, FAILING_PAGE)
    summary = load.summary()
    reason = rejection(output) or ""
    assert code != 0 and "canary withdrawn" in reason, output
    release = daemon.release(app, 2)
    assert (release["state"], release["failed_step"]) == ("failed", "canary")
    assert "canary errors" in release["failure_reason"]
    record = canary_record(daemon, app, 2)
    assert record["decision"] == "withdrawn"
    step = record["steps"][-1]
    assert step["canary"]["errors"] >= 1 and step["live"]["errors"] == 0, record
    # Users of the live release saw no error; every failure came from the canary, and the
    # record counts them (a few more may end after the look that withdrew it).
    failures = [o for o in load.outcomes() if o.status != 200]
    assert summary.errors == 0 and all(o.version == "v2" for o in failures), summary.failures
    assert len(failures) <= record["errors_until_withdrawn"] + 2, (len(failures), record)
    assert summary.per_version["v1"] > 0
    assert daemon.app(app)["live_release"]["number"] == 1
    assert route_servers(daemon, app) == recorded_urls(daemon.app(app)["live_release"])
    # Its graph: from before its first step to the withdrawal, both releases side by side.
    series = release["traffic"]["series"]
    assert {"v1", "v2"} <= set(series["sides"]), series["sides"].keys()
    assert sum(series["sides"]["v2"]["errors"]) >= step["canary"]["errors"]


def assert_graph_of_both_sides(daemon: TempsDaemon, app: str, tmp_path: Path) -> None:
    """The promoted canary's graph holds both releases from its first step on and adds up to
    its report from the switch; its page in Chromium draws both, with the steps marked."""
    release = daemon.release(app, 2)
    traffic, series = release["traffic"], release["traffic"]["series"]
    canary_at = next(e["at"] for e in release["events"] if e["state"] == "canary")
    assert series["start"] <= canary_at and {"v1", "v2"} <= set(series["sides"])
    first = round((series["switch_at"] - series["start"]) / series["step"])
    sides = series["sides"].values()
    assert sum(sum(side["requests"][first:]) for side in sides) == traffic["requests"]
    assert sum(sum(side["errors"][first:]) for side in sides) == traffic["errors"]
    from tests.support import browser

    with browser.chromium(tmp_path / "chromium-profile") as page:
        page.open(f"{daemon.api_url}/dashboard/login")
        page.find("#token").send_keys(daemon.admin_token)
        page.find("form.stack button[type=submit]").click()
        page.wait_for_text("h1", "Apps")
        page.open(f"{daemon.api_url}/dashboard/apps/{app}/releases/2")
        drawn = {e.get_attribute("data-series") for e in page.find_all("#switch-chart-1 .series")}
        assert {"v1 requests", "v2 requests"} <= drawn, drawn
        kinds = [e.get_attribute("data-kind") for e in page.find_all("#switch-chart-1 .mark")]
        assert kinds.count("canary") == 2 and "switch" in kinds, kinds
        shot = page.screenshot(ARTIFACTS / "graphs" / "canary-switch.png")
        print(f"screenshot: {shot}")


def test_a_good_release_of_two_containers_is_promoted_and_ends_as_a_normal_deploy(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "canary-good", tmp_path / "repo"
    live_v1(daemon, repo, app, web=2)  # each side balances two containers
    code, output, load = push_v2_under_load(daemon, repo, app, GOOD_PAGE, steps=[10, 50])
    summary = load.summary()
    assert code == 0, output
    assert_no_failures(summary)
    assert "canary passed: promoting v2" in output
    record = canary_record(daemon, app, 2)
    assert record["decision"] == "promoted"
    assert [s["weight"] for s in record["steps"]] == [10, 50]
    assert all(s["passed"] and s["canary"]["requests"] > 0 for s in record["steps"]), record
    live = daemon.app(app)["live_release"]
    assert sorted(route_servers(daemon, app)) == recorded_urls(live)
    assert len(live["slot"]["web"]) == 2
    assert summary.per_version.get("v2", 0) > 0 and summary.per_version.get("v1", 0) > 0
    assert daemon.app(app)["live_release"]["number"] == 2
    assert_graph_of_both_sides(daemon, app, tmp_path)
    # A rollback goes to a release that served already: no canary again.
    with daemon.client() as api:
        rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=120).json()
    assert (rolled["state"], rolled["strategy"]) == ("live", "blue-green"), rolled
    assert "canary" not in [event["state"] for event in rolled["events"]]


def test_a_release_three_times_slower_at_p95_is_withdrawn(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "canary-slow", tmp_path / "repo"
    live_v1(daemon, repo, app)
    code, output, load = push_v2_under_load(
        daemon, repo, app, SLOW_PAGE, weight=20, min_requests=40
    )
    summary = load.summary()
    assert code != 0 and "max_p95_ratio" in (rejection(output) or ""), output
    assert summary.non_2xx == 0 and summary.errors == 0, summary.failures
    step = canary_record(daemon, app, 2)["steps"][-1]
    assert step["canary"]["p95_ms"] > 3 * step["live"]["p95_ms"], step


def test_a_client_with_the_cookie_stays_on_one_release_and_a_canary_is_promoted_by_hand(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "canary-sticky", tmp_path / "repo"
    live_v1(daemon, repo, app)
    commit(repo, "v2", GOOD_PAGE, weight=50, duration=300, min_requests=1_000_000)
    pushed = push_until_its_canary(daemon, repo, app)
    url, host = f"{daemon.http_url}{PAGE}", {"Host": f"{app}.{daemon.domain}"}
    seen_by_client = []
    for _ in range(8):
        with httpx.Client(headers=host, timeout=10) as client:  # keeps its cookies
            versions = {version_of(client.get(url).text) for _ in range(15)}
        seen_by_client.append(versions)
    assert all(len(versions) == 1 for versions in seen_by_client), seen_by_client
    # At 50 %, eight clients all on one side would be 1 in 128: the split is real.
    assert {v for versions in seen_by_client for v in versions} == {"v1", "v2"}, seen_by_client

    env = daemon.cli_env()
    promoted = subprocess.run(
        [str(TEMPS_BIN), "canary", "promote", app], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    code, output = pushed()
    assert code == 0, output
    record = canary_record(daemon, app, 2)
    assert record["decision"] == "promoted" and record["reason"] == "promoted by hand"
    assert daemon.app(app)["live_release"]["number"] == 2


def test_canary_abort_by_hand_and_without_a_canary(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "canary-abort", tmp_path / "repo"
    live_v1(daemon, repo, app)
    with daemon.client() as api:
        idle = api.post(f"/api/apps/{app}/canary/abort")
    assert idle.status_code == 409 and "no canary running" in idle.text
    commit(repo, "v2", GOOD_PAGE, duration=300, min_requests=1_000_000)
    pushed = push_until_its_canary(daemon, repo, app)
    with daemon.client() as api:
        aborted = api.post(f"/api/apps/{app}/canary/abort", timeout=60)
    assert aborted.status_code == 200 and aborted.json()["state"] == "failed", aborted.text
    _code, output = pushed()
    assert "aborted by hand" in (rejection(output) or ""), output
