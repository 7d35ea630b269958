"""End to end, backups that count only once restored: an app whose release phase writes
200 MB of files into its volume is backed up to the daemon's backup directory while another
app serves steady load (0 non-2xx); the manifest's checksums are the files' own and the
verification is recorded; one byte changed in a stored archive fails `temps backup verify`;
a restore after files were deleted brings every file back exactly and the app serves again;
a records backup restored into a new home gives a daemon listing the same apps and releases.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.checks import assert_no_failures, push_ok, under_load
from tests.support.daemon import TEMPS_BIN, TempsDaemon, running_daemon
from tests.support.dockercli import docker

pytestmark = pytest.mark.docker

APP, STEADY = "keeper", "steady"
PARTS, PART_MB = 4, 50  # 200 MB written by the app's release phase
FILL = (
    "mkdir -p /data/sub /data/empty && echo hidden > /data/.hidden && ln -sf sub/part-1 "
    f"/data/latest && for i in $(seq 1 {PARTS}); do [ -f /data/sub/part-$i ] || "
    f"head -c {PART_MB * 1024 * 1024} /dev/urandom > /data/sub/part-$i; done"
)
DUMP = "date +%s%N > /data/dump.txt"  # the [backup] command: a stand-in for pg_dump
WAIT = 900.0  # a 200 MB backup, and its verification, on a busy machine


def call(daemon: TempsDaemon, method: str, url: str, /, **body: Any) -> httpx.Response:
    with daemon.client() as api:
        return api.request(method, url, json=body or None, timeout=WAIT)


def volume_sums(image: str, volume: str) -> dict[str, str]:
    """sha256 of every regular file in the volume, by its path inside it."""
    out = docker(
        "run", "--rm", "-v", f"{volume}:/data", image,
        "sh", "-c", "cd /data && find . -type f -exec sha256sum {} +",
        timeout=600,
    )  # fmt: skip
    sums = {}
    for line in out.splitlines():
        digest, path = line.split(maxsplit=1)
        sums[path.removeprefix("./")] = digest
    return sums


def manifest_of(daemon: TempsDaemon, backup: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (daemon.home / "backups" / backup["manifest"]).read_text()
    )
    return document


def temps(daemon: TempsDaemon, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TEMPS_BIN), *words],
        env=daemon.cli_env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.fixture(scope="module")
def deployed(temps_daemon: TempsDaemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app, its volume filled by its release phase; and the steady app. Its volume."""
    daemon = temps_daemon
    for name in (APP, STEADY):
        daemon.create_app(name)
    mounted = call(daemon, "POST", f"/api/apps/{APP}/storage", name="data", path="/data")
    assert mounted.status_code == 201, mounted.text
    settings = {"deploy": {"release_command": FILL, "release_timeout": 600}}
    push_ok(
        daemon,
        tmp_path_factory.mktemp("keeper-repo"),
        APP,
        "v1",
        settings={**settings, "backup": {"command": DUMP, "timeout": 60}},
    )
    push_ok(daemon, tmp_path_factory.mktemp("steady-repo"), STEADY, "v1")
    return str(mounted.json()["volume"])


@pytest.fixture(scope="module")
def good_backup(temps_daemon: TempsDaemon, deployed: str) -> dict[str, Any]:
    """A backup of the 200 MB volume, made while the steady app serves load."""
    with under_load(temps_daemon, STEADY) as load:
        made = call(temps_daemon, "POST", f"/api/apps/{APP}/backups")
    assert made.status_code == 201, made.text
    assert_no_failures(load.summary())
    backup: dict[str, Any] = made.json()
    return backup


def test_a_backup_is_good_only_once_verified_and_its_manifest_holds_the_files_sums(
    temps_daemon: TempsDaemon, deployed: str, good_backup: dict[str, Any], busybox_image: str
) -> None:
    backup = good_backup
    assert backup["state"] == "good", backup
    assert backup["verification"] == "ok" and backup["verified_at"] is not None
    assert backup["size"] > PARTS * PART_MB * 1024 * 1024
    manifest = manifest_of(temps_daemon, backup)
    assert (manifest["kind"], manifest["app"], manifest["dump_command"]) == ("volumes", APP, DUMP)
    (volume,) = manifest["volumes"]
    assert (volume["name"], volume["volume"], volume["path"]) == ("data", deployed, "/data")
    files = {path: entry for path, entry in volume["files"].items()}
    assert files["empty"] == "dir" and files["latest"] == "link:sub/part-1"
    regular = {p: e for p, e in files.items() if e != "dir" and not e.startswith("link:")}
    assert regular == volume_sums(busybox_image, deployed)
    assert {"dump.txt", ".hidden", *(f"sub/part-{i}" for i in range(1, PARTS + 1))} <= set(regular)
    listed = temps(temps_daemon, "backup", "list", APP)
    assert listed.returncode == 0 and f"{backup['id']}" in listed.stdout, listed
    assert "good" in listed.stdout


def test_one_byte_changed_in_a_stored_archive_fails_verify(
    temps_daemon: TempsDaemon, deployed: str
) -> None:
    made = temps(temps_daemon, "backup", "create", APP)
    assert made.returncode == 0, made
    backup = call(temps_daemon, "GET", f"/api/apps/{APP}/backups").json()[0]
    assert backup["state"] == "good", backup
    archive = temps_daemon.home / "backups" / APP / str(backup["id"]) / "data.tar"
    with archive.open("r+b") as stored:
        stored.seek(archive.stat().st_size // 2)
        byte = stored.read(1)
        stored.seek(-1, 1)
        stored.write(bytes([byte[0] ^ 0x01]))
    verified = temps(temps_daemon, "backup", "verify", APP, str(backup["id"]))
    assert verified.returncode == 1, verified
    assert "FAILED" in verified.stderr and "sha256" in verified.stderr
    again = call(temps_daemon, "GET", f"/api/apps/{APP}/backups").json()[0]
    assert again["state"] == "failed" and "sha256" in again["verification"], again
    refused = call(temps_daemon, "POST", f"/api/apps/{APP}/backups/{backup['id']}/restore")
    assert refused.status_code == 409, refused.text


def test_a_restore_brings_every_file_back_and_the_app_serves(
    temps_daemon: TempsDaemon, deployed: str, good_backup: dict[str, Any], busybox_image: str
) -> None:
    manifest = manifest_of(temps_daemon, good_backup)
    expected = {
        p: e
        for p, e in manifest["volumes"][0]["files"].items()
        if e != "dir" and not e.startswith("link:")
    }
    docker(
        "run", "--rm", "-v", f"{deployed}:/data", busybox_image,
        "sh", "-c", "rm -rf /data/sub/part-2 /data/.hidden && echo stray > /data/stray",
    )  # fmt: skip
    assert volume_sums(busybox_image, deployed) != expected
    restored = temps(temps_daemon, "backup", "restore", APP, str(good_backup["id"]))
    assert restored.returncode == 0, restored
    assert volume_sums(busybox_image, deployed) == expected
    listing = docker("run", "--rm", "-v", f"{deployed}:/data", busybox_image, "readlink",
                     "/data/latest")  # fmt: skip
    assert listing.strip() == "sub/part-1"
    assert not call(temps_daemon, "GET", f"/api/apps/{APP}/maintenance").json()["on"]
    assert temps_daemon.get_app_page(APP).status_code == 200

    stopped = temps(temps_daemon, "backup", "restore", APP, str(good_backup["id"]), "--stop")
    assert stopped.returncode == 0 and "(stopped)" in stopped.stdout, stopped
    assert volume_sums(busybox_image, deployed) == expected
    serving = [temps_daemon.get_app_page(APP, timeout=30).status_code for _ in range(1)]
    assert serving == [200]


def test_a_records_backup_rebuilds_a_home_that_serves_the_same_apps_and_releases(
    temps_daemon: TempsDaemon, deployed: str, tmp_path: Path
) -> None:
    made = temps(temps_daemon, "backup", "create", "--records")
    assert made.returncode == 0, made
    backup = call(temps_daemon, "GET", "/api/backups/records").json()[0]
    assert backup["state"] == "good" and backup["verification"] == "ok", backup
    folder = temps_daemon.home / "backups" / "_records" / str(backup["id"])
    new_home = tmp_path / "new-home"
    rebuilt = subprocess.run(
        [str(TEMPS_BIN), "restore-home", str(folder), "--home", str(new_home),
         "--key", str(temps_daemon.home / "secret.key")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt
    apps_before = {a["name"] for a in call(temps_daemon, "GET", "/api/apps").json()}
    config_before = call(temps_daemon, "GET", f"/api/apps/{APP}/config").json()
    releases_before = {name: temps_daemon.releases(name) for name in apps_before}
    # A home is rebuilt where the old one is gone: both on one engine would name the same
    # containers (the home's id comes with its records) and each would put back what the
    # other replaced. The old daemon stops; its containers stay, for the new one to find.
    temps_daemon.terminate()
    with (
        running_daemon(new_home, "backups-restored-home") as restored,
        restored.client() as api,
    ):
        apps_after = {a["name"] for a in api.get("/api/apps").json()}
        releases_after = {name: api.get(f"/api/apps/{name}/releases").json() for name in apps_after}
        config = api.get(f"/api/apps/{APP}/config").json()
        # Reconciled at its start: the live releases' containers run again, behind its Traefik.
        served = {name: served_by(restored, name) for name in sorted(apps_after)}
    assert all(served.values()), served
    assert apps_after == apps_before == {APP, STEADY}
    for name in apps_before:
        before = [(r["version"], r["commit"]) for r in releases_before[name]]
        after = [(r["version"], r["commit"]) for r in releases_after[name]]
        assert before[: len(after)] == after and len(after) == len(before), name
    assert config == config_before


def served_by(daemon: TempsDaemon, app: str, deadline: float = 120.0) -> bool:
    """Whether the app answers 200 through the daemon's Traefik within `deadline` seconds."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        try:
            if daemon.get_app_page(app).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False
