"""Steady HTTP load through Traefik while a deploy runs, recording every outcome.

Half the workers reuse one keep-alive connection each, half open a fresh connection per
request: the two ways a switch can drop a request (a reused connection to a server that is
going away, a new connection racing the route change) are both exercised.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

VERSION_RE = re.compile(r"version (v\d+)")
SLOW_RE = re.compile(r"slow done (v\d+)")
REQUEST_TIMEOUT = 10.0


def version_of(body: str) -> str | None:
    match = VERSION_RE.search(body)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Outcome:
    at: float  # seconds since the load started
    keepalive: bool
    status: int | None  # None when the request raised
    version: str | None
    error: str | None = None


@dataclass
class LoadSummary:
    total: int
    non_2xx: int
    errors: int
    versions: list[str]
    duration: float
    per_version: dict[str, int]
    failures: list[Outcome] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.total / self.duration if self.duration > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.total} requests in {self.duration:.1f} s ({self.rate:.0f} req/s): "
            f"{self.non_2xx} non-2xx, {self.errors} errors, versions {self.per_version}"
        )


class LoadGenerator:
    """GET `path` on `http_url` with `Host: host` at about `rate` requests per second.

    Runs until `stop()`, or until `max_seconds` or `max_requests` is reached, whichever
    comes first, so a test that forgets to stop it cannot hang.
    """

    def __init__(
        self,
        http_url: str,
        host: str,
        *,
        path: str = "/",
        rate: float = 150.0,
        workers: int = 6,
        max_seconds: float = 600.0,
        max_requests: int = 200_000,
        verify: ssl.SSLContext | None = None,
        cookies: bool = True,
    ) -> None:
        """For an https `http_url`, `verify` holds the CA that must have signed the host's
        certificate; the host name goes in the SNI and is checked against it. With `cookies`
        False every request goes without the cookies earlier answers set, as a new client's
        would."""
        self.cookies = cookies
        self.url = f"{http_url}{path}"
        self.host = host
        self.verify = verify
        self.extensions = {"sni_hostname": host} if http_url.startswith("https:") else {}
        self.interval = workers / rate
        self.workers = workers
        self.max_seconds = max_seconds
        self.max_requests_per_worker = max(1, max_requests // workers)
        self._stop = threading.Event()
        self._results: list[list[Outcome]] = [[] for _ in range(workers)]
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._stopped = 0.0
        self.started_wall = 0.0  # time.time() at start: Outcome.at + this is an epoch time

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._stopped:
            self.stop()

    def start(self) -> None:
        self._started = time.monotonic()
        self.started_wall = time.time()
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._run,
                args=(index, index % 2 == 0),
                daemon=True,
                name=f"load-{index}",
            )
            self._threads.append(thread)
            thread.start()

    def _client(self, keepalive: bool) -> httpx.Client:
        headers = {"Host": self.host}
        verify = self.verify or True
        if keepalive:
            return httpx.Client(headers=headers, timeout=REQUEST_TIMEOUT, verify=verify)
        headers["Connection"] = "close"
        return httpx.Client(
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_keepalive_connections=0),
            verify=verify,
        )

    def _run(self, index: int, keepalive: bool) -> None:
        results = self._results[index]
        deadline = self._started + self.max_seconds
        next_at = time.monotonic() + self.interval * index / self.workers
        with self._client(keepalive) as client:
            while not self._stop.is_set() and len(results) < self.max_requests_per_worker:
                now = time.monotonic()
                if now >= deadline:
                    break
                if next_at > now:
                    self._stop.wait(next_at - now)
                    continue
                # Falling behind is fine; bursting to catch up would distort the rate.
                next_at = max(next_at + self.interval, now)
                results.append(self._one(client, keepalive))

    def _one(self, client: httpx.Client, keepalive: bool) -> Outcome:
        at = time.monotonic() - self._started
        if not self.cookies:
            client.cookies.clear()
        try:
            response = client.get(self.url, extensions=self.extensions)
        except httpx.HTTPError as exc:
            return Outcome(at, keepalive, None, None, f"{type(exc).__name__}: {exc}")
        return Outcome(at, keepalive, response.status_code, version_of(response.text))

    def elapsed(self) -> float:
        """Seconds since the load started: the clock of `Outcome.at`."""
        return time.monotonic() - self._started

    def outcomes(self) -> list[Outcome]:
        merged = [outcome for results in self._results for outcome in results]
        return sorted(merged, key=lambda outcome: outcome.at)

    def stop(self) -> LoadSummary:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)
        self._stopped = time.monotonic()
        return self.summary()

    def summary(self) -> LoadSummary:
        outcomes = self.outcomes()
        bad_status = [o for o in outcomes if o.status is not None and not 200 <= o.status < 300]
        errors = [o for o in outcomes if o.status is None]
        per_version = Counter(o.version or "?" for o in outcomes if o.status is not None)
        end = self._stopped or time.monotonic()
        return LoadSummary(
            total=len(outcomes),
            non_2xx=len(bad_status),
            errors=len(errors),
            versions=sorted(v for v in per_version if v != "?"),
            duration=end - self._started,
            per_version=dict(sorted(per_version.items())),
            failures=(bad_status + errors)[:20],
        )


@dataclass
class SlowResult:
    status: int | None
    body: str
    error: str | None
    started: float
    finished: float

    @property
    def version(self) -> str | None:
        match = SLOW_RE.search(self.body)
        return match.group(1) if match else None


class SlowRequest:
    """One long request (`/cgi-bin/slow`) through Traefik, run in a thread."""

    def __init__(
        self, http_url: str, host: str, path: str = "/cgi-bin/slow", timeout: float = 60.0
    ) -> None:
        self.url = f"{http_url}{path}"
        self.host = host
        self.timeout = timeout
        self._result: SlowResult | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="slow-request")

    def start(self) -> SlowRequest:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        try:
            # Plain HTTP needs no CA bundle: loading it is 40 ms of CPU, stretched past the
            # time a request has to reach the release it is meant for on a loaded machine.
            verify = not self.url.startswith("http:")
            response = httpx.get(
                self.url, headers={"Host": self.host}, timeout=self.timeout, verify=verify
            )
            status, body, error = response.status_code, response.text, None
        except httpx.HTTPError as exc:
            status, body, error = None, "", f"{type(exc).__name__}: {exc}"
        self._result = SlowResult(status, body, error, started, time.monotonic())

    def result(self, timeout: float | None = None) -> SlowResult:
        self._thread.join(self.timeout + 5 if timeout is None else timeout)
        if self._result is None:
            raise TimeoutError(f"slow request to {self.url} did not finish")
        return self._result
