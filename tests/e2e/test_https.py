"""End to end, issue 17: HTTPS with certificates from a real ACME server.

The CA is Debian's `pebble` (RFC 8555), started on loopback with its own mock DNS answering
every name with 127.0.0.1, validating HTTP-01 on the daemon's web entrypoint and TLS-ALPN-01
on its websecure one. Its certificates live 1,230 s and the daemon's Traefik is told they
last an hour: it renews below 20 minutes left, checking every minute, so renewals happen
while the tests run. A chain is verified with `curl --cacert <pebble's root>`, never `-k`.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect

from tests.support.acme import Pebble
from tests.support.apprepo import make_app_repo, run_git
from tests.support.checks import assert_no_failures, push_ok, remote_lines
from tests.support.daemon import ARTIFACTS, TempsDaemon, free_port
from tests.support.liveapp import deploy_v1
from tests.support.load import LoadGenerator
from tests.support.sink import NotificationSink
from tests.support.wait import poll

pytestmark = pytest.mark.docker

DOMAIN = "apps.test"
CONTROL = "temps.shop.test"
VALIDITY_SECONDS = 1230
ISSUE_TIMEOUT = 60.0
RENEWAL_TIMEOUT = 150.0
RETRY_SECONDS = 15  # the refused-order test pushes within it; the retry test waits it out
DEPLOYS = 10


@dataclass
class Secure:
    daemon: TempsDaemon
    pebble: Pebble
    roots: Path  # pebble's root and intermediate, for --cacert

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.roots))


@pytest.fixture(scope="module")
def secure(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    daemon = TempsDaemon(
        home=tmp_path_factory.mktemp("home-https"),
        domain=DOMAIN,
        https_port=free_port(),
        extra_args=["--acme-email", "ops@shop.test", "--acme-cert-hours", "1"],
    )
    daemon.extra_args += ["--acme-retry-seconds", str(RETRY_SECONDS), "--auth-failures", "100000"]
    daemon.extra_args += ["--control-host", CONTROL]
    assert daemon.https_port is not None
    pebble = Pebble(
        http_port=daemon.http_port,
        tls_port=daemon.https_port,
        blocked=["blocked.test"],
        validity_seconds=VALIDITY_SECONDS,
    ).start()
    try:
        daemon.extra_args += ["--acme-ca", pebble.directory_url]
        daemon.env = {"LEGO_CA_CERTIFICATES": str(pebble.ca_pem)}
        daemon.start()
        yield Secure(daemon, pebble, pebble.fetch_roots())
    finally:
        daemon.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        for name, path in (("daemon", daemon.log_path), ("traefik", traefik_log(daemon))):
            if path.exists():
                (ARTIFACTS / f"test-e2e-https-{name}.log").write_bytes(path.read_bytes())
        pebble.stop()


def traefik_log(daemon: TempsDaemon) -> Path:
    return daemon.home / "traefik" / "traefik.log"


def domains(daemon: TempsDaemon, app: str, method: str = "GET", **body: Any) -> httpx.Response:
    path = f"/api/apps/{app}/domains" + (f"/{body.pop('host')}" if method == "DELETE" else "")
    with daemon.client() as api:
        return api.request(method, path, json=body or None)


def certificate(daemon: TempsDaemon, app: str, host: str) -> dict[str, Any]:
    hosts = {entry["host"]: entry for entry in domains(daemon, app).json()["hosts"]}
    found: dict[str, Any] = hosts[host]["certificate"]
    return found


def wait_certificate(
    daemon: TempsDaemon, app: str, host: str, state: str, timeout: float = ISSUE_TIMEOUT
) -> dict[str, Any]:
    seen = poll(
        lambda: certificate(daemon, app, host),
        lambda cert: cert["state"] == state,
        timeout=timeout,
        interval=0.25,
    )
    assert seen["state"] == state, f"certificate of {host}: {seen}, expected {state}"
    return seen


def curl(
    secure: Secure, host: str, *args: str, path: str = "/", ca: Path | None = None
) -> tuple[int, str]:
    """`curl --cacert <pebble roots>` to `https://host:port/` on loopback: (exit code, output)."""
    port = secure.daemon.https_port
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(ca or secure.roots),
         "--resolve", f"{host}:{port}:127.0.0.1", *args, f"https://{host}:{port}{path}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def served_certificate(secure: Secure, host: str) -> x509.Certificate:
    """The certificate the websecure entrypoint presents for `host`, checked against pebble."""
    assert secure.daemon.https_port is not None
    address = ("127.0.0.1", secure.daemon.https_port)
    with (
        socket.create_connection(address, timeout=10) as raw,
        secure.context().wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def plain(daemon: TempsDaemon, host: str) -> httpx.Response:
    return httpx.get(f"{daemon.http_url}/", headers={"Host": host}, timeout=10)


def refusals_of(daemon: TempsDaemon, host: str) -> int:
    count = 0
    for line in traefik_log(daemon).read_text(errors="replace").splitlines():
        if "Unable to obtain ACME certificate" in line and host in json.loads(line)["domains"]:
            count += 1
    return count


def test_an_added_domain_gets_a_certificate_that_verifies_and_http_redirects(
    secure: Secure, tmp_path: Path
) -> None:
    daemon, app = secure.daemon, "shop"
    deploy_v1(daemon, tmp_path / "repo", app)
    assert domains(daemon, app, "POST", host="www.shop.test").status_code == 201
    issued = wait_certificate(daemon, app, "www.shop.test", "issued")
    wait_certificate(daemon, app, f"{app}.{DOMAIN}", "issued")

    for host in ("www.shop.test", f"{app}.{DOMAIN}"):
        code, output = curl(secure, host, "-i")
        assert code == 0, f"curl --cacert to {host}: {output}"
        assert output.startswith(("HTTP/2 200", "HTTP/1.1 200")) and "version v1" in output, output
        assert "x-temps-release: v1" in output.lower()
    served = served_certificate(secure, "www.shop.test")
    assert served.not_valid_after_utc.timestamp() == issued["expires_at"]
    assert issued["source"] == "acme" and issued["reason"] is None

    # Once issued, plain HTTP answers a permanent redirect to the same URL over HTTPS.
    redirect = poll(
        lambda: plain(daemon, "www.shop.test"), lambda r: r.status_code == 301, timeout=10
    )
    assert redirect.status_code == 301
    location = redirect.headers["location"]
    assert location == f"https://www.shop.test:{daemon.https_port}/"
    store = daemon.home / "traefik" / "acme.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_a_preview_gets_its_own_certificate(secure: Secure, tmp_path: Path) -> None:
    daemon, app, repo = secure.daemon, "review", tmp_path / "review"
    previews_on = {"preview": {"enabled": True}}
    deploy_v1(daemon, repo, app, settings=previews_on)
    run_git(repo, "checkout", "-q", "-b", "Feature/Cart")
    make_app_repo(repo, "v42", settings=previews_on)
    code, output = run_git(repo, "push", daemon.git_url(app), "Feature/Cart:Feature/Cart")
    assert code == 0, output
    preview = "feature-cart--review"
    host = f"{preview}.{DOMAIN}"
    assert f"http://{host}" in output, output

    issued = wait_certificate(daemon, preview, host, "issued")
    assert issued["source"] == "acme"
    code, output = curl(secure, host, "-i")
    assert code == 0, f"curl --cacert to {host}: {output}"
    assert output.startswith(("HTTP/2 200", "HTTP/1.1 200")) and "version v42" in output, output


def test_a_refused_order_is_reported_and_the_host_keeps_plain_http(
    secure: Secure, tmp_path: Path
) -> None:
    daemon, app = secure.daemon, "refused"
    repo = tmp_path / "repo"
    deploy_v1(daemon, repo, app)
    with NotificationSink() as sink:
        with daemon.client() as api:
            assert api.put(f"/api/apps/{app}/notifications", json={"url": sink.url}).is_success
        assert domains(daemon, app, "POST", host="blocked.test").status_code == 201
        failed = wait_certificate(daemon, app, "blocked.test", "failed")
        told = sink.wait_for(lambda item: item.json()["event"] == "certificate_failed", 30)
    assert failed["reason"].startswith("rejectedIdentifier: "), failed
    assert "forbidden by policy" in failed["reason"]
    assert told is not None, "no certificate_failed notification"
    assert told.json()["host"] == "blocked.test" and told.json()["reason"] == failed["reason"]

    answer = plain(daemon, "blocked.test")
    assert (answer.status_code, answer.headers["x-temps-release"]) == (200, "v1")
    # Until its retry is due its router orders no more: a reload (this deploy's switch) sends
    # the CA nothing new.
    assert failed["retry_at"] - time.time() > RETRY_SECONDS / 2, "too late to see it wait"
    with httpx.Client(base_url=f"http://127.0.0.1:{daemon.traefik_api_port}") as api:
        router = api.get("/api/http/routers/refused_tls_blocked_test@file").json()
    assert "certResolver" not in router["tls"], router
    before = refusals_of(daemon, "blocked.test")
    push_ok(daemon, repo, app, "v2")
    time.sleep(1.0)
    assert refusals_of(daemon, "blocked.test") == before
    assert plain(daemon, "blocked.test").headers["x-temps-release"] == "v2"


def test_a_failed_validation_is_ordered_again_after_the_retry_delay(
    secure: Secure, tmp_path: Path
) -> None:
    daemon, app, host = secure.daemon, "late", "late.shop.test"
    deploy_v1(daemon, tmp_path / "repo", app)
    secure.pebble.fail_validation(host)
    assert domains(daemon, app, "POST", host=host).status_code == 201
    failed = wait_certificate(daemon, app, host, "failed")
    # The CA's words: it could not resolve the name (the mock DNS answers SERVFAIL).
    assert "resolve" in failed["reason"] and host in failed["reason"], failed
    assert failed["retry_at"] > time.time() - RETRY_SECONDS
    secure.pebble.fail_validation(host, fail=False)  # the DNS is fixed
    wait_certificate(daemon, app, host, "issued", timeout=ISSUE_TIMEOUT + RETRY_SECONDS)
    code, output = curl(secure, host)
    assert code == 0 and "version v1" in output, output


def test_https_load_through_deploys_a_rollback_domain_changes_and_a_renewal(
    secure: Secure, tmp_path: Path
) -> None:
    daemon, app, host = secure.daemon, "busy", "www.busy.test"
    repo = tmp_path / "repo"
    deploy_v1(daemon, repo, app)
    assert domains(daemon, app, "POST", host=host).status_code == 201
    first = wait_certificate(daemon, app, host, "issued")
    wait_certificate(daemon, app, f"{app}.{DOMAIN}", "issued")
    first_serial = served_certificate(secure, host).serial_number

    loads = [
        LoadGenerator(daemon.https_url, name, rate=80, max_seconds=300, verify=secure.context())
        for name in (host, f"{app}.{DOMAIN}")
    ]
    with loads[0], loads[1]:
        for number in range(2, DEPLOYS + 2):
            push_ok(daemon, repo, app, f"v{number}")
        with daemon.client() as api:
            rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=300)
        assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
        assert domains(daemon, app, "POST", host="extra.busy.test").status_code == 201
        wait_certificate(daemon, app, "extra.busy.test", "issued")
        assert domains(daemon, app, "DELETE", host="extra.busy.test").status_code == 200
        renewed = poll(
            lambda: certificate(daemon, app, host),
            lambda cert: cert["expires_at"] != first["expires_at"],
            timeout=RENEWAL_TIMEOUT,
            interval=1.0,
        )
    summaries = [load.summary() for load in loads]
    for summary in summaries:
        assert_no_failures(summary)
    assert renewed["expires_at"] > first["expires_at"], "no renewal while the load ran"
    assert served_certificate(secure, host).serial_number != first_serial


def test_the_acme_store_is_kept_private(secure: Secure) -> None:
    store = secure.daemon.home / "traefik" / "acme.json"
    entries = json.loads(store.read_bytes())["acme"]["Certificates"]
    assert entries, "no certificate stored"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert os.stat(store).st_uid == os.getuid()


def test_hsts_and_the_redirect_are_the_apps_choice(secure: Secure, tmp_path: Path) -> None:
    daemon, app, host = secure.daemon, "strict", "www.strict.test"
    deploy_v1(daemon, tmp_path / "repo", app)
    assert domains(daemon, app, "POST", host=host).status_code == 201
    wait_certificate(daemon, app, host, "issued")
    poll(lambda: plain(daemon, host), lambda r: r.status_code == 301, timeout=10)

    with daemon.client() as api:
        answer = api.patch(f"/api/apps/{app}/https", json={"hsts_seconds": 31536000})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["redirect"], answer.json()["hsts_seconds"]) == (True, 31536000)
        code, output = curl(secure, host, "-i")
        assert code == 0 and "strict-transport-security: max-age=31536000" in output.lower()
        assert plain(daemon, host).status_code == 301

        answer = api.patch(f"/api/apps/{app}/https", json={"redirect": False, "hsts_seconds": 0})
        assert answer.status_code == 200, answer.text
        served = plain(daemon, host)
        assert (served.status_code, served.headers["x-temps-release"]) == (200, "v1")
        code, output = curl(secure, host, "-i")
        assert code == 0 and "strict-transport-security" not in output.lower()
        refused = api.patch(f"/api/apps/{app}/https", json={"hsts_seconds": -1})
        assert refused.status_code == 422


def own_certificate(
    directory: Path, host: str, *, days: int = 30, also: tuple[str, ...] = ()
) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate for `host` (and the names `also`) it signed:
    (ca, chain, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "own test CA")])
    host_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])

    def signed(
        subject: x509.Name, public: ec.EllipticCurvePublicKey, until: int
    ) -> x509.Certificate:
        builder = x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=subject,
            public_key=public,
            serial_number=x509.random_serial_number(),
            not_valid_before=now - datetime.timedelta(days=2),
            not_valid_after=now + datetime.timedelta(days=until),
        )
        if subject == ca_name:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in (host, *also)]),
                False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    ca, leaf = signed(ca_name, ca_key.public_key(), 60), signed(host_name, key.public_key(), days)
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "chain.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def put_certificate(daemon: TempsDaemon, host: str, chain: Path, key: Path) -> httpx.Response:
    body = {"certificate": chain.read_text(), "key": key.read_text()}
    with daemon.client() as api:
        return api.put(f"/api/certificates/{host}", json=body)


def test_an_uploaded_certificate_is_served_instead_of_the_cas(
    secure: Secure, tmp_path: Path
) -> None:
    daemon, app, host = secure.daemon, "own", "own.shop.test"
    deploy_v1(daemon, tmp_path / "repo", app)
    assert domains(daemon, app, "POST", host=host).status_code == 201
    # The CA's certificate first, as a user who replaces it finds it: no order of it is still
    # under way when the upload comes (one that lands after it is served until a reload).
    wait_certificate(daemon, app, host, "issued")
    # Named as a bought certificate often is, the host and its www: Traefik serves, among the
    # certificates naming a host, the one whose sorted names sort last, and picks at random
    # between two with the same names (the CA's holds only the host).
    ca, chain, key = own_certificate(tmp_path, host, also=(f"www.{host}",))
    for name in ("other", "old"):
        (tmp_path / name).mkdir()
    _other_ca, other_chain, other_key = own_certificate(tmp_path / "other", "other.shop.test")
    _old_ca, old_chain, old_key = own_certificate(tmp_path / "old", host, days=-1)

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("garbage")
    refusals = {
        "the key does not belong": (chain, other_key),
        "does not name own.shop.test": (other_chain, other_key),
        "expired": (old_chain, old_key),
        "not a PEM certificate": (garbage, key),
        "not an unencrypted PEM private key": (chain, garbage),
    }
    for reason, (given_chain, given_key) in refusals.items():
        answer = put_certificate(daemon, host, given_chain, given_key)
        assert answer.status_code == 400 and reason in answer.json()["detail"], answer.text
    assert put_certificate(daemon, "nobody.shop.test", chain, key).status_code == 404

    answer = put_certificate(daemon, host, chain, key)
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert (record["source"], record["state"]) == ("upload", "issued")
    # Answered once Traefik served it after the upload's last change of its configuration.
    for _ in range(3):
        code, output = curl(secure, host, ca=ca)
        assert code == 0 and "version v1" in output, output
    assert certificate(daemon, app, host)["source"] == "upload"
    stored = daemon.home / "traefik" / "certs" / "uploaded"
    for name in (f"{host}.crt", f"{host}.key"):
        assert stat.S_IMODE((stored / name).stat().st_mode) == 0o600

    with daemon.client() as api:
        assert api.delete(f"/api/certificates/{host}").status_code == 204
    assert not (stored / f"{host}.key").exists()
    wait_certificate(daemon, app, host, "issued")
    assert certificate(daemon, app, host)["source"] == "acme"
    code, output = curl(secure, host)
    assert code == 0 and "version v1" in output, output


def test_the_control_host_serves_the_api_and_git_over_https(secure: Secure, tmp_path: Path) -> None:
    daemon = secure.daemon
    served = poll(
        lambda: curl(secure, CONTROL, path="/healthz"),
        lambda result: result[0] == 0,
        timeout=ISSUE_TIMEOUT,
        interval=0.5,
    )
    assert served[0] == 0 and '"status":"ok"' in served[1].replace(" ", ""), served
    code, output = curl(
        secure, CONTROL, "-H", f"Authorization: Bearer {daemon.admin_token}", path="/api/apps"
    )
    assert code == 0 and output.startswith("["), output
    to_https = plain(daemon, CONTROL)
    assert to_https.status_code == 301
    assert to_https.headers["location"] == f"https://{CONTROL}:{daemon.https_port}/"
    app, repo = "ctl", tmp_path / "repo"
    daemon.create_app(app)
    taken = domains(daemon, app, "POST", host=CONTROL)
    assert taken.status_code == 409 and "control host" in taken.json()["detail"]
    make_app_repo(repo, "v1")
    url = f"https://temps:{daemon.admin_token}@{CONTROL}:{daemon.https_port}/{app}.git"
    # git's libcurl takes the CA from the environment (`-c http.sslCAInfo` is not read here).
    code, output = run_git(
        repo,
        "-c", f"http.curloptResolve={CONTROL}:{daemon.https_port}:127.0.0.1",
        "push", "--progress", url, "main:main",
        env={"GIT_SSL_CAINFO": str(secure.roots)},
    )  # fmt: skip
    assert code == 0, output
    lines = remote_lines(output)
    assert any(line.startswith("-----> v1 is live") for line in lines), lines
    assert any("Health check" in line for line in lines), lines
    answer = httpx.get(f"{daemon.http_url}/", headers={"Host": f"{app}.{DOMAIN}"}, timeout=10)
    assert answer.status_code in (200, 301)
    assert run_through_the_control_host(secure, app, ["sh", "-c", "echo over wss; exit 6"]) == [
        (1, b"over wss\n"),
        (3, b'{"state": "exited", "exit_code": 6, "detail": null}'),
    ]


def run_through_the_control_host(secure: Secure, app: str, command: list[str]) -> list[Any]:
    """A one-off run asked for and attached to at the control host, over HTTPS and a
    WebSocket through Traefik: its messages as (channel, payload)."""
    daemon, port = secure.daemon, secure.daemon.https_port
    assert port is not None
    token = {"Authorization": f"Bearer {daemon.admin_token}"}
    with httpx.Client(verify=secure.context(), timeout=30) as client:
        asked = client.post(
            f"https://127.0.0.1:{port}/api/apps/{app}/runs",
            json={"command": command},
            headers={"Host": CONTROL, **token},
            extensions={"sni_hostname": CONTROL},
        )
    assert asked.status_code == 201, asked.text
    url = f"wss://{CONTROL}:{port}{asked.json()['attach_url']}"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        # The handshake is answered once the container started: as long as `temps run` waits.
        connect(
            url, sock=raw, ssl=secure.context(), additional_headers=token, open_timeout=60
        ) as attached,
    ):
        return [(message[0], message[1:]) for message in attached if isinstance(message, bytes)]


def test_login_to_the_control_host_keeps_its_url_token_and_ca(
    secure: Secure,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`temps login https://CONTROL` over the daemon's own HTTPS (pebble's certificate,
    trusted through --ca-file), then a call that uses what it stored. The CLI runs in this
    process so that the control host's name can resolve to 127.0.0.1 here."""
    daemon = secure.daemon
    poll(
        lambda: curl(secure, CONTROL, path="/healthz"),
        lambda result: result[0] == 0,
        timeout=ISSUE_TIMEOUT,
        interval=0.5,
    )
    resolve = socket.getaddrinfo

    def to_loopback(host: Any, *rest: Any, **named: Any) -> Any:
        return resolve("127.0.0.1" if host == CONTROL else host, *rest, **named)

    monkeypatch.setattr(socket, "getaddrinfo", to_loopback)
    for name in [name for name in os.environ if name.startswith("TEMPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TEMPS_CLIENT_FILE", str(tmp_path / "none.toml"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(daemon.admin_token + "\n"))
    control = f"https://{CONTROL}:{daemon.https_port}"
    from receiver.cli import main

    with pytest.raises(SystemExit, match="ca-file"):
        main(["login", control])  # pebble's CA is nobody's trust anchor
    monkeypatch.setattr("sys.stdin", io.StringIO(daemon.admin_token + "\n"))
    main(["login", control, "--ca-file", str(secure.roots)])
    assert f"logged in to {control} as admin" in capfd.readouterr().out
    stored = tmp_path / "config" / "temps" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["ca_file"] == str(secure.roots)

    daemon.create_app("ctl-login")
    main(["apps", "list"])
    assert "ctl-login" in capfd.readouterr().out

    # A one-off run over the same HTTPS: its ask and its WebSocket (wss) trust the same CA.
    deploy_v1(daemon, tmp_path / "repo", "ctl-run")
    with open(os.devnull) as nothing:
        monkeypatch.setattr("sys.stdin", nothing)
        with pytest.raises(SystemExit) as ran:
            main(["run", "ctl-run", "--", "echo", "over tls"])
    assert ran.value.code == 0
    assert capfd.readouterr().out == "over tls\n"
    main(["logout"])
    assert not stored.exists()
