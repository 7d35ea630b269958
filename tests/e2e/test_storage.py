"""End to end, issue 18 (storage): a named volume mounted into every release of an app.

The app's `/cgi-bin/note?WORD` appends WORD to `/data/notes` and answers the whole file, so
each release can both prove what the earlier ones wrote and add its own line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.checks import push_ok
from tests.support.credentials import make_token
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import docker

pytestmark = pytest.mark.docker

NOTE_CGI = """
mkdir -p /data
echo "$QUERY_STRING" >> /data/notes
printf 'Content-Type: text/plain\\r\\n\\r\\n'
cat /data/notes
"""
RELEASE_CMD = "mkdir -p /data && echo release-phase >> /data/notes"


def storage(daemon: TempsDaemon, app: str, method: str = "GET", **body: str) -> httpx.Response:
    path = f"/api/apps/{app}/storage" + (f"/{body.pop('name')}" if method == "DELETE" else "")
    with daemon.client() as api:
        return api.request(method, path, json=body or None)


def note(daemon: TempsDaemon, app: str, word: str) -> list[str]:
    response = daemon.get_app_page(app, f"/cgi-bin/note?{word}")
    assert response.status_code == 200, response.text
    return response.text.split()


def push(daemon: TempsDaemon, repo: Path, app: str, version: str) -> None:
    push_ok(
        daemon,
        repo,
        app,
        version,
        scripts={"note": NOTE_CGI},
        settings={"deploy": {"release_command": RELEASE_CMD}},
    )


def test_data_on_a_volume_outlives_deploys_a_rollback_and_a_restart(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "vault", tmp_path / "repo"
    daemon.create_app(app)
    mounted = storage(daemon, app, "POST", name="data", path="/data")
    assert mounted.status_code == 201, mounted.text
    volume = mounted.json()["volume"]
    push(daemon, repo, app, "v1")
    assert note(daemon, app, "first") == ["release-phase", "first"]

    for number in range(2, 7):
        push(daemon, repo, app, f"v{number}")
        assert note(daemon, app, f"from-v{number}")[-1] == f"from-v{number}"
    with daemon.client() as api:
        rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=300)
    assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
    daemon.terminate()
    daemon.restart()
    notes = note(daemon, app, "after-restart")
    expected = ["first", *(f"from-v{n}" for n in range(2, 7)), "after-restart"]
    assert [n for n in notes if n != "release-phase"] == expected
    # Six pushes and the rollback (a new release of v5's image) each ran the release phase.
    assert notes.count("release-phase") == 7, "the release phase did not see the volume"

    labels = json.loads(docker("volume", "inspect", volume, "--format", "{{json .Labels}}"))
    assert (labels["temps.app"], labels["temps.home"]) == (app, str(daemon.home.resolve()))
    live = daemon.app(app)["live_release"]["container"]
    mounts = json.loads(docker("inspect", live, "--format", "{{json .Mounts}}"))
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", volume, "/data")
    ]


def test_unmounting_keeps_the_volume_and_its_data(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "vault-off", tmp_path / "repo"
    daemon.create_app(app)
    volume = storage(daemon, app, "POST", name="data", path="/data").json()["volume"]
    push(daemon, repo, app, "v1")
    assert note(daemon, app, "kept") == ["release-phase", "kept"]

    assert storage(daemon, app, "DELETE", name="data").status_code == 200
    assert storage(daemon, app).json() == []
    push(daemon, repo, app, "v2")
    assert note(daemon, app, "fresh") == ["fresh"], "the unmounted volume was still mounted"
    assert docker("volume", "ls", "-q", "--filter", f"name={volume}").split() == [volume]

    assert storage(daemon, app, "POST", name="data", path="/data").status_code == 201
    push(daemon, repo, app, "v3")
    assert note(daemon, app, "back") == ["release-phase", "kept", "release-phase", "back"]


@pytest.mark.parametrize(
    ("name", "path", "status", "reason"),
    [
        ("data", "relative/path", 400, "absolute path"),
        ("data", "/proc/x", 400, "belongs to the system"),
        ("data", "/", 400, "belongs to the system"),
        ("data", "/srv/../etc", 400, "written plainly"),
        ("Data!", "/data", 400, "invalid volume name"),
    ],
)
def test_a_bad_mount_is_refused_with_its_reason(
    temps_daemon: TempsDaemon, name: str, path: str, status: int, reason: str
) -> None:
    daemon, app = temps_daemon, "vault-bad"
    if app not in daemon.apps:
        daemon.create_app(app)
    answer = storage(daemon, app, "POST", name=name, path=path)
    assert answer.status_code == status and reason in answer.json()["detail"], answer.text
    assert storage(daemon, app).json() == []


def test_only_an_admin_mounts_and_one_name_or_path_mounts_once(
    temps_daemon: TempsDaemon,
) -> None:
    daemon, app = temps_daemon, "vault-scope"
    daemon.create_app(app)
    _id, token = make_token(daemon, "vault-deploy", app)
    url = f"{daemon.api_url}/api/apps/{app}/storage"
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(url, json={"name": "d", "path": "/d"}, headers=headers).status_code == 403
    assert storage(daemon, app, "POST", name="data", path="/data").status_code == 201
    assert storage(daemon, app, "POST", name="data", path="/other").status_code == 409
    assert storage(daemon, app, "POST", name="more", path="/data").status_code == 409
    env = daemon.cli_env()
    listed = subprocess.run(
        [str(TEMPS_BIN), "storage", "list", app],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["data", "/data"], listed
