"""switch_latency: from the gate's last passing probe to the first request served by the new
release, as seen by a probe loop that sends a request through Traefik every 1 ms.

The gate passes when the release moves health_checking -> switching (the daemon's event
timestamp). The figure is split in two with the route file's mtime: the daemon's part (state
change, render, validate, write, fsync, rename) and Traefik's part (file watch, reload).

The same is measured over HTTPS (issue 17) in the same sitting: the same app, runs and
deploys on a second daemon started with `--https`, its certificates from Debian's pebble on
loopback, its runs alternating with the HTTP ones. Each starts once the app's host has its
certificate issued and served; the probe loop goes to the websecure entrypoint with the host
in the SNI and checks the chain against pebble's roots.

    .venv/bin/python bench/switch_latency.py [--runs 3] [--deploys 10] [--no-https]
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from common import (
    ProbeLoop,
    Report,
    TempsDaemon,
    commit_app,
    daemon_pid,
    event_at,
    header,
    ms,
    parse_args,
    push,
    rss_mb,
    running_daemon,
    spread,
    summary,
    switch_confirm_seconds,
)

from tests.support.acme import Pebble
from tests.support.daemon import free_port

MEDIAN_TARGET = 0.050
P95_TARGET = 0.150
HTTPS_RATIO_TARGET = 1.2  # HTTPS median over the HTTP one
HTTPS_DOMAIN = "apps.test"  # pebble's mock DNS answers every name with 127.0.0.1
ACME_EMAIL = "bench@temps.test"
ISSUE_TIMEOUT = 60.0


def route_mtime(daemon: TempsDaemon, app: str) -> float:
    # Every app's route is in one table: its rename is what Traefik reacts to.
    return os.stat(daemon.home / "traefik" / "dynamic" / "routes.yml").st_mtime_ns / 1e9


@contextlib.contextmanager
def secure_daemon(profile: bool) -> Iterator[tuple[TempsDaemon, ssl.SSLContext]]:
    """A daemon with a websecure entrypoint whose certificates come from pebble, and the
    context that verifies them against pebble's roots (new at every pebble start).

    A daemon of its own rather than `--https` on the HTTP phase's: once a host's certificate
    is issued, plain HTTP to it answers 301, and HTTP stays measured as it always was.
    """
    http_port, https_port = free_port(), free_port()
    with (
        Pebble(http_port=http_port, tls_port=https_port) as pebble,
        running_daemon(
            "switch_latency-https",
            profile,
            http_port=http_port,
            https_port=https_port,
            domain=HTTPS_DOMAIN,
            extra_args=["--acme-ca", pebble.directory_url, "--acme-email", ACME_EMAIL],
            env={"LEGO_CA_CERTIFICATES": str(pebble.ca_pem)},
        ) as daemon,
    ):
        yield daemon, ssl.create_default_context(cafile=str(pebble.fetch_roots()))


def serves_https(daemon: TempsDaemon, host: str, tls: ssl.SSLContext) -> bool:
    """One request to the websecure entrypoint, with `host` as SNI and the chain verified."""
    try:
        with httpx.Client(verify=tls, timeout=5) as client:
            answer = client.get(
                f"{daemon.https_url}/", headers={"Host": host}, extensions={"sni_hostname": host}
            )
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def wait_until_secure(daemon: TempsDaemon, app: str, tls: ssl.SSLContext) -> dict[str, Any]:
    """The certificate of the app's host, once issued and served with a chain `tls` verifies."""
    host = f"{app}.{daemon.domain}"
    deadline = time.monotonic() + ISSUE_TIMEOUT
    certificate: dict[str, Any] = {}
    with daemon.client() as api:
        while time.monotonic() < deadline:
            hosts = api.get(f"/api/apps/{app}/domains").raise_for_status().json()["hosts"]
            certificate = next(
                (entry["certificate"] for entry in hosts if entry["host"] == host), {}
            )
            if certificate.get("state") == "failed":
                raise RuntimeError(f"{host}: certificate failed: {certificate}")
            if certificate.get("state") == "issued" and serves_https(daemon, host, tls):
                return certificate
            time.sleep(0.25)
    raise RuntimeError(f"{host}: no certificate served in {ISSUE_TIMEOUT:g} s: {certificate}")


def one_switch(
    daemon: TempsDaemon, app: str, repo: Path, version: str, tls: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """Push `version` under the probe loop (over HTTPS with `tls`); when each part of the
    switch happened."""
    commit_app(repo, version)
    port = daemon.http_port if tls is None else daemon.https_port
    assert port is not None
    with ProbeLoop(port, f"{app}.{daemon.domain}", tls=tls) as loop:
        pushed = push(repo, daemon.git_url(app))
    if pushed.code != 0:
        raise RuntimeError(f"push of {version} failed:\n{pushed.output}")
    release = daemon.releases(app)[0]
    label = release["version"]
    gate = event_at(release, "switching", "health_checking")
    first = loop.first(release=label)
    if gate is None or first is None:
        raise RuntimeError(f"{label}: no gate event or no request served by it")
    written = route_mtime(daemon, app)
    return {
        "release": label,
        "latency": first.received - gate,
        "latency_sent": first.sent - gate,
        "daemon_part": written - gate,
        "traefik_part": first.received - written,
        "confirmed_in": switch_confirm_seconds(daemon, app).get(label),
        "push_seconds": pushed.seconds,
        "probes": len(loop.samples),
        "probe_interval": loop.mean_interval,
        "probe_failures": len(loop.failures()),
        "daemon_rss_mb": rss_mb(daemon_pid(daemon))["VmRSS"],
    }


def measure(
    daemon: TempsDaemon,
    app: str,
    repo: Path,
    deploys: int,
    tag: str,
    tls: ssl.SSLContext | None = None,
) -> list[dict[str, Any]]:
    """`deploys` pushes of an already-live app; prints one line per switch."""
    found = []
    for index in range(deploys):
        row = one_switch(daemon, app, repo, f"{tag}-{index + 2}", tls)
        print(
            f"    {row['release']}: gate -> first new answer {ms(row['latency'])} "
            f"(daemon {ms(row['daemon_part'])}, Traefik {ms(row['traefik_part'])}; "
            f"{row['probes']} probes every {ms(row['probe_interval'])}, "
            f"{row['probe_failures']} failed)",
            flush=True,
        )
        found.append(row)
    return found


def measure_run(
    report: Report, daemon: TempsDaemon, run: int, deploys: int, tls: ssl.SSLContext | None
) -> list[dict[str, Any]]:
    """Run `run`: `deploys` switches of an app of its own; over HTTPS with `tls`, from the
    moment the app's certificate is served."""
    phase = "http" if tls is None else "https"
    app = f"switch{run + 1}"
    daemon.create_app(app)
    repo = daemon.home.parent / "repos" / app
    commit_app(repo, f"r{run}-1")
    first = push(repo, daemon.git_url(app))
    if first.code != 0:
        raise RuntimeError(f"first push failed:\n{first.output}")
    found: dict[str, Any] = {"run": run + 1, "phase": phase}
    if tls is not None:
        found["certificate"] = wait_until_secure(daemon, app, tls)
    print(f"  run {run + 1}: {deploys} deploys of {app} over {phase.upper()}", flush=True)
    rows = measure(daemon, app, repo, deploys, f"r{run}", tls)
    found.update(switches=rows, latency=summary([row["latency"] for row in rows]))
    report.runs.append(found)
    print(f"  run {run + 1}: {spread(found['latency'])}", flush=True)
    return rows


def phase_figures(report: Report, phase: str, every: list[dict[str, Any]]) -> dict[str, Any]:
    """Print and record one phase's figures; returns its pooled latency. HTTP's keys are the
    ones results had before the HTTPS phase, HTTPS's the same with `https_` in front."""
    prefix = "" if phase == "http" else f"{phase}_"
    runs = [run for run in report.runs if run["phase"] == phase]
    print(f"  over {phase.upper()}, {len(every)} deploys in {len(runs)} runs:", flush=True)
    medians = [run["latency"]["median"] for run in runs]
    p95s = [run["latency"]["p95"] for run in runs]
    pooled = summary([row["latency"] for row in every])
    report.figure(
        f"{prefix}latency", pooled, f"gate -> first new answer, all runs: {spread(pooled)}"
    )
    report.figure(
        f"{prefix}run_medians", summary(medians), f"per-run medians: {spread(summary(medians))}"
    )
    report.figure(f"{prefix}run_p95s", summary(p95s), f"per-run p95s: {spread(summary(p95s))}")
    for name, text in (
        ("daemon_part", "gate -> route file renamed in (daemon)"),
        ("traefik_part", "route file -> first new answer (Traefik)"),
        ("confirmed_in", "file write -> confirmed by API and probe (daemon log)"),
        ("latency_sent", "gate -> sending of the first request the new release answered"),
    ):
        values = [row[name] for row in every if row[name] is not None]
        report.figure(f"{prefix}{name}", summary(values), f"{text}: {spread(summary(values))}")
    rss = [row["daemon_rss_mb"] for row in every]
    report.figure(
        f"{prefix}daemon_rss_mb",
        rss,
        f"daemon RSS after each of {len(rss)} deploys: {rss[0]:.1f} -> {rss[-1]:.1f} MiB",
    )
    failures = sum(row["probe_failures"] for row in every)
    probes = sum(row["probes"] for row in every)
    report.figure(f"{prefix}probe_failures", failures, f"probe loop: {failures} failed of {probes}")
    interval = summary([row["probe_interval"] for row in every])
    report.figure(
        f"{prefix}probe_interval", interval, f"achieved probe interval: {spread(interval)}"
    )
    return pooled


def main() -> None:
    args = parse_args(
        "switch latency through Traefik, probed every 1 ms, over HTTP and over HTTPS",
        runs=3,
        deploys=(int, 10, "deploys measured per run (default 10)"),
        https=(bool, True, "also measure over HTTPS with pebble's certificates (default on)"),
    )
    report = header("switch_latency", args)
    every: dict[str, list[dict[str, Any]]] = {"http": [], "https": []}
    with contextlib.ExitStack() as stack:
        daemons: dict[str, tuple[TempsDaemon, ssl.SSLContext | None]] = {
            "http": (stack.enter_context(running_daemon("switch_latency", args.profile)), None)
        }
        if args.https:
            daemons["https"] = stack.enter_context(secure_daemon(args.profile))
        # Runs of the two phases alternate, and so does which goes first, so that a change in
        # the machine's load weighs on both alike; the daemon not measured sits idle.
        for run in range(args.runs):
            phases = list(daemons.items())
            if run % 2:
                phases.reverse()
            for phase, (daemon, tls) in phases:
                every[phase] += measure_run(report, daemon, run, args.deploys, tls)
    pooled = phase_figures(report, "http", every["http"])
    report.verdict(
        "median <= 50 ms",
        pooled["median"] <= MEDIAN_TARGET,
        f"median {ms(pooled['median'])} over {pooled['n']} deploys",
    )
    report.verdict(
        "p95 <= 150 ms",
        pooled["p95"] <= P95_TARGET,
        f"p95 {ms(pooled['p95'])} over {pooled['n']} deploys",
    )
    if args.https:
        secure = phase_figures(report, "https", every["https"])
        ratio = {
            "median": secure["median"] / pooled["median"],
            "p95": secure["p95"] / pooled["p95"],
        }
        report.figure(
            "https_ratio",
            ratio,
            f"HTTPS / HTTP: median {ratio['median']:.2f}x, p95 {ratio['p95']:.2f}x",
        )
        report.verdict(
            "HTTPS median within 1.2x of HTTP",
            ratio["median"] <= HTTPS_RATIO_TARGET,
            f"HTTPS {ms(secure['median'])} / HTTP {ms(pooled['median'])} = "
            f"{ratio['median']:.2f}x over {secure['n']} deploys each",
        )
    report.write()


if __name__ == "__main__":
    main()
