"""traefik_rebuild: what one app's change costs Traefik, against the number of apps and the
layout of the route table.

A real Traefik started the way temps starts it (`ManagedTraefik`, temps' static config: access
log, 100 ms throttle; metrics only with --traefik-metrics) reads a table of N apps from its
watched dir. All apps route to one local HTTP server (with --server-per-app, each to a port
of its own, as containers are); one app, `a0000`, switches between two others, each answering
its own name. For each number of apps and each layout, with a Traefik of its own:
- latency: the table renamed into the watched dir -> the first answer from the new server,
  through Traefik's web entrypoint, probed every 1 ms on one keep-alive connection (for a
  layout without routers: the service's new server shown in Traefik's API, polled every 1 ms);
- Traefik's CPU: the CPU time of Traefik's threads (schedstat, ns) from the rename until the
  API shows the change and 0.3 s more, less what it burns idle over as long; a switch of its
  own, without the probe loop's requests (the API is polled every 10 ms);
- Traefik's RSS once the table is loaded.
Sizes and layouts are interleaved round by round, so a busy moment of this shared machine
does not fall on one layout only.

Layouts (objects per app; the table's other objects once):
- `today`: router, service, release-header middleware and retry middleware, per app (what
  temps wrote up to issue 29);
- `shared-retry`: router, service, release-header middleware; one retry middleware;
- `shared-release`: router and service; one retry middleware, and one release-header
  middleware for every app at the same release (the header says `v1`, not the app);
- `no-header`: router and service; one retry middleware (what a release header set without
  any object would give);
- `bare`: router and service, no middleware at all;
- `services`: services only, no router (the floor of the service half);
- `shared-retry-toml`: `shared-retry` written as TOML (`routes.toml`; needs `tomli-w`), for
  the cost of Traefik's YAML decoding;
- `temps`: what this checkout's `pipeline.traefik.routes` renders.

Then the daemon's side: `routes.publish_route` of one app in a home of N apps (render the
table, write it and the app's file), timed alone, without Traefik (`--layouts ""`: only that).

    .venv/bin/python bench/traefik_rebuild.py [--sizes 1,100,500,1000] [--switches 6]
        [--rounds 2] [--layouts today,shared-retry,...] [--publishes 20] [--server-per-app]
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from common import REPO_ROOT, header, ms, parse_args, rss_mb, spread, summary

from pipeline.settings import Address, Settings
from pipeline.traefik import routes
from pipeline.traefik.documents import Site, service_document
from pipeline.traefik.process import ManagedTraefik
from tests.support.ports import free_port

PROBED = "a0000"
RELEASE = "v1"
SWITCH_TIMEOUT = 30.0
SETTLE = 0.3  # after the API shows the change: the rebuild's tail (handlers, GC)
GAP = 0.25  # between two switches: past the 100 ms throttle of the one before
OTHER_PORTS = 30_000  # --server-per-app: the first of the ports the other apps route to
Document = dict[str, Any]


# --- backends --------------------------------------------------------------------------------


class _Named(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class NamedServer(ThreadingHTTPServer):
    """Answers every GET with its name; TCP_NODELAY, or each request costs ~40 ms."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Named)
        self.name = name
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# --- layouts ---------------------------------------------------------------------------------


def app_names(count: int) -> list[str]:
    return [f"a{index:04d}" for index in range(count)]


def other_url(rest_url: str, index: int) -> str:
    """The server of an app that is not probed: the one `rest` server, or with
    --server-per-app a port of its own (where nothing listens: no request goes there)."""
    return rest_url.format(port=OTHER_PORTS + index)


def _router(app: str, middlewares: list[str]) -> Document:
    router: Document = {"rule": f"Host(`{app}.localhost`)", "service": app, "entryPoints": ["web"]}
    if middlewares:
        router["middlewares"] = middlewares
    return router


def _service(url: str) -> Document:
    return {"loadBalancer": {"servers": [{"url": url}], "passHostHeader": True}}


def _header(release: str) -> Document:
    return {"headers": {"customResponseHeaders": {"X-Temps-Release": release}}}


RETRY = {"retry": {"attempts": 2, "initialInterval": "20ms"}}


def handmade(kind: str, count: int, probed_url: str, rest_url: str) -> Document:
    routers: Document = {}
    services: Document = {}
    middlewares: Document = {}
    if kind in ("shared-retry", "shared-release", "no-header"):
        middlewares["_retry"] = RETRY
    if kind == "shared-release":
        middlewares[f"_release-{RELEASE}"] = _header(RELEASE)
    for index, app in enumerate(app_names(count)):
        services[app] = _service(probed_url if app == PROBED else other_url(rest_url, index))
        if kind == "today":
            middlewares[f"{app}-release"] = _header(RELEASE)
            middlewares[f"{app}-retry"] = RETRY
            routers[app] = _router(app, [f"{app}-release", f"{app}-retry"])
        elif kind == "shared-retry":
            middlewares[f"{app}-release"] = _header(RELEASE)
            routers[app] = _router(app, [f"{app}-release", "_retry"])
        elif kind == "shared-release":
            routers[app] = _router(app, [f"_release-{RELEASE}", "_retry"])
        elif kind == "no-header":
            routers[app] = _router(app, ["_retry"])
        elif kind == "bare":
            routers[app] = _router(app, [])
    http = {"routers": routers, "middlewares": middlewares, "services": services}
    return {"http": {key: value for key, value in http.items() if value}}


class TempsTable:
    """The table this checkout's routes module renders, in a home of its own: each app's
    service published once (through `tidy`), then the probed app's as asked."""

    def __init__(self, count: int, rest_url: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="temps-bench-table-")
        self.settings = Settings(home=Path(self._dir.name))
        self.settings.make_dirs()
        for index, app in enumerate(app_names(count)):
            document = service_document(app, [other_url(rest_url, index)], RELEASE, "/")
            routes.route_path(self.settings, app).write_bytes(
                json.dumps(document, indent=2).encode() + b"\n"
            )
        routes.tidy(
            self.settings, {app: Site(app, (f"{app}.localhost",)) for app in app_names(count)}
        )

    def render(self, probed_url: str) -> bytes:
        routes.publish_route(
            self.settings, PROBED, service_document(PROBED, [probed_url], RELEASE, "/")
        )
        return routes.table_path(self.settings).read_bytes()

    def close(self) -> None:
        self._dir.cleanup()


def toml_bytes(document: Document) -> bytes:
    import tomli_w  # only this layout needs it

    return tomli_w.dumps(document).encode()


@contextlib.contextmanager
def layout_renderer(
    kind: str, count: int, rest_url: str
) -> Iterator[tuple[Callable[[str], bytes], str]]:
    """A function of the probed app's server URL to the table's bytes, and the file name."""
    if kind == "temps":
        table = TempsTable(count, rest_url)
        try:
            yield table.render, routes.TABLE_FILE
        finally:
            table.close()
    elif kind.endswith("-toml"):
        base = kind.removesuffix("-toml")
        yield (lambda url: toml_bytes(handmade(base, count, url, rest_url))), "routes.toml"
    else:
        yield (
            (
                lambda url: (
                    json.dumps(handmade(kind, count, url, rest_url), separators=(",", ":")).encode()
                    + b"\n"
                )
            ),
            "routes.yml",
        )


# --- Traefik ---------------------------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid` so far, in ns (schedstat's first field)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


class Bench:
    """One Traefik with temps' static config, reading one table."""

    def __init__(self, home: Path, file_name: str) -> None:
        self.settings = Settings(
            home=home,
            http=Address("127.0.0.1", free_port()),
            traefik_api=Address("127.0.0.1", free_port()),
        )
        self.settings.make_dirs()
        self.target = self.settings.dynamic_dir / file_name
        self.traefik = ManagedTraefik(self.settings, check_interval=3600)
        self.api = httpx.Client(timeout=5.0)
        self.probe: http.client.HTTPConnection | None = None

    def publish(self, content: bytes) -> float:
        """The table written outside the watched dir and renamed in; when it was renamed."""
        temp = self.settings.staging_dir / (self.target.name + ".tmp")
        temp.write_bytes(content)
        renamed = time.perf_counter()
        os.replace(temp, self.target)
        return renamed

    def get(self) -> str:
        if self.probe is None:
            self.probe = http.client.HTTPConnection(
                self.settings.http.host, self.settings.http.port, timeout=5
            )
        try:
            self.probe.request("GET", "/", headers={"Host": f"{PROBED}.localhost"})
            answer = self.probe.getresponse()
            return answer.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.probe.close()
            self.probe = None
            return ""

    def api_servers(self) -> list[str]:
        try:
            found = self.api.get(f"{self.settings.traefik_api.url}/api/http/services/{PROBED}@file")
            servers = found.json().get("loadBalancer", {}).get("servers", [])
        except (httpx.HTTPError, ValueError):
            return []
        return [server.get("url") for server in servers]

    def wait(self, done: Callable[[], bool], every: float) -> float | None:
        deadline = time.perf_counter() + SWITCH_TIMEOUT
        while time.perf_counter() < deadline:
            if done():
                return time.perf_counter()
            time.sleep(every)
        return None


def one_layout(
    kind: str, count: int, switches: int, backends: dict[str, NamedServer], rest_url: str
) -> dict[str, Any]:
    blue, green = backends["blue"], backends["green"]
    routed = kind != "services"
    with (
        layout_renderer(kind, count, rest_url) as render,
        tempfile.TemporaryDirectory(prefix="temps-bench-rebuild-") as home,
    ):
        render_table, file_name = render
        bench = Bench(Path(home), file_name)
        tables = {server.name: render_table(server.url) for server in (blue, green)}
        bench.publish(tables["blue"])
        started = time.perf_counter()
        bench.traefik.start()
        try:
            loaded = bench.wait(lambda: blue.url in bench.api_servers(), 0.01)
            if loaded is None:
                raise RuntimeError(f"{kind}, {count} apps: Traefik did not load the table")
            pid = bench.traefik.pid
            assert pid is not None
            time.sleep(1.0)
            idle_start, idle_cpu = time.perf_counter(), cpu_ns(pid)
            time.sleep(1.0)
            idle_rate = (cpu_ns(pid) - idle_cpu) / (time.perf_counter() - idle_start)
            latencies, cpus, api_seen = [], [], []
            current = blue
            for index in range(2 * switches):
                following = green if current is blue else blue
                time.sleep(GAP)
                if index % 2 == 0:  # latency: the data plane (or the API) probed every 1 ms
                    if routed:
                        bench.get()  # the connection is open before the rename
                        renamed = bench.publish(tables[following.name])
                        seen = bench.wait(lambda s=following: bench.get() == s.name, 0.001)
                    else:
                        renamed = bench.publish(tables[following.name])
                        seen = bench.wait(lambda s=following: s.url in bench.api_servers(), 0.001)
                    if seen is None:
                        raise RuntimeError(f"{kind}, {count} apps: the switch did not show")
                    latencies.append(seen - renamed)
                else:  # Traefik's CPU, with only the API polled every 10 ms
                    before = cpu_ns(pid)
                    renamed = bench.publish(tables[following.name])
                    seen = bench.wait(lambda s=following: s.url in bench.api_servers(), 0.01)
                    if seen is None:
                        raise RuntimeError(f"{kind}, {count} apps: the switch did not show")
                    time.sleep(SETTLE)
                    window = time.perf_counter() - renamed
                    cpus.append(max(cpu_ns(pid) - before - idle_rate * window, 0) / 1e9)
                    api_seen.append(seen - renamed)
                current = following
            rss = rss_mb(pid).get("VmRSS", 0.0)
        finally:
            bench.traefik.stop()
            if bench.probe is not None:
                bench.probe.close()
            bench.api.close()
    return {
        "layout": kind,
        "apps": count,
        "table_bytes": len(tables["blue"]),
        "load_seconds": loaded - started,
        "latency": latencies,
        "cpu": cpus,
        "api_seen": api_seen,
        "idle_cpu_per_s": idle_rate / 1e9,
        "traefik_rss_mb": rss,
    }


# --- the daemon's side -----------------------------------------------------------------------


def daemon_publish(count: int, publishes: int) -> dict[str, Any]:
    """`routes.publish_route` of one app in a home of `count` apps, `publishes` times: the
    wall time (which includes the table's fsync, and so the disk's other writers) and the
    daemon thread's CPU time (rendering and writing, without the wait for the disk)."""
    table = TempsTable(count, "http://127.0.0.1:18000")
    try:
        wall, cpu = [], []
        for index in range(publishes):
            document = service_document(
                PROBED, [f"http://127.0.0.1:{18001 + index % 2}"], RELEASE, "/"
            )
            started, started_cpu = time.perf_counter(), time.thread_time()
            routes.publish_route(table.settings, PROBED, document)
            wall.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
        return {"wall": summary(wall), "cpu": summary(cpu)}
    finally:
        table.close()


def main() -> None:
    args = parse_args(
        "Traefik's rebuild against the number of apps and the table's layout",
        runs=1,
        sizes=(str, "1,100,500,1000", "numbers of apps, comma-separated"),
        layouts=(
            str,
            "today,shared-retry,shared-release,no-header,bare,services,shared-retry-toml,temps",
            "layouts, comma-separated",
        ),
        switches=(int, 6, "switches of each kind per layout and size, per round (default 6)"),
        rounds=(int, 2, "rounds over every size and layout (default 2)"),
        publishes=(int, 20, "daemon-side publishes per size (default 20)"),
        server_per_app=(bool, False, "each app routed to a server URL of its own"),
    )
    sizes = [int(size) for size in args.sizes.split(",")]
    layouts = [kind for kind in args.layouts.split(",") if kind]  # none: the daemon's side only
    if any(kind.endswith("-toml") for kind in layouts):
        try:
            import tomli_w  # noqa: F401
        except ImportError:
            print("  tomli-w is not installed: the TOML layout is left out", flush=True)
            layouts = [kind for kind in layouts if not kind.endswith("-toml")]
    report = header("traefik_rebuild", args)
    backends = {name: NamedServer(name) for name in ("blue", "green", "rest")}
    rest_url = "http://127.0.0.1:{port}" if args.server_per_app else backends["rest"].url
    runs: list[dict[str, Any]] = []
    for round_number in range(args.rounds):
        for count in sizes:
            for kind in layouts:
                found = one_layout(kind, count, args.switches, backends, rest_url)
                found["round"] = round_number
                runs.append(found)
                print(
                    f"  round {round_number + 1}, {count} apps, {kind}: switch "
                    f"{ms(statistics.median(found['latency']))}, Traefik CPU "
                    f"{ms(statistics.median(found['cpu']))} (medians), "
                    f"RSS {found['traefik_rss_mb']:.1f} MiB, {found['table_bytes']} bytes",
                    flush=True,
                )
    report.runs = runs
    for count in sizes:
        for kind in layouts:
            rows = [run for run in runs if run["apps"] == count and run["layout"] == kind]
            latency = summary([value for run in rows for value in run["latency"]])
            cpu = summary([value for run in rows for value in run["cpu"]])
            report.figure(
                f"{kind}.{count}",
                {
                    "latency": latency,
                    "cpu": cpu,
                    "api_seen": summary([v for run in rows for v in run["api_seen"]]),
                    "traefik_rss_mb": max(run["traefik_rss_mb"] for run in rows),
                    "table_bytes": rows[0]["table_bytes"],
                },
                f"{count} apps, {kind}: switch {spread(latency)}; Traefik CPU per change "
                f"median {ms(cpu['median'])}, p95 {ms(cpu['p95'])}",
            )
    for count in sizes:
        publish = daemon_publish(count, args.publishes)
        report.figure(
            f"daemon_publish.{count}",
            publish,
            f"{count} apps, routes.publish_route of one app: {spread(publish['wall'])}; "
            f"CPU {spread(publish['cpu'])}",
        )
    print(f"  (checkout: {REPO_ROOT})", flush=True)
    report.write()


if __name__ == "__main__":
    main()
