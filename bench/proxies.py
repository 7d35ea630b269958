"""proxies: temps' Traefik beside the other ways to put a proxy in front of the same app.

One daemon with HTTPS (pebble as the CA, as bench/switch_latency.py's secure daemon), the
busybox test app pushed once, plain HTTP left on for its host (no redirect). Then, each round,
`hey` without a rate limit (keep-alive, -c 20, --seconds each) on every path in an order that
turns from round to round:

1. straight to the container's address on the home's bridge: the reference (1.00x);
2. through temps' own Traefik (its access log, metrics, release header and retry);
3. nginx (Debian's), keep-alive to the container's address (bench/proxies_servers.py);
4. Traefik's Docker provider set up as Coolify ships it, routing by labels to a second
   container of the same image on the same bridge (also measured straight, as a check);
5. a bare Traefik: the file provider, one router, the container's address, nothing else,
   at Go's default garbage collector settings, as Traefik ships;
6. the same bare Traefik with temps' GOGC and GOMEMLIMIT (pipeline/traefik/process.py):
   what temps' extras cost with the collector alike on both sides.

2-6 over HTTP and over HTTPS; every HTTPS entrypoint serves the certificate pebble issued
for the app's host (ECDSA P-256), taken from temps' ACME store. Every proxy runs in a session
of its own, as temps' Traefik does. Per path: req/s, hey's p50 and p99 latency (medians over
the rounds), non-2xx and errors (summed), req/s against the direct figure of the same round,
and the proxy's CPU time per request (its process and children, medians): on a machine
shared with other work the CPU time moves less than the rates do.

busybox httpd closes its connection after each answer and listens with a backlog of 9: every
proxy opens a connection to it per request, whatever its keep-alive settings, and a burst of
them overflows the backlog; the client sends its SYN again a second later. A p99 near 1 s is
that, for any path.

With --variants, copies of temps' own Traefik (its files, other ports) run beside it: one as
it is, one without each of its access log, metrics, middlewares, transport settings, access
log field filter (Traefik's thirty fields a line instead of the twelve temps keeps) and access
log buffer (each request writing its own line under the log's lock), and one without all of
them, to weigh each one; each copy runs with the GOGC and GOMEMLIMIT temps' own Traefik was
given. --without log_buffer,... runs the copy as it is and only the copies named. With --gogc,
more copies as it is, run with other settings (`100+off` is Go's default).

    .venv/bin/python bench/proxies.py [--runs 5] [--seconds 10] [--variants | --without X,Y]
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from common import (
    Report,
    TempsDaemon,
    commit_app,
    header,
    parse_args,
    parse_hey,
    push,
    summary,
    traefik_pid,
)
from peers_nginx import ensure_nginx
from proxies_servers import (
    EXTRAS,
    METRICS,
    Certificate,
    Served,
    bare_traefik,
    cpu_seconds,
    docker_traefik,
    go_collector,
    nginx,
    rss_mib,
    temps_copy,
    wait_serving,
    workdir,
)
from switch_latency import secure_daemon, wait_until_secure
from targets import RATIO_TARGET

from tests.support.daemon import home_id_of
from tests.support.dockercli import docker

APP = "thru"
APP_PORT = 8000  # commit_app's temps.toml
WORKERS = 20
DIRECT, LABELLED = "direct", "direct_labelled"
TEMPS, NGINX, DOCKER, BARE = "temps", "nginx", "traefik_docker", "traefik_bare"
BARE_SAME_GC = "traefik_bare_temps_gc"  # the bare Traefik with temps' GOGC and GOMEMLIMIT
LEVEL = 1.0  # temps against the Docker provider: at least level
WITHIN = 0.95  # temps against the bare Traefik: within 5 %


@dataclass(frozen=True)
class Target:
    url: str
    pid: int | None  # the proxy's process, whose CPU time is counted; None: no proxy


def hey(path: Target, host: str, seconds: int) -> dict[str, Any]:
    command = ["hey", "-z", f"{seconds}s", "-c", str(WORKERS), "-t", "10", "-host", host, path.url]
    before = cpu_seconds(path.pid) if path.pid else 0.0
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    spent = cpu_seconds(path.pid) - before if path.pid else None
    result = parse_hey(command, done.stdout)
    return {
        "rate": round(result.rate, 1),
        "p50": result.latency.get(50),
        "p99": result.latency.get(99),
        "failed": result.non_2xx + result.error_count,
        "cpu_ms": None if spent is None else round(spent * 1000 / max(result.total, 1), 4),
        "rss_mib": round(rss_mib(path.pid), 1) if path.pid else None,
    }


def deployed(daemon: TempsDaemon) -> tuple[str, str]:
    """The app pushed and live: its container's address:port on the bridge, and its image."""
    daemon.create_app(APP)
    repo = daemon.home.parent / "repos" / APP
    commit_app(repo, "v1")
    pushed = push(repo, daemon.git_url(APP))
    if pushed.code != 0:
        raise RuntimeError(f"the push failed:\n{pushed.output}")
    (web,) = daemon.app(APP)["live_release"]["slot"]["web"]
    image = docker("inspect", "-f", "{{.Config.Image}}", web["container"]).strip()
    return f"{web['address']}:{web['host_port']}", image


def serve_plain_http(daemon: TempsDaemon, host: str) -> None:
    """No redirect to HTTPS for the app's host: plain HTTP is measured too."""
    with daemon.client() as api:
        api.patch(f"/api/apps/{APP}/https", json={"redirect": False}).raise_for_status()
    wait_serving(f"{daemon.http_url}/", host)


def pebble_certificate(daemon: TempsDaemon, host: str, root: Path) -> Certificate:
    """The chain and key pebble issued for `host`, from temps' ACME store, as PEM files."""
    store = json.loads((daemon.home / "traefik" / "acme.json").read_text())
    for entry in store["acme"]["Certificates"]:
        if entry["domain"]["main"] == host:
            chain, key = root / "chain.pem", root / "key.pem"
            chain.write_bytes(base64.b64decode(entry["certificate"]))
            key.write_bytes(base64.b64decode(entry["key"]))
            key.chmod(0o600)
            return Certificate(chain, key)
    raise RuntimeError(f"no certificate for {host} in temps' ACME store")


def targets(proxies: dict[str, Served], direct: str, labelled: str) -> dict[str, Target]:
    found = {
        DIRECT: Target(f"http://{direct}/", None),
        LABELLED: Target(f"http://{labelled}/", None),
    }
    for name, served in proxies.items():
        found[f"{name}_http"] = Target(served.http, served.pid)
        found[f"{name}_https"] = Target(served.https, served.pid)
    return found


def measure(paths: dict[str, Target], host: str, runs: int, seconds: int) -> list[dict[str, Any]]:
    names = list(paths)
    rounds = []
    for run in range(runs):
        turn = run % len(names)
        figures = {name: hey(paths[name], host, seconds) for name in names[turn:] + names[:turn]}
        for name in names:
            figures[name]["ratio"] = round(figures[name]["rate"] / figures[DIRECT]["rate"], 3)
        rates = ", ".join(f"{name} {figures[name]['rate']:,.0f}" for name in names)
        print(f"    round {run + 1} (load {os.getloadavg()[0]:.1f}), req/s: {rates}", flush=True)
        rounds.append({name: figures[name] for name in names})
    return rounds


def median_of(rounds: list[dict[str, Any]], name: str, key: str) -> float | None:
    values = [r[name][key] for r in rounds if r[name][key] is not None]
    return float(summary(values)["median"]) if values else None


def between(rounds: list[dict[str, Any]], one: str, other: str) -> float:
    """Median over the rounds of `one`'s req/s against `other`'s in the same round."""
    return float(summary([r[one]["rate"] / r[other]["rate"] for r in rounds])["median"])


def ms(seconds: float | None, scale: float = 1000) -> str:
    return "n/a" if seconds is None else f"{seconds * scale:.2f}"


def report_rows(report: Report, rounds: list[dict[str, Any]]) -> None:
    print(f"  {'path':<32}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}{'ratio':>7}"
          f"{'CPU ms/req':>12}{'RSS MiB':>9}")  # fmt: skip
    for name in rounds[0]:
        figures = {
            "rate": summary([r[name]["rate"] for r in rounds]),
            "p50": median_of(rounds, name, "p50"),
            "p99": median_of(rounds, name, "p99"),
            "failed": sum(r[name]["failed"] for r in rounds),
            "ratio": summary([r[name]["ratio"] for r in rounds]),
            "cpu_ms": median_of(rounds, name, "cpu_ms"),
            "rss_mib": max((r[name]["rss_mib"] or 0 for r in rounds), default=0) or None,
        }
        report.figures[name] = figures
        print(
            f"  {name:<32}{figures['rate']['median']:>8,.0f}{ms(figures['p50']):>9}"
            f"{ms(figures['p99']):>9}{figures['failed']:>8}{figures['ratio']['median']:>6.2f}x"
            f"{ms(figures['cpu_ms'], 1):>12}"
            f"{'n/a' if figures['rss_mib'] is None else format(figures['rss_mib'], '.1f'):>9}",
            flush=True,
        )


def verdicts(report: Report, rounds: list[dict[str, Any]]) -> None:
    for scheme in ("http", "https"):
        temps, docker_row, bare = (f"{name}_{scheme}" for name in (TEMPS, DOCKER, BARE))
        against_docker = between(rounds, temps, docker_row)
        against_bare = between(rounds, temps, bare)
        report.figures[f"temps_to_docker_{scheme}"] = against_docker
        report.figures[f"temps_to_bare_{scheme}"] = against_bare
        word = scheme.upper()
        # What temps' extras cost with the collector alike on both sides: measured, no target.
        alike = between(rounds, temps, f"{BARE_SAME_GC}_{scheme}")
        report.figures[f"temps_to_bare_same_gc_{scheme}"] = alike
        print(f"  {word}: temps' Traefik against a bare Traefik with its GOGC: {alike:.2f}x")
        report.verdict(
            f"{word}: temps' Traefik at least level with Traefik's Docker provider (Coolify)",
            against_docker >= LEVEL,
            f"{against_docker:.2f}x",
        )
        report.verdict(
            f"{word}: temps' Traefik within 5 % of a bare Traefik",
            against_bare >= WITHIN,
            f"{against_bare:.2f}x",
        )
        ratio = report.figures[temps]["ratio"]["median"]
        bare_ratio = report.figures[bare]["ratio"]["median"]
        report.verdict(
            f"{word}: temps' Traefik >= {RATIO_TARGET:g}x of straight to the container",
            ratio >= RATIO_TARGET,
            f"{ratio:.2f}x; the bare Traefik {bare_ratio:.2f}x",
        )


@contextlib.contextmanager
def contenders(
    daemon: TempsDaemon,
    upstream: str,
    image: str,
    host: str,
    copied: dict[str, frozenset[str]],
    gogc: list[str],
) -> Iterator[dict[str, Target]]:
    """Every proxy in front of the app, started; yields each path to measure."""
    with contextlib.ExitStack() as stack:
        certificate = pebble_certificate(daemon, host, stack.enter_context(workdir("tls")))
        network = f"temps-{home_id_of(daemon.home)}"
        ours = Served(f"{daemon.http_url}/", f"{daemon.https_url}/", traefik_pid(daemon))
        proxies = {TEMPS: ours}
        proxies[NGINX] = stack.enter_context(nginx(ensure_nginx(), upstream, host, certificate))
        served, labelled = stack.enter_context(
            docker_traefik(image, network, host, APP_PORT, certificate)
        )
        proxies[DOCKER] = served
        proxies[BARE] = stack.enter_context(bare_traefik(upstream, host, certificate))
        collector = go_collector(ours.pid or 0)
        print(f"    temps' Traefik runs with {collector}", flush=True)
        proxies[BARE_SAME_GC] = stack.enter_context(
            bare_traefik(upstream, host, certificate, collector)
        )
        for name, without in copied.items():
            proxies[name] = stack.enter_context(
                temps_copy(daemon.home, APP, host, without, collector)
            )
        for setting in gogc:
            percent, _, limit = setting.partition("+")
            environment = {"GOGC": percent, "GOMEMLIMIT": limit or "off"}
            proxies[f"copy_gogc_{setting}"] = stack.enter_context(
                temps_copy(daemon.home, APP, host, frozenset(), environment)
            )
        yield targets(proxies, upstream, labelled)


def copies(only: list[str]) -> dict[str, frozenset[str]]:
    """The copies of temps' Traefik to run beside it: as it is, and less each extra in `only`;
    with no `only` (--variants), less each extra and less all of them."""
    found = {"copy": frozenset[str]()}
    chosen = only or [extra for extra in EXTRAS if extra != METRICS]
    found.update({f"copy_no_{extra}": frozenset({extra}) for extra in chosen})
    if not only:
        found["copy_no_extras"] = frozenset(EXTRAS)
    return found


def stop_on_term(signum: int, frame: object) -> NoReturn:
    sys.exit(128 + signum)  # unwinds every context: processes, containers, the daemon


def main() -> None:
    signal.signal(signal.SIGTERM, stop_on_term)
    args = parse_args(
        __doc__ or "",
        runs=5,
        seconds=(int, 10, "seconds of each hey"),
        variants=(bool, False, "also copies of temps' Traefik, each less one extra"),
        without=(str, "", f"only these copies, comma-separated of {','.join(EXTRAS)}"),
        gogc=(str, "", "also copies of temps' Traefik run with GOGC[+GOMEMLIMIT], comma-separated"),
    )
    gogc = [value for value in args.gogc.split(",") if value]
    without = [value for value in args.without.split(",") if value]
    unknown = set(without) - set(EXTRAS)
    if unknown:
        sys.exit(f"--without: unknown extras {sorted(unknown)}; known: {', '.join(EXTRAS)}")
    report = header("proxies", args)
    with secure_daemon(args.profile) as (daemon, tls):
        upstream, image = deployed(daemon)
        host = f"{APP}.{daemon.domain}"
        wait_until_secure(daemon, APP, tls)
        serve_plain_http(daemon, host)
        copied = copies(without) if args.variants or without else {}
        with contenders(daemon, upstream, image, host, copied, gogc) as paths:
            urls = {name: target.url for name, target in paths.items()}
            print(f"    {host}: {json.dumps(urls)}", flush=True)
            rounds = measure(paths, host, args.runs, args.seconds)
    report.runs.extend(rounds)
    report_rows(report, rounds)
    verdicts(report, rounds)
    report.write()


if __name__ == "__main__":
    main()
