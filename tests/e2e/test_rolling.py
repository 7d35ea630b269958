"""End to end, issue 18 (rolling strategy): web containers replaced one at a time, each gated,
under steady load, never more than one container beyond the formation; a new container that
fails its gate puts the old ones back.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import (
    assert_no_failures,
    push_ok,
    recorded_urls,
    rejection,
    route_servers,
    start_load,
)
from tests.support.daemon import TempsDaemon
from tests.support.liveapp import app_containers

pytestmark = pytest.mark.docker

ROLLING = {"deploy": {"strategy": "rolling"}}
# The first container to ask claims the volume's one healthy place; every other one fails.
ONE_HEALTHY_CGI = """
if [ -e "/data/ok-$(hostname)" ] || mkdir /data/claim 2>/dev/null; then
  touch "/data/ok-$(hostname)"
  printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
else
  printf 'Status: 503 Unavailable\\r\\nContent-Type: text/plain\\r\\n\\r\\nnot me\\n'
fi
"""


class ContainerCount:
    """The most containers the app had at once, sampled from Docker while a deploy runs."""

    def __init__(self, app: str) -> None:
        self.app, self.most = app, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.most = max(self.most, len(app_containers(self.app)))

    def __enter__(self) -> ContainerCount:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def web3(daemon: TempsDaemon, app: str) -> None:
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.patch(f"/api/apps/{app}/formation", json={"web": 3}).status_code == 200


def test_rolling_deploys_under_load_drop_nothing_and_stay_within_one_extra(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "roller", tmp_path / "repo"
    web3(daemon, app)
    push_ok(daemon, repo, app, "v1", settings=ROLLING)
    load = start_load(daemon, app)
    try:
        with ContainerCount(app) as count:
            for number in (2, 3, 4):
                push_ok(daemon, repo, app, f"v{number}", settings=ROLLING)
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    assert count.most <= 4, f"{count.most} containers at once for web=3"
    live = daemon.app(app)["live_release"]
    assert live["number"] == 4 and len(live["slot"]["web"]) == 3
    assert sorted(route_servers(daemon, app)) == recorded_urls(live)
    assert [(r["number"], r["state"]) for r in daemon.releases(app)][:2] == [
        (4, "live"),
        (3, "retired"),
    ]


def test_a_rolling_deploy_that_fails_half_way_puts_the_old_containers_back(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "roller-back", tmp_path / "repo"
    web3(daemon, app)
    with daemon.client() as api:
        assert api.post(f"/api/apps/{app}/storage", json={"name": "d", "path": "/data"}).is_success
    push_ok(daemon, repo, app, "v1", settings=ROLLING)
    load = start_load(daemon, app)
    try:
        make_app_repo(
            repo,
            "v2",
            health_cgi=ONE_HEALTHY_CGI,
            settings={**ROLLING, "healthcheck": {"path": "/cgi-bin/health", "deadline": 3}},
        )
        code, output = git_push(repo, daemon.git_url(app))
    finally:
        summary = load.stop()
    assert code != 0 and rejection(output), output
    assert "putting back the 1 of v1 already replaced" in output, output
    assert_no_failures(summary)
    live = daemon.app(app)["live_release"]
    assert live["number"] == 1 and len(live["slot"]["web"]) == 3
    assert sorted(route_servers(daemon, app)) == recorded_urls(live)
    assert sorted(app_containers(app)) == sorted(c["container"] for c in live["slot"]["web"])
    assert daemon.get_app_page(app).text.strip() == "version v1"
