"""The traffic report stored on each release, and the daemon's /metrics, against real traffic.

The report is read from Traefik's own access log; these tests check it against what the
test itself sent through Traefik during the switch window.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apprepo import git_push, make_app_repo
from tests.support.daemon import TempsDaemon
from tests.support.load import LoadGenerator, SlowRequest
from tests.support.wait import poll

pytestmark = pytest.mark.docker


def release(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    with daemon.client() as client:
        response = client.get(f"/api/apps/{app}/releases/{number}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def event_at(found: dict[str, Any], state: str) -> float:
    return next(e["at"] for e in found["events"] if e["state"] == state)


def push(daemon: TempsDaemon, repo: Path, app: str, version: str, **opts: Any) -> tuple[int, str]:
    make_app_repo(repo, version, **opts)
    return git_push(repo, daemon.git_url(app))


def test_report_counts_the_load_sent_during_the_switch(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "traffic"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    assert push(temps_daemon, repo, app, "v1")[0] == 0
    wall_start = time.time()
    with LoadGenerator(temps_daemon.http_url, f"{app}.localhost", rate=150) as load:
        time.sleep(1.0)
        code, output = push(temps_daemon, repo, app, "v2")
        time.sleep(0.5)
        summary = load.stop()
    assert code == 0, output
    assert summary.non_2xx == 0 and summary.errors == 0, summary.line()
    found = release(temps_daemon, app, 2)
    report = found["traffic"]
    assert report is not None, "the release has no traffic report"
    start = event_at(found, "switching")
    end = start + report["window_seconds"]
    sent = [o for o in load.outcomes() if start <= wall_start + o.at <= end]
    # The daemon's own confirmation probes go through Traefik too: a handful at most.
    assert report["errors"] == 0
    assert abs(report["requests"] - len(sent)) <= max(5, len(sent) // 10), (report, len(sent))
    assert "errors in" in output and "requests during the switch" in output


def test_errors_the_test_causes_during_a_switch_are_reported(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "traffic-errors"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    assert push(temps_daemon, repo, app, "v1")[0] == 0
    code, _ = push(temps_daemon, repo, app, "v2", health=False)
    assert code != 0, "a release without a health path must be rejected"
    # The fixed release: a slow request on v1 keeps the drain open for ~5 s, and during it
    # the test sends requests it knows fail (404 from the app) straight at Traefik.
    slow = SlowRequest(temps_daemon.http_url, f"{app}.localhost").start()
    time.sleep(0.5)
    bad_requests = 12
    sent_bad = threading.Event()

    def cause_errors() -> None:
        state = poll(
            lambda: release(temps_daemon, app, 3)["state"] if _exists(3) else "none",
            lambda value: value in ("draining", "live", "failed"),
            timeout=60,
            interval=0.05,
        )
        assert state == "draining", f"v3 never seen draining (last: {state})"
        for _ in range(bad_requests):
            response = temps_daemon.get_app_page(app, "/no-such-page")
            assert response.status_code == 404
        sent_bad.set()

    def _exists(number: int) -> bool:
        return any(r["number"] == number for r in temps_daemon.releases(app))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        errors = pool.submit(cause_errors)
        code, output = push(temps_daemon, repo, app, "v3")
        errors.result(timeout=60)
    assert code == 0, output
    assert sent_bad.is_set()
    assert slow.result().status == 200
    report = release(temps_daemon, app, 3)["traffic"]
    assert report["errors"] == bad_requests, report
    assert report["requests"] >= bad_requests + 1


def metric_samples(daemon: TempsDaemon) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{daemon.api_url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_parse_and_move_with_deploys(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "metered"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    live_key = ("temps_deploys_total", (("app", app), ("outcome", "live")))
    failed_key = ("temps_deploys_total", (("app", app), ("outcome", "failed")))
    probes_key = ("temps_health_probes_total", (("result", "pass"),))
    before = metric_samples(temps_daemon)
    assert before[("temps_traefik_up", ())] == 1
    assert push(temps_daemon, repo, app, "v1")[0] == 0
    after_live = metric_samples(temps_daemon)
    assert after_live[live_key] == before.get(live_key, 0) + 1
    assert after_live[probes_key] >= before.get(probes_key, 0) + 3
    assert after_live[("temps_switch_seconds_count", ())] >= 1
    assert push(temps_daemon, repo, app, "v2", health=False)[0] != 0
    after_failed = metric_samples(temps_daemon)
    assert after_failed[failed_key] == before.get(failed_key, 0) + 1
    assert after_failed[live_key] == after_live[live_key]
    step = ("temps_deploy_step_seconds_count", (("step", "health_checking"),))
    assert after_failed[step] >= after_live[step] + 1
