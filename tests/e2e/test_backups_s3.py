"""End to end, backups to an S3-compatible bucket: a daemon with `--backup-s3-url` pointed at
moto in server mode on loopback, its keys given with `temps backup s3-login` (sealed into
the home, never in it in clear); an app's 200 MB volume backed up there and verified by a
restore into scratch; one byte changed in the stored archive fails `temps backup verify`;
a restore from the bucket brings the files back; a records backup lands there too."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.e2e.test_backups import FILL, WAIT, call, volume_sums
from tests.support.checks import push_ok
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import docker
from tests.support.ports import free_port

pytestmark = pytest.mark.docker

S3_PORT = free_port()
S3_URL = f"http://127.0.0.1:{S3_PORT}"
BUCKET = "temps-backups"
KEYS = ("e2e-access", "e2e-secret-key")
TEMPS_SERVE_ARGS = ["--backup-s3-url", S3_URL, "--backup-s3-bucket", BUCKET]
APP = "bucketed"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    client = boto3.client(
        "s3", endpoint_url=S3_URL, aws_access_key_id=KEYS[0],
        aws_secret_access_key=KEYS[1], region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def temps(daemon: TempsDaemon, *words: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TEMPS_BIN), *words],
        env=daemon.cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_a_volume_is_backed_up_to_the_bucket_verified_and_restored(
    s3: Any, temps_daemon: TempsDaemon, tmp_path: Path, busybox_image: str
) -> None:
    daemon = temps_daemon
    daemon.create_app(APP)
    mounted = call(daemon, "POST", f"/api/apps/{APP}/storage", name="data", path="/data")
    assert mounted.status_code == 201, mounted.text
    volume = mounted.json()["volume"]
    settings = {"deploy": {"release_command": FILL, "release_timeout": 600}}
    push_ok(daemon, tmp_path / "repo", APP, "v1", settings=settings)

    refused = temps(daemon, "backup", "create", APP)
    assert refused.returncode == 1 and "s3-login" in refused.stderr, refused
    login = temps(daemon, "backup", "s3-login", KEYS[0], stdin=KEYS[1] + "\n")
    assert login.returncode == 0, login
    sealed = (daemon.home / "backup-s3.sealed").read_text()
    assert KEYS[1] not in sealed and sealed.startswith("sealed:")
    assert (daemon.home / "backup-s3.sealed").stat().st_mode & 0o777 == 0o600

    made = temps(daemon, "backup", "create", APP)
    assert made.returncode == 0, made
    backup = call(daemon, "GET", f"/api/apps/{APP}/backups").json()[0]
    assert backup["state"] == "good" and backup["verification"] == "ok", backup
    assert backup["destination"].startswith(f"s3://{BUCKET}")
    key = f"{APP}/{backup['id']}/data.tar"
    stored = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    assert stored > 200 * 1024 * 1024
    expected = volume_sums(busybox_image, volume)

    docker("run", "--rm", "-v", f"{volume}:/data", busybox_image, "rm", "-rf", "/data/sub")
    restored = temps(daemon, "backup", "restore", APP, str(backup["id"]))
    assert restored.returncode == 0, restored
    assert volume_sums(busybox_image, volume) == expected
    assert daemon.get_app_page(APP).status_code == 200

    data = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 3] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    verified = temps(daemon, "backup", "verify", APP, str(backup["id"]))
    assert verified.returncode == 1 and "sha256" in verified.stderr, verified

    records = temps(daemon, "backup", "create", "--records")
    assert records.returncode == 0, records
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="_records/")["Contents"]
    assert {item["Key"].rsplit("/", 1)[-1] for item in listed} == {"temps.db", "manifest.json"}
