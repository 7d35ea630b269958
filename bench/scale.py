"""scale: one daemon with 100 live apps.

Measured first with one app, then with 100 (99 more pushed in parallel):
- the daemon's memory (VmRSS and VmHWM from /proc), and Traefik's;
- switch latency of one app with 100 route files in Traefik's watched dir (1 ms probe loop,
  as in switch_latency), which includes Traefik's reload of its whole file configuration;
- `GET /api/apps` latency;
- restart reconciliation: SIGTERM the daemon, start it again, time to `/healthz` 200,
  while a probe loop checks the apps keep being served through Traefik.

    .venv/bin/python bench/scale.py [--apps 100] [--deploys 10] [--restarts 3]
"""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from common import (
    ProbeLoop,
    TempsDaemon,
    commit_app,
    daemon_pid,
    header,
    ms,
    parse_args,
    push,
    rss_mb,
    running_daemon,
    secs,
    spread,
    summary,
    traefik_pid,
)
from switch_latency import measure

RECONCILE_TARGET = 5.0
API_TARGET = 0.1  # GET /api/apps, p95


def rss_target_mb(apps: int) -> float:
    """150 MB up to 100 apps (issue 5's target), 200 MB beyond (issue 21's, for 500)."""
    return 150.0 if apps <= 100 else 200.0


PUSH_WORKERS = 6
API_CALLS = 30


def api_latency(daemon: TempsDaemon) -> dict[str, Any]:
    found = []
    with daemon.client() as api:
        for _ in range(API_CALLS):
            started = time.perf_counter()
            response = api.get("/api/apps")
            response.raise_for_status()
            found.append(time.perf_counter() - started)
    return {**summary(found), "apps": len(response.json())}


def docker_proxies() -> dict[str, float]:
    """Docker's userland proxies on this machine (one per published port): how many, and
    their RSS summed, in MiB. temps routes to the containers' bridge addresses and publishes
    nothing unless `--publish-ports` asks."""
    found = {"count": 0.0, "VmRSS": 0.0}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # gone meanwhile
        if text.startswith("Name:\tdocker-proxy\n"):
            found["count"] += 1
            found["VmRSS"] += rss_mb(int(status.parent.name)).get("VmRSS", 0.0)
    return found


def memory(daemon: TempsDaemon) -> dict[str, Any]:
    proxy = traefik_pid(daemon)
    return {
        "daemon": rss_mb(daemon_pid(daemon)),
        "traefik": rss_mb(proxy) if proxy else {},
        "docker_proxies": docker_proxies(),
    }


def restart(daemon: TempsDaemon, watched_app: str) -> dict[str, Any]:
    """Stop the daemon with SIGTERM and start it again; seconds to /healthz 200."""
    assert daemon.process is not None
    with ProbeLoop(daemon.http_port, f"{watched_app}.{daemon.domain}", every=0.005) as loop:
        stopping = time.time()
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(60)
        stopped = time.time()
        with daemon.log_path.open("ab") as log:
            daemon.process = subprocess.Popen(
                daemon.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        spawned = time.time()
        ready = None
        while time.time() - spawned < 60 and daemon.process.poll() is None:
            try:
                if httpx.get(f"{daemon.api_url}/healthz", timeout=2).status_code == 200:
                    ready = time.time()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    if ready is None:
        raise RuntimeError(f"the daemon did not come back:\n{daemon.log_tail()}")
    return {
        "stop": stopped - stopping,
        "reconcile": ready - spawned,
        "probes": len(loop.samples),
        "probe_failures": len(loop.failures()),
    }


def serving(daemon: TempsDaemon, apps: list[str]) -> int:
    """How many of `apps` answer 200 through Traefik."""
    count = 0
    with httpx.Client(base_url=daemon.http_url, timeout=10) as client:
        for app in apps:
            if client.get("/", headers={"Host": f"{app}.{daemon.domain}"}).status_code == 200:
                count += 1
    return count


def deploy_many(daemon: TempsDaemon, names: list[str], work: Path) -> list[float]:
    def one(app: str) -> float:
        repo = work / "repos" / app
        commit_app(repo, f"{app}-1")
        pushed = push(repo, daemon.git_url(app))
        if pushed.code != 0:
            raise RuntimeError(f"push to {app} failed:\n{pushed.output}")
        return pushed.seconds

    for app in names:
        daemon.create_app(app)
    with ThreadPoolExecutor(PUSH_WORKERS) as pool:
        return list(pool.map(one, names))


def phase(daemon: TempsDaemon, tag: str, repo: Path, args: Any) -> dict[str, Any]:
    """The figures for the current number of apps."""
    apps = len(list((daemon.home / "traefik" / "routes").glob("*.json")))
    print(f"  with {apps} app(s):", flush=True)
    found: dict[str, Any] = {"apps": apps, "memory": memory(daemon)}
    mem = found["memory"]
    print(
        f"    daemon RSS {mem['daemon']['VmRSS']:.1f} MiB (peak {mem['daemon']['VmHWM']:.1f}), "
        f"Traefik RSS {mem['traefik'].get('VmRSS', 0):.1f} MiB, "
        f"{mem['docker_proxies']['count']:.0f} docker-proxy processes "
        f"({mem['docker_proxies']['VmRSS']:.1f} MiB)",
        flush=True,
    )
    rows = measure(daemon, "probe", repo, args.deploys, tag)
    found["switch"] = summary([row["latency"] for row in rows])
    found["traefik_part"] = summary([row["traefik_part"] for row in rows])
    found["confirmed_in"] = summary([row["confirmed_in"] for row in rows if row["confirmed_in"]])
    found["switch_rows"] = rows
    print(f"    switch latency: {spread(found['switch'])}", flush=True)
    print(f"    route file -> first new answer: {spread(found['traefik_part'])}", flush=True)
    found["api"] = api_latency(daemon)
    print(f"    GET /api/apps: {spread(found['api'])}", flush=True)
    found["memory_after"] = memory(daemon)
    restarts = [restart(daemon, "probe") for _ in range(args.restarts)]
    found["restarts"] = restarts
    found["reconcile"] = summary([r["reconcile"] for r in restarts])
    found["restart_probe_failures"] = sum(r["probe_failures"] for r in restarts)
    print(
        f"    restart to /healthz 200: {spread(found['reconcile'], secs)}; "
        f"{found['restart_probe_failures']} failed probes through Traefik meanwhile",
        flush=True,
    )
    return found


def main() -> None:
    args = parse_args(
        "100 apps on one daemon",
        runs=1,
        apps=(int, 100, "apps live at once (default 100)"),
        deploys=(int, 10, "switches measured per phase (default 10)"),
        restarts=(int, 3, "daemon restarts measured per phase (default 3)"),
    )
    report = header("scale", args)
    with running_daemon("scale", args.profile) as daemon:
        work = daemon.home.parent
        daemon.create_app("probe")
        repo = work / "repos" / "probe"
        commit_app(repo, "p-1")
        if push(repo, daemon.git_url("probe")).code != 0:
            raise RuntimeError("the first push failed")
        one = phase(daemon, "one", repo, args)

        names = [f"app{index:03d}" for index in range(1, args.apps)]
        started = time.monotonic()
        pushes = deploy_many(daemon, names, work)
        took = time.monotonic() - started
        print(
            f"  pushed {len(names)} more apps in {secs(took)} ({PUSH_WORKERS} at a time; "
            f"each push {spread(summary(pushes), secs)})",
            flush=True,
        )
        many = phase(daemon, "many", repo, args)
        many["serving_after_restarts"] = serving(daemon, ["probe", *names])
        print(f"    apps answering 200 after the restarts: {many['serving_after_restarts']}")
    report.runs = [{"one": one, "many": many, "deploy_many_seconds": took, "pushes": pushes}]
    # The peak is read after the phase's switches and API calls, just before the restarts.
    rss = many["memory_after"]["daemon"]["VmRSS"]
    peak = many["memory_after"]["daemon"]["VmHWM"]
    for key, found in (("rss_one_mb", one), ("rss_mb", many)):
        before, after = found["memory"]["daemon"], found["memory_after"]["daemon"]
        report.figure(
            key,
            {"before": found["memory"], "after": found["memory_after"]},
            f"daemon with {found['apps']} app(s): RSS {before['VmRSS']:.1f} MiB, then "
            f"{after['VmRSS']:.1f} MiB (peak {after['VmHWM']:.1f}) after {args.deploys} "
            f"switches and {API_CALLS} GET /api/apps",
        )
    for key in ("switch", "traefik_part", "confirmed_in", "api", "reconcile"):
        fmt = secs if key == "reconcile" else ms
        report.figure(f"one.{key}", one[key], f"1 app, {key}: {spread(one[key], fmt)}")
        report.figure(
            f"many.{key}", many[key], f"{many['apps']} apps, {key}: {spread(many[key], fmt)}"
        )
    growth = many["switch"]["p95"] / one["switch"]["p95"]
    report.figure(
        "switch_p95_growth", growth, f"switch p95, {many['apps']} apps / 1 app: {growth:.2f}"
    )
    target = rss_target_mb(many["apps"])
    report.verdict(
        f"RSS <= {target:g} MB with {many['apps']} apps",
        peak <= target,
        f"RSS {rss:.1f} MiB, peak {peak:.1f} MiB",
    )
    report.verdict(
        "switch p95 within 2x of 1 app",
        growth <= 2.0,
        f"{ms(many['switch']['p95'])} vs {ms(one['switch']['p95'])} ({growth:.2f}x)",
    )
    api = many["api"]["p95"]
    report.verdict(
        f"GET /api/apps p95 <= {API_TARGET * 1000:g} ms with {many['apps']} apps",
        api <= API_TARGET,
        ms(api),
    )
    worst = many["reconcile"]["max"]
    report.verdict("restart reconciliation <= 5 s", worst <= RECONCILE_TARGET, f"max {secs(worst)}")
    report.write()


if __name__ == "__main__":
    main()
