"""The formation on the dashboard: each release's formation on the app and release pages, and
the live release's containers in the app page's Processes table.

The pure tests render the pages from views; the end-to-end one deploys web=3 on a real daemon
(real dockerd, real Traefik), kills one container and reads the pages over HTTP.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.api.formation import FormationView
from receiver.dashboard.formats import formation_label
from receiver.dashboard.pages import Frame, app_page
from receiver.dashboard.release import release_page
from receiver.dashboard.templating import render_page
from tests.support.checks import push_ok
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import docker
from tests.support.views import APP, release_view
from tests.support.wait import poll

HOSTILE = '<script>alert("x")</script>'
PROCESSES_RE = re.compile(r'<table class="table processes">(.*?)</table>', re.S)
ROW_RE = re.compile(r"<tr>(.*?)</tr>", re.S)


def container(name: str, **fields: Any) -> dict[str, Any]:
    view = {
        "process": "web",
        "container": name,
        "host_port": 40001,
        "node": "node-2",
        "release": "v3",
        "state": "running",
        "restarts": 0,
        "uptime": 185.0,
    }
    view.update(fields)
    return view


def processes_rows(page: str) -> list[str]:
    table = PROCESSES_RE.search(page)
    assert table, f"no Processes table on the page:\n{page}"
    return [row for row in ROW_RE.findall(table.group(1)) if "<td" in row]


def test_formation_label() -> None:
    assert formation_label(None) == "web=1", "a release from before formations ran one web"
    assert formation_label({}) == "web=1"
    assert formation_label({"web": 3}) == "web=3"
    assert formation_label({"worker": 1, "web": 3, "clock": 2}) == "web=3 clock=2 worker=1"


def test_app_page_shows_the_formation_of_each_release_and_the_live_containers() -> None:
    processes = FormationView.model_validate(
        {
            "app": "demo",
            "formation": {"web": 3},
            "live_release": "v3",
            "live_formation": {"web": 3},
            "processes": {
                "web": {"wanted": 3, "running": 2},
                "worker": {"wanted": 1, "running": 0, "stopped": True},
            },
            "stopped": ["worker"],
            "containers": [
                container("temps-demo-v3-a", restarts=2),
                container(HOSTILE, process=HOSTILE, state="exited", uptime=None),
            ],
        }
    )
    releases = [
        release_view(3, formation={"web": 3}),
        release_view(2, formation={"web": 2}),
        release_view(1, formation=None),
    ]
    page = render_page(Frame("t"), app_page(APP, releases, None, processes))

    assert '<dt>Formation</dt><dd><code class="formation">web=3</code></dd>' in page
    running = '<span class="running running-bad">web 2/3 · worker 0/1 stopped</span>'
    assert f"<dt>Running</dt><dd>{running}</dd>" in page, "one web container is missing"
    for number, shown in ((3, "web=3"), (2, "web=2"), (1, "web=1")):
        row = page.split(f'releases/{number}">v{number}</a>', 1)[1].split("</tr>", 1)[0]
        assert f'<td data-label="Formation"><code class="formation">{shown}</code>' in row, row

    first, second = processes_rows(page)
    for cell in (
        '<td data-label="Process">web</td>',
        '<td data-label="Container"><code>temps-demo-v3-a</code></td>',
        '<td data-label="Node">node-2</td>',
        '<span class="version">v3</span>',
        '<span class="badge badge-ok" data-state="running">running</span>',
        '<td data-label="Restarts">2</td>',
        '<td data-label="Uptime">3 min 5 s</td>',
    ):
        assert cell in first, f"{cell!r} missing from the row:\n{first}"
    assert '<span class="badge badge-bad" data-state="exited">exited</span>' in second
    assert '<td data-label="Uptime"><span class="muted">—</span></td>' in second
    assert "<script>" not in page and page.count("&lt;script&gt;") == 2


def test_app_page_lists_leaving_containers_with_the_connections_they_hold() -> None:
    processes = FormationView.model_validate(
        {
            "app": "demo",
            "formation": {"web": 1},
            "live_release": "v3",
            "live_formation": {"web": 1},
            "processes": {"web": {"wanted": 1, "running": 1}},
            "stopped": [],
            "containers": [container("temps-demo-v3-a")],
            "leaving": [
                {
                    "release": "v2",
                    "container": "temps-demo-v2-a",
                    "connections": 200,
                    "since": 1.0,
                    "handover_at": 7201.0,
                    "handing_over": False,
                },
                {
                    "release": "v1",
                    "container": "temps-demo-v1-a",
                    "connections": 1,
                    "since": 0.5,
                    "handover_at": 30.5,
                    "handing_over": True,
                },
            ],
        }
    )
    page = render_page(Frame("t"), app_page(APP, [release_view(3)], None, processes))
    table = PROCESSES_RE.search(page)
    assert table is not None
    leaving = re.findall(r'<tr class="leaving">(.*?)</tr>', table.group(1), re.S)
    assert len(leaving) == 2, table.group(1)
    assert "<code>temps-demo-v2-a</code>" in leaving[0] and "200 connections held" in leaving[0]
    assert 'data-state="leaving">leaving</span>' in leaving[0]
    assert "1 connection held" in leaving[1]
    assert 'data-state="leaving">handing over</span>' in leaving[1]


def test_app_page_without_live_containers_or_without_docker() -> None:
    idle = FormationView(
        app="demo",
        formation={"web": 1},
        live_release=None,
        live_formation=None,
        processes=None,
        stopped=[],
        containers=[],
    )
    page = render_page(Frame("t"), app_page(APP, [], None, idle))
    assert "<h2>Processes</h2>" in page and "No containers: nothing is live." in page
    assert '<code class="formation">web=1</code>' in page

    trouble = "Docker engine unavailable while trying to inspect a container"
    down = render_page(Frame("t"), app_page(APP, [], None, None, trouble))
    assert "<h2>Processes</h2>" in down and trouble in down
    assert '<dt>Formation</dt><dd><span class="muted">—</span></dd>' in down
    assert '<dt>Running</dt><dd><span class="muted">—</span></dd>' in down


def test_release_page_shows_the_release_formation() -> None:
    for formation, shown in (({"web": 3}, "web=3"), (None, "web=1")):
        body = release_page(
            APP, release_view(3, formation=formation), [], 0, following=False, now=time.time()
        )
        page = render_page(Frame("t"), body)
        assert f'<dt>Formation</dt><dd><code class="formation">{shown}</code></dd>' in page


# --- against a real daemon -----------------------------------------------------------------------


@pytest.mark.docker
def test_app_and_release_pages_show_a_live_web_3_release(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "dash-trio"
    daemon.create_app(app)
    with daemon.client() as api:
        scaled = api.patch(f"/api/apps/{app}/formation", json={"web": 3}, timeout=120)
    assert scaled.status_code == 200, scaled.text
    push_ok(daemon, tmp_path / "repo", app, "v1")

    with httpx.Client(base_url=daemon.api_url, timeout=30) as dashboard:
        signed_in = dashboard.post(
            "/dashboard/login", data={"token": daemon.admin_token, "next": "/dashboard"}
        )
        assert signed_in.status_code == 303, signed_in.text

        page = dashboard.get(f"/dashboard/apps/{app}")
        assert page.status_code == 200, page.text
        assert '<dt>Formation</dt><dd><code class="formation">web=3</code></dd>' in page.text
        assert '<td data-label="Formation"><code class="formation">web=3</code>' in page.text
        rows = processes_rows(page.text)
        names = [c["container"] for c in live_formation(daemon, app)["containers"]]
        assert len(rows) == len(names) == 3, rows
        for row, name in zip(rows, names, strict=True):
            assert f"<code>{name}</code>" in row, f"{name} missing from the row:\n{row}"
            assert '<td data-label="Process">web</td>' in row
            assert '<span class="version">v1</span>' in row and 'data-state="running"' in row
            assert re.search(r'<td data-label="Uptime">[\d.]+ s</td>', row), row

        # The table reads Docker, not the release's record: a killed container is started
        # again by the supervisor, a new container under the same name, up for a moment.
        killed = names[1]
        before = live_formation(daemon, app)["containers"][1]["uptime"]
        docker("kill", killed)
        poll(
            lambda: live_formation(daemon, app)["containers"][1],
            lambda seen: seen["state"] == "running" and seen["uptime"] < before,
            timeout=30,
        )
        page = dashboard.get(f"/dashboard/apps/{app}").text
        row = processes_rows(page)[1]
        assert f"<code>{killed}</code>" in row and 'data-state="running"' in row, row
        assert '<dt>Running</dt><dd><span class="running running-ok">web 3/3</span>' in page

        shown = dashboard.get(f"/dashboard/apps/{app}/releases/1")
        assert shown.status_code == 200, shown.text
        assert '<dt>Formation</dt><dd><code class="formation">web=3</code></dd>' in shown.text


def live_formation(daemon: TempsDaemon, app: str) -> dict[str, Any]:
    with daemon.client() as api:
        answer = api.get(f"/api/apps/{app}/formation")
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body
