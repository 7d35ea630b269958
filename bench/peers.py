"""temps beside what a user would pick instead, in one run on the same app and load (issue 21).

Four contenders deploy the same busybox app N times each, one contender after the other:
- temps: `git push` to a temps daemon, blue-green with the defaults;
- nginx: the DIY swap the articles describe (bench/peers_nginx.sh behind Debian's nginx);
- traefik-labels: labelled containers behind Traefik's Docker provider (bench/peers_traefik.sh);
- recreate: `git push` to a temps daemon with `strategy = "recreate"`, stop-then-start.

During a contender's deploys two `hey` streams (keep-alive and a new connection per
request) and a probe loop at about 200 req/s run through its proxy, and two 5 s requests
are started shortly before each switch. Per contender: non-2xx, connection errors, long
requests cut, and from the probe loop: trigger-to-live (from the trigger, `git push` or the
script's start, to the sending of the first request the new version answered through the
proxy) and the gap (from the arrival of the old version's last answer to that of the new
version's first; 0 when both answered side by side). A deploy's samples are those sent from
its trigger to the next one's, which starts once the new version answers every request.

    .venv/bin/python bench/peers.py [--deploys 20] [--contenders temps,nginx,...]

Needs what bench/zero_downtime.py needs, plus Debian's nginx (installed when missing).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from common import (
    Hey,
    ProbeLoop,
    SlowRequest,
    commit_app,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
)
from peers_diy import Deployed, wait_serving
from peers_figures import combine, hey_errors, outcome, print_table
from peers_nginx import nginx_swap
from peers_traefik import traefik_labels

CONTENDERS = ("temps", "nginx", "traefik-labels", "recreate")
SLOW_PER_SWITCH = 2
SETTLED_IN_A_ROW = 10
SETTLE_SECONDS = 60.0
# Eight workers together: about 200 requests a second. Several, so that a few requests stuck
# on an address nothing answers any more (Traefik's Docker provider) leave others probing.
PROBE_EVERY = 0.005
PROBE_WORKERS = 8
LOAD_SECONDS_PER_DEPLOY = 60  # bounds the load of a contender: this much per deploy, plus
LOAD_SECONDS_EXTRA = 120


class Contender(Protocol):
    name: str
    port: int  # its proxy, on 127.0.0.1
    host: str  # the Host header it routes on

    def deploy(self, version: str, near_switch: Callable[[], None]) -> Deployed:
        """Commit `version` and deploy it; call `near_switch()` shortly before the switch."""
        ...


class TempsPush:
    """An app on a temps daemon, deployed by `git push`."""

    def __init__(self, name: str, port: int, host: str, repo: Path, url: str) -> None:
        self.name, self.port, self.host, self.repo, self.url = name, port, host, repo, url

    def deploy(self, version: str, near_switch: Callable[[], None]) -> Deployed:
        commit_app(self.repo, version)
        if self.name == "recreate":
            near_switch()  # the old slot leaves Traefik once the image is built

        def on_line(line: str) -> None:
            # The gate has begun: the switch is at least three probes away.
            if self.name == "temps" and "Health check" in line:
                near_switch()

        pushed = push(self.repo, self.url, on_line=on_line)
        gate = pushed.first("Health check")
        return Deployed(
            pushed.code == 0,
            pushed.started,
            pushed.finished,
            "" if pushed.code == 0 else pushed.output.splitlines()[-1],
            {} if gate is None else {"health_check": round(gate - pushed.started, 3)},
        )


@contextlib.contextmanager
def temps_contender(name: str, profile: bool) -> Iterator[TempsPush]:
    with running_daemon(f"peers-{name}", profile) as daemon:
        app = "peers"
        daemon.create_app(app)
        if name == "recreate":
            with daemon.client() as api:
                settings = {"settings": {"deploy": {"strategy": "recreate"}}}
                api.patch(f"/api/apps/{app}", json=settings).raise_for_status()
        repo = daemon.home.parent / "repos" / app
        yield TempsPush(name, daemon.http_port, f"{app}.{daemon.domain}", repo, daemon.git_url(app))


def started(name: str, args: argparse.Namespace) -> contextlib.AbstractContextManager[Contender]:
    if name in ("temps", "recreate"):
        return temps_contender(name, args.profile)
    if name == "nginx":
        return nginx_swap(args.nginx_drain)
    return traefik_labels()


# --- one contender's deploys under load --------------------------------------------------------


def probe_saw(probe: ProbeLoop, version: str, since: float) -> bool:
    """Whether a request the probe loop sent after `since` was answered by `version`."""
    body = f"version {version}"
    for sample in reversed(probe.samples):  # by arrival: the newest first
        if sample.received < since:
            return False
        if sample.sent >= since and sample.status == 200 and sample.body.strip() == body:
            return True
    return False


def settle(contender: Contender, probe: ProbeLoop, version: str, since: float) -> float | None:
    """Until every answer is the new version's, and the probe loop has seen it too (its
    workers may be stuck for their 5 s timeout): the next deploy starts only then, so each
    deploy's samples are its own. Seconds it took, None if not within SETTLE_SECONDS."""
    began = time.monotonic()
    serving = wait_serving(contender.port, contender.host, version, SETTLED_IN_A_ROW)
    while serving is not None and not probe_saw(probe, version, since):
        if time.monotonic() - began > SETTLE_SECONDS:
            return None
        time.sleep(0.25)
    return None if serving is None else time.monotonic() - began


def one_deploy(contender: Contender, probe: ProbeLoop, version: str, was: str) -> dict[str, Any]:
    slow: list[SlowRequest] = []

    def near_switch() -> None:
        if not slow:
            slow.extend(
                SlowRequest(contender.port, contender.host).start() for _ in range(SLOW_PER_SWITCH)
            )

    deployed = contender.deploy(version, near_switch)
    for request in slow:
        request.wait()
    settled = settle(contender, probe, version, deployed.started) if deployed.ok else None
    return {
        "version": version,
        "was": was,
        "ok": deployed.ok,
        "detail": deployed.detail,
        "started": deployed.started,
        "seconds": round(deployed.finished - deployed.started, 3),
        "steps": deployed.steps,
        "settled_seconds": None if settled is None else round(settled, 3),
        "slow": [request.to_dict() for request in slow],
    }


def measure(contender: Contender, deploys: int, rate: float) -> dict[str, Any]:
    first = contender.deploy("c1", lambda: None)
    if not first.ok:
        raise RuntimeError(f"{contender.name}: the first deploy failed: {first.detail}")
    if wait_serving(contender.port, contender.host, "c1") is None:
        raise RuntimeError(f"{contender.name}: the proxy does not serve the first version")
    budget = LOAD_SECONDS_PER_DEPLOY * deploys + LOAD_SECONDS_EXTRA
    probe = ProbeLoop(
        contender.port,
        contender.host,
        every=PROBE_EVERY,
        workers=PROBE_WORKERS,
        max_seconds=budget,
        max_requests=int(budget / PROBE_EVERY),
    )
    rows: list[dict[str, Any]] = []
    with probe:
        loads = [
            Hey(
                f"http://127.0.0.1:{contender.port}/",
                contender.host,
                workers=4,
                qps_per_worker=rate / 8,  # two hey processes of four workers each
                max_seconds=budget,
                keepalive=keepalive,
            ).start()
            for keepalive in (True, False)
        ]
        try:
            time.sleep(1.0)
            for number in range(2, deploys + 2):
                rows.append(one_deploy(contender, probe, f"c{number}", f"c{number - 1}"))
                print_deploy(rows[-1])
            time.sleep(1.0)
        finally:
            results = [load.stop() for load in loads]
    ended = time.time()
    return outcome(contender.name, rows, probe.samples, results, ended)


# --- printing -----------------------------------------------------------------------------------


def print_deploy(row: dict[str, Any]) -> None:
    statuses = ",".join(str(request["status"]) for request in row["slow"]) or "-"
    print(
        f"    {row['version']:>4s} {'ok' if row['ok'] else 'FAILED':6s} {secs(row['seconds'])}"
        f"  slow {statuses}" + ("" if row["ok"] else f"  {row['detail'][:200]}"),
        flush=True,
    )


def main() -> None:
    args = parse_args(
        "temps, a DIY nginx swap, Traefik's Docker labels and stop-then-start, side by side",
        runs=1,
        deploys=(int, 20, "deploys per contender (default 20)"),
        rate=(float, 440.0, "requests per second asked of hey (default 440)"),
        contenders=(str, ",".join(CONTENDERS), "which, comma-separated (default all four)"),
        nginx_drain=(float, 5.0, "the nginx script's sleep before it stops the old container"),
    )
    chosen = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"unknown contenders {unknown}; choose among {list(CONTENDERS)}")
    report = header("peers", args)
    for run in range(1, args.runs + 1):
        for name in chosen:
            print(f"  run {run}, {name}: {args.deploys} deploys under load", flush=True)
            try:
                with started(name, args) as contender:
                    result = measure(contender, args.deploys, args.rate)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                # One contender that cannot run leaves the others' figures standing.
                print(f"    {name} did not run: {exc}", flush=True)
                report.figures.setdefault("did_not_run", []).append(
                    {"run": run, "contender": name, "error": str(exc)}
                )
                continue
            report.runs.append({"run": run, **result})
            print(f"    hey: {hey_errors(result) or 'no connection errors'}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        runs = [run for run in report.runs if run["contender"] == name]
        if not runs:
            continue
        figures = combine(runs)
        results[name] = figures
        report.figure(
            name,
            figures,
            f"{name}: {figures['non_2xx']} non-2xx and {figures['errors']} connection errors "
            f"of {figures['requests']}; {figures['slow_cut']}/{figures['slow_total']} long "
            f"requests cut; probe failed {figures['probe_failed']} "
            f"{figures['probe_failure_kinds'] or ''}; trigger to live "
            f"{secs(figures['live'].get('median'))}; gap {ms(figures['gap'].get('median'))}",
        )
    print_table(results)
    if "temps" in results:
        temps = results["temps"]
        failed = temps["non_2xx"] + temps["errors"] + temps["slow_cut"] + temps["probe_failed"]
        report.verdict(
            "temps: 0 failed requests, 0 long requests cut",
            failed == 0 and temps["deploys_ok"] == temps["deploys"],
            f"{failed} failed of {temps['requests'] + temps['probe_requests']}",
        )
    report.write()


if __name__ == "__main__":
    main()
