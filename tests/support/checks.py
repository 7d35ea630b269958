"""Checks shared by the end-to-end tests of failed deploys and rollbacks: what the pusher saw,
what the records say, what Traefik routes, what dockerd did and when."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.apprepo import git_push, make_app_repo
from tests.support.daemon import TempsDaemon, container_name
from tests.support.dockercli import container_names
from tests.support.load import LoadGenerator, LoadSummary, version_of
from tests.support.wait import poll

REJECTED_RE = re.compile(r"\[remote rejected\] main -> main \((?P<reason>.*)\)")
SETTLE_TIMEOUT = 15.0


def push_ok(daemon: TempsDaemon, repo: Path, app: str, version: str, **opts: Any) -> str:
    """Commit `version` (make_app_repo options) and push it; it must deploy. Returns the sha."""
    commit = make_app_repo(repo, version, **opts)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of {version} failed (exit {code}):\n{output}"
    return commit


def container(app: str, number: int) -> str:
    """The name temps gives release `number`'s container."""
    return container_name(app, number)


def assert_only_containers(app: str, names: list[str], timeout: float = SETTLE_TIMEOUT) -> None:
    """`docker ps -a --filter label=temps.app=<app>` settles on exactly `names`."""
    wanted = sorted(names)
    found = poll(
        lambda: container_names(f"label=temps.app={app}"),
        lambda seen: seen == wanted,
        timeout=timeout,
    )
    assert found == wanted, f"containers of {app}: {found}, expected {wanted}"


def same_commit(a: str | None, b: str | None) -> bool:
    """Equal, allowing either side to be abbreviated."""
    return bool(a and b and (a.startswith(b) or b.startswith(a)))


def rejection(output: str) -> str | None:
    """The reason git printed for a refused `main`, or None when it was not refused."""
    found = REJECTED_RE.search(output)
    return found.group("reason").strip() if found else None


def remote_lines(output: str) -> list[str]:
    """What the daemon sent the pusher, without git's `remote:` prefix."""
    return [
        line[len("remote:") :].strip() for line in output.splitlines() if line.startswith("remote:")
    ]


def assert_no_failures(summary: LoadSummary) -> None:
    assert summary.total > 0, "the load generator sent nothing"
    assert summary.non_2xx == 0 and summary.errors == 0, (
        f"{summary.line()}\nfirst failures: {summary.failures}"
    )


def start_load(daemon: TempsDaemon, app: str, rate: float = 150.0) -> LoadGenerator:
    load = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", rate=rate, max_seconds=300)
    load.start()
    return load


@contextmanager
def under_load(daemon: TempsDaemon, app: str, settle: float = 0.5) -> Iterator[LoadGenerator]:
    """Steady load on `app` through Traefik over the block, from `settle` seconds before it to
    `settle` seconds after; stopped however the block ends. `load.summary()` says what it saw."""
    load = start_load(daemon, app)
    try:
        time.sleep(settle)
        yield load
        time.sleep(settle)
    finally:
        load.stop()


def deploys_and_a_rollback(daemon: TempsDaemon, repo: Path, app: str, deploys: int) -> LoadSummary:
    """`deploys` pushes after v1, then a rollback, under load: what the load saw."""
    with under_load(daemon, app, settle=0) as load:
        for number in range(2, deploys + 2):
            push_ok(daemon, repo, app, f"v{number}")
        with daemon.client() as api:
            rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=300)
        assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
    return load.summary()


def serves(daemon: TempsDaemon, app: str) -> tuple[int, str | None, str | None]:
    """(status, version in the body, X-Temps-Release) of one request through Traefik."""
    response = daemon.get_app_page(app)
    return response.status_code, version_of(response.text), response.headers.get("x-temps-release")


def assert_serves(daemon: TempsDaemon, app: str, content: str, release: int) -> None:
    """Traefik serves the page of `content` (e.g. "v1"), tagged by live release `release`."""
    status, version, header = serves(daemon, app)
    assert (status, version, header) == (200, content, f"v{release}"), (
        f"GET / for {app}: HTTP {status}, body version {version}, X-Temps-Release {header}; "
        f"expected 200, {content}, v{release}"
    )
    live = daemon.app(app)["live_release"]
    assert live is not None and live["number"] == release, f"live release of {app}: {live}"


def states(daemon: TempsDaemon, app: str) -> list[tuple[int, str]]:
    return [(r["number"], r["state"]) for r in daemon.releases(app)]


def wait_states(
    daemon: TempsDaemon, app: str, wanted: list[tuple[int, str]], timeout: float = SETTLE_TIMEOUT
) -> list[tuple[int, str]]:
    """Poll until the newest releases have `wanted` (number, state) pairs, newest first."""
    found = poll(
        lambda: states(daemon, app),
        lambda seen: seen[: len(wanted)] == wanted,
        timeout=timeout,
        interval=0.1,
    )
    assert found[: len(wanted)] == wanted, f"release states of {app}: {found}, wanted {wanted}"
    return found


def event_times(release: dict[str, Any], state: str) -> list[float]:
    """When `release` entered `state` (epoch seconds), from its recorded state changes."""
    return [float(e["at"]) for e in release["events"] if e["state"] == state]


def event_at(release: dict[str, Any], state: str) -> float:
    times = event_times(release, state)
    assert times, f"v{release['number']} never entered {state}: {release['events']}"
    return times[-1]


def state_path(release: dict[str, Any]) -> list[str]:
    return [e["state"] for e in release["events"]]


def url_of(entry: dict[str, Any]) -> str:
    """Where Traefik reaches a web container of a release's record (an entry of its
    `slot.web`): its address on the home's bridge; none recorded, a loopback port."""
    return f"http://{entry.get('address', '127.0.0.1')}:{entry['host_port']}"


def recorded_urls(release: dict[str, Any]) -> list[str]:
    """Where Traefik reaches each web container of `release`, as its record says, sorted."""
    return sorted(url_of(entry) for entry in release["slot"]["web"])


def route_servers(daemon: TempsDaemon, app: str) -> list[str]:
    """The server URLs Traefik's own API shows for the app's service."""
    response = httpx.get(
        f"http://127.0.0.1:{daemon.traefik_api_port}/api/http/services/{app}@file", timeout=5
    )
    response.raise_for_status()
    servers = response.json().get("loadBalancer", {}).get("servers", [])
    return [str(server.get("url")) for server in servers]


def api_post(
    daemon: TempsDaemon, path: str, body: dict[str, Any] | None = None, timeout: float = 300
) -> httpx.Response:
    with daemon.client() as api:
        return api.post(path, json=body, timeout=timeout)


# --- dockerd's own record ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerEvent:
    action: str  # create, start, kill, die, stop, destroy, ...
    name: str
    at: float  # epoch seconds
    attributes: dict[str, str]


def parse_event(line: str) -> ContainerEvent:
    """One line of `docker events --format '{{json .}}'`."""
    data = json.loads(line)
    attributes = {
        str(k): str(v) for k, v in (data.get("Actor", {}).get("Attributes") or {}).items()
    }
    return ContainerEvent(
        action=str(data.get("Action") or data.get("status")),
        name=attributes.get("name", ""),
        at=int(data["timeNano"]) / 1e9,
        attributes=attributes,
    )


class ContainerEvents:
    """Follows dockerd's events for the app's containers while a test acts.

    Events are followed live rather than asked for afterwards: dockerd replays past events
    from a small buffer shared by every container on the host (256 in Docker 20.10), so a
    later query misses events whenever other containers are busy. Use as a context manager.
    """

    def __init__(self, app: str) -> None:
        self.app = app
        self.started = 0.0
        self._events: list[ContainerEvent] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ContainerEvents:
        self.started = time.time()
        self._process = subprocess.Popen(
            [
                "docker",
                "events",
                "--since",
                str(int(self.started) - 1),
                "--filter",
                "type=container",
                "--filter",
                f"label=temps.app={self.app}",
                "--format",
                "{{json .}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name="docker-events")
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if line.strip():
                event = parse_event(line)
                with self._lock:
                    self._events.append(event)

    def events(self, settle: float = 0.5) -> list[ContainerEvent]:
        """What happened since the watch began, after `settle` seconds for the last to arrive."""
        time.sleep(settle)
        with self._lock:
            seen = [e for e in self._events if e.at >= self.started]
        return sorted(seen, key=lambda e: e.at)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._reader is not None:
            self._reader.join(5)


def first_event(events: list[ContainerEvent], action: str, name: str) -> ContainerEvent:
    for event in events:
        if event.action == action and event.name == name:
            return event
    raise AssertionError(f"no {action} event for {name}: {[(e.action, e.name) for e in events]}")


# --- the moment a version comes back -------------------------------------------------------------


class FirstSeen:
    """A tight loop of requests through Traefik, noting when a body first shows `version`.

    It runs on one keep-alive connection (Traefik routes every request afresh), from
    `start()` until the version is seen, `stop()` or `timeout`. Every answer that is not 2xx
    is kept, so a measurement cannot hide a dropped request.
    """

    def __init__(self, daemon: TempsDaemon, app: str, version: str, timeout: float = 120) -> None:
        self.url = f"{daemon.http_url}/"
        self.host = f"{app}.{daemon.domain}"
        self.version = version
        self.timeout = timeout
        self.seen_at: float | None = None
        self.requests = 0
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="first-seen")

    def start(self) -> FirstSeen:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        with httpx.Client(headers={"Host": self.host}, timeout=5) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.get(self.url)
                except httpx.HTTPError as exc:
                    self.bad.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.requests += 1
                if not response.is_success:
                    self.bad.append(f"HTTP {response.status_code}")
                elif version_of(response.text) == self.version:
                    self.seen_at = time.monotonic()
                    return

    def wait(self, timeout: float) -> float | None:
        """Monotonic time the version was first seen, or None."""
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(10)
        return self.seen_at


def measure(action: Callable[[], httpx.Response], seen: FirstSeen) -> tuple[httpx.Response, float]:
    """Run `action` (a rollback) while `seen` watches; (its answer, seconds to the version).
    The version must come back: a check, whatever the caller does with the seconds."""
    seen.start()
    sent = time.monotonic()
    response = action()
    seen_at = seen.wait(timeout=60)
    assert seen_at is not None, (
        f"{seen.version} never came back through Traefik after {seen.requests} requests "
        f"(answer {response.status_code}: {response.text[:300]})"
    )
    return response, seen_at - sent


def release_numbers(daemon: TempsDaemon, app: str) -> list[int]:
    """The app's release numbers as the database holds them, read past the daemon."""
    with sqlite3.connect(daemon.home / "temps.db", timeout=30) as records:
        rows = records.execute(
            "SELECT number FROM releases JOIN apps ON apps.id = releases.app_id "
            "WHERE apps.name = ? ORDER BY number",
            (app,),
        )
        return [number for (number,) in rows]
