"""A real ACME CA on loopback for the TLS tests: Debian's pebble 2.4 and pebble-challtestsrv.

`Pebble(http_port=web, tls_port=websecure).start()` runs the mock DNS (every name -> 127.0.0.1,
no AAAA) and pebble, whose VA validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`.
Give Traefik `directory_url` as `caServer` and `LEGO_CA_CERTIFICATES=<ca_pem>`; check what
Traefik serves with `curl --cacert <fetch_roots()>`: pebble makes a new root at every start.
Failures on purpose: `blocked` names are refused at order time (ACME `rejectedIdentifier`);
`fail_validation(host)` makes DNS answer SERVFAIL for it, so its challenge fails.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.ports import free_port

LOOPBACK = "127.0.0.1"
PEM = serialization.Encoding.PEM


# cryptography rather than the openssl CLI: it is already a dependency, needs no openssl.cnf
# for the subjectAltName, and fails with a Python traceback instead of parsed stderr.
def make_server_cert(directory: Path, *, days: int = 7) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a cert for localhost/127.0.0.1 it signed: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "temps test CA for pebble")])
    ca_pub = ca_key.public_key()

    def builder(subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
        )

    ca = (
        builder(ca_name, ca_pub)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_pub), False)
        .sign(ca_key, hashes.SHA256())
    )
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    cert = (
        builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), key.public_key())
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_pub), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    raw_key = key.private_bytes(PEM, PrivateFormat.PKCS8, serialization.NoEncryption())
    pems = (ca.public_bytes(PEM), cert.public_bytes(PEM), raw_key)
    for path, pem in zip(paths, pems, strict=True):
        path.write_bytes(pem)
        path.chmod(0o600)
    return paths


def _call(conn: http.client.HTTPConnection, path: str, body: str | None = None) -> bytes | None:
    """GET `path` (POST `body` when given) on `conn`; the answer's body if it is a 200."""
    try:
        conn.request("GET" if body is None else "POST", path, body)
        response = conn.getresponse()
        data = response.read()
        return data if response.status == 200 else None
    finally:
        conn.close()


class Pebble:
    """pebble + pebble-challtestsrv on free loopback ports; `stop()` ends both, removes files."""

    def __init__(
        self,
        *,
        http_port: int,
        tls_port: int,
        blocked: Sequence[str] = (),
        validity_seconds: int | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.http_port, self.tls_port, self.start_timeout = http_port, tls_port, start_timeout
        # Blocks a name and all under it; 2.4 panics (EOF to the client) on an order with fewer
        # labels than a listed name that shares its suffix: list `name.tld`, e.g. "blocked.test".
        self.blocked = list(blocked)
        self.validity_seconds = validity_seconds  # config `certificateValidityPeriod`
        self.acme_port, self.mgmt_port = free_port(), free_port()
        self.dns_port, self.dns_mgmt_port = free_port(udp_too=True), free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="temps-pebble-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def directory_url(self) -> str:
        return f"https://{LOOPBACK}:{self.acme_port}/dir"

    @property
    def ca_pem(self) -> Path:
        """The CA of pebble's own HTTPS certificate: the value for LEGO_CA_CERTIFICATES."""
        return self.workdir / "ca.pem"

    @property
    def log_path(self) -> Path:
        """pebble's stdout and stderr (orders, validations, problems)."""
        return self.workdir / "pebble.log"

    def start(self) -> Self:
        if not (shutil.which("pebble") and shutil.which("pebble-challtestsrv")):
            raise RuntimeError("pebble or pebble-challtestsrv not found: apt-get install pebble")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        _, cert, key = make_server_cert(self.workdir)
        config: dict[str, object] = {
            "listenAddress": f"{LOOPBACK}:{self.acme_port}",
            "managementListenAddress": f"{LOOPBACK}:{self.mgmt_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "domainBlocklist": self.blocked,
        }
        if self.validity_seconds is not None:
            config["certificateValidityPeriod"] = self.validity_seconds
        config_path = self.workdir / "pebble-config.json"
        config_path.write_text(json.dumps({"pebble": config}, indent=2))
        self._spawn(
            ["pebble-challtestsrv", "-management", f"{LOOPBACK}:{self.dns_mgmt_port}",
             "-dns01", f"{LOOPBACK}:{self.dns_port}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-defaultIPv4", LOOPBACK, "-defaultIPv6", ""],
            self.workdir / "challtestsrv.log", {},
        )  # fmt: skip
        self._wait(lambda: self._post_dns("/set-default-ipv4", {"ip": LOOPBACK}))
        # ALWAYS_VALID unset, or nothing is validated (nor fails); no authz reuse and no bad
        # nonces, which pebble does at random by default (50%, 5%): every order is validated.
        env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_VA_ALWAYS_VALID": None, "PEBBLE_AUTHZREUSE": "0",
               "PEBBLE_WFE_NONCEREJECT": "0"}  # fmt: skip
        self._spawn(
            ["pebble", "-config", str(config_path), "-dnsserver", f"{LOOPBACK}:{self.dns_port}"],
            self.log_path, env,
        )  # fmt: skip
        self._wait(lambda: self._get(self.acme_port, "/dir") is not None)

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str | None]) -> None:
        merged = dict(os.environ)
        for name, value in env.items():
            merged.pop(name, None)
            if value is not None:
                merged[name] = value
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=merged)
        self._procs.append(proc)

    def _wait(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self._procs):
                raise RuntimeError(f"pebble exited early; see {self.workdir}/*.log")
            with contextlib.suppress(OSError):
                if ready():
                    return
            time.sleep(0.05)
        raise TimeoutError(f"pebble not ready in {self.start_timeout}s; see {self.workdir}")

    def _get(self, port: int, path: str) -> bytes | None:
        context = ssl.create_default_context(cafile=str(self.ca_pem))
        return _call(http.client.HTTPSConnection(LOOPBACK, port, timeout=5, context=context), path)

    def _post_dns(self, path: str, body: dict[str, str]) -> bool:
        conn = http.client.HTTPConnection(LOOPBACK, self.dns_mgmt_port, timeout=5)
        return _call(conn, path, json.dumps(body)) is not None

    def fetch_roots(self, dest: Path | None = None) -> Path:
        """Write pebble's current root and intermediate (PEM) to `dest`, for curl --cacert."""
        dest = dest or self.workdir / "pebble-roots.pem"
        parts = [self._get(self.mgmt_port, path) for path in ("/roots/0", "/intermediates/0")]
        if parts[0] is None:
            raise RuntimeError("pebble's management interface gave no root")
        dest.write_bytes(b"".join(part.rstrip() + b"\n" for part in parts if part))
        return dest

    def fail_validation(self, host: str, *, fail: bool = True) -> None:
        """DNS answers SERVFAIL for `host` (or stops, with fail=False): its challenges fail."""
        path = "/set-servfail" if fail else "/clear-servfail"
        if not self._post_dns(path, {"host": host}):
            raise RuntimeError(f"challtestsrv refused {path} for {host}")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
