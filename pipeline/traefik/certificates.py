"""What Traefik's certificate resolver did: the certificates in its ACME store, and the orders
the CA refused, as its JSON log tells them.

Traefik has no API for either: the store is the JSON file it writes under the home
(`acme.json`), and a refused order is a log line naming the domains and the CA's error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import structlog
from cryptography import x509

from pipeline.traefik.documents import RESOLVER

log = structlog.get_logger()
MAX_LINE_BYTES = 64 * 1024
REFUSED_MESSAGE = "Unable to obtain ACME certificate for domains"
_DOMAINS = re.compile(r"domains \[([^\]]*)\]")
# The CA's problem inside Traefik's error text: RFC 8555's error type and its detail.
_PROBLEM = re.compile(r"urn:ietf:params:acme:error:(?P<type>\w+) :: (?P<detail>[^\]]*)")
MAX_REASON_CHARS = 500


class Issued(NamedTuple):
    host: str
    expires_at: float


class Refused(NamedTuple):
    hosts: tuple[str, ...]
    reason: str
    at: float


def issued(storage: Path) -> dict[str, Issued]:
    """Every certificate in Traefik's ACME store, by the host names it covers."""
    try:
        document = json.loads(storage.read_bytes() or b"{}")
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        log.warning("acme.store_unreadable", file=str(storage), error=str(exc))
        return {}
    found: dict[str, Issued] = {}
    for entry in (document.get(RESOLVER) or {}).get("Certificates") or ():
        try:
            pem = base64.b64decode(entry["certificate"])
            certificate = x509.load_pem_x509_certificate(pem)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("acme.certificate_unreadable", error=str(exc))
            continue
        expires = certificate.not_valid_after_utc.timestamp()
        domain = entry.get("domain") or {}
        for host in (domain.get("main"), *(domain.get("sans") or ())):
            if host:
                found[host] = Issued(host, expires)
    return found


def refusals(traefik_log: Path, offset: int) -> tuple[list[Refused], int]:
    """The refused orders Traefik logged from byte `offset` on, and the offset to read from
    next. A log that shrank was rotated: it is read from its start."""
    try:
        size = traefik_log.stat().st_size
    except FileNotFoundError:
        return [], 0
    if size < offset:
        offset = 0
    with traefik_log.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(size - offset)
    # Only whole lines: the last one may still be being written.
    whole = data[: data.rfind(b"\n") + 1]
    return list(_refused(whole.splitlines())), offset + len(whole)


def _refused(lines: list[bytes]) -> Iterator[Refused]:
    for line in lines:
        if len(line) > MAX_LINE_BYTES or REFUSED_MESSAGE.encode() not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        error = str(entry.get("error", ""))
        hosts = entry.get("domains")
        if not isinstance(hosts, list):
            found = _DOMAINS.search(error)
            hosts = found.group(1).split() if found else []
        if hosts:
            yield Refused(tuple(str(h) for h in hosts), reason_of(error), _time(entry.get("time")))


def reason_of(error: str) -> str:
    """The CA's own words where Traefik quotes them, else Traefik's error (a CA it could not
    reach, say)."""
    found = _PROBLEM.search(error)
    text = f"{found['type']}: {found['detail']}" if found else error
    return text[:MAX_REASON_CHARS]


def _time(text: object) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return 0.0
