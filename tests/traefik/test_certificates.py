"""Reading what Traefik's certificate resolver did: its ACME store and its refusal lines."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.traefik.certificates import issued, reason_of, refusals

# As Traefik 3.7 wrote them against pebble (a refused order, then two failed validations).
REFUSED = (
    '{"level":"error","providerName":"acme.acme","providerName":"acme.acme","routerName":'
    '"shop_tls_blocked_test@file","rule":"Host(`blocked.test`)","error":"unable to generate a '
    "certificate for the domains [blocked.test]: acme: error: 400 :: POST :: "
    "https://127.0.0.1:56747/order-plz :: urn:ietf:params:acme:error:rejectedIdentifier :: "
    'Order included an identifier for which issuance is forbidden by policy: \\"blocked.test\\"",'
    '"domains":["blocked.test"],"time":"2026-12-02T06:35:15Z","message":"Unable to obtain ACME '
    'certificate for domains"}'
)
UNREACHABLE = (
    '{"level":"error","error":"cannot get ACME client get directory at '
    "'https://127.0.0.1:1/dir': dial tcp 127.0.0.1:1: connect: connection refused\","
    '"domains":["x.test"],"time":"2026-12-02T06:36:00Z","message":"Unable to obtain ACME '
    'certificate for domains"}'
)


def certificate(hosts: list[str], days: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM)


def b64(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def test_the_store_gives_each_host_its_expiry(tmp_path: Path) -> None:
    first, second = certificate(["a.test"], 30), certificate(["b.test", "c.test"], 7)
    entries = [
        {"domain": {"main": "a.test"}, "certificate": b64(first)},
        {"domain": {"main": "b.test", "sans": ["c.test"]}, "certificate": b64(second)},
        {"domain": {"main": "broken.test"}, "certificate": "not base64 PEM"},
    ]
    store = tmp_path / "acme.json"
    store.write_text(json.dumps({"acme": {"Account": {}, "Certificates": entries}}))
    found = issued(store)
    assert sorted(found) == ["a.test", "b.test", "c.test"]
    expiry = x509.load_pem_x509_certificate(first).not_valid_after_utc.timestamp()
    assert found["a.test"].expires_at == expiry
    assert found["b.test"].expires_at == found["c.test"].expires_at


def test_a_missing_empty_or_broken_store_holds_nothing(tmp_path: Path) -> None:
    store = tmp_path / "acme.json"
    assert issued(store) == {}
    store.write_text("")
    assert issued(store) == {}
    store.write_text("{not json")
    assert issued(store) == {}


def test_refusals_are_read_once_with_the_cas_reason(tmp_path: Path) -> None:
    log = tmp_path / "traefik.log"
    log.write_text('{"level":"info","message":"Configuration loaded"}\n' + REFUSED + "\n")
    found, offset = refusals(log, 0)
    assert [(r.hosts, r.reason) for r in found] == [
        (
            ("blocked.test",),
            "rejectedIdentifier: Order included an identifier for which issuance is forbidden "
            'by policy: "blocked.test"',
        )
    ]
    assert found[0].at == datetime.datetime(2026, 12, 2, 6, 35, 15, tzinfo=datetime.UTC).timestamp()
    with log.open("a") as handle:
        handle.write(UNREACHABLE + "\n" + REFUSED[:40])  # the last line is still being written
    more, offset = refusals(log, offset)
    assert [r.hosts for r in more] == [("x.test",)]
    assert "connection refused" in more[0].reason
    assert refusals(log, offset) == ([], offset)


def test_a_rotated_log_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "traefik.log"
    log.write_text(REFUSED + "\n" + REFUSED + "\n")
    _found, offset = refusals(log, 0)
    log.write_text(REFUSED + "\n")  # shorter than where the reader was: a new file
    again, _ = refusals(log, offset)
    assert len(again) == 1


def test_the_reason_is_the_ca_problem_when_traefik_quotes_one() -> None:
    error = (
        "resolver: one or more domains had a problem: [x1.test: invalid authorization: acme: "
        "error: 400 :: urn:ietf:params:acme:error:connection :: Get http://x1.test/: could not "
        "resolve]"
    )
    assert reason_of(error) == "connection: Get http://x1.test/: could not resolve"
    assert reason_of("x" * 2000) == "x" * 500
