"""targets: issue 21's next targets that no other bench measures.

- push-to-live with the default gate: a small app whose temps.toml sets only the health path
  (three passes in a row, `interval` 1 s, `recheck_interval` 0.25 s), warm base image, the
  whole `git push` of a new commit, median of --pushes; target <= 1.5 s.
- throughput through temps' Traefik: `hey` without a rate limit (keep-alive, -c 20) straight
  to the container's address on the home's bridge, then through Traefik over HTTP, then over
  HTTPS (pebble's certificate, a daemon of its own), interleaved; the ratio of requests per
  second against the direct figure of the same round; target >= 0.8. (bench/bridge.py sets
  the bridge against ports published on loopback.)

    .venv/bin/python bench/targets.py [--runs 3] [--pushes 5] [--seconds 10]
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from common import (
    TempsDaemon,
    commit_app,
    git,
    header,
    parse_args,
    parse_hey,
    push,
    running_daemon,
    secs,
    spread,
    summary,
    write_file,
)
from switch_latency import secure_daemon, wait_until_secure

PUSH_TARGET = 1.5
RATIO_TARGET = 0.8
DEFAULT_GATE = 'port = 8000\n\n[healthcheck]\npath = "/health"\n\n[deploy]\nbake = 0\n'


def default_gate_commit(repo: Path, version: str) -> None:
    commit_app(repo, version)
    write_file(repo / "temps.toml", DEFAULT_GATE)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{version} with the default gate")


def push_to_live(daemon: TempsDaemon, pushes: int) -> list[float]:
    app = "gate"
    daemon.create_app(app)
    repo = daemon.home.parent / "repos" / app
    default_gate_commit(repo, "v1")
    if push(repo, daemon.git_url(app)).code != 0:  # builds the image layers once: warm
        raise RuntimeError("the first push failed")
    seconds = []
    for number in range(2, pushes + 2):
        default_gate_commit(repo, f"v{number}")
        pushed = push(repo, daemon.git_url(app))
        if pushed.code != 0:
            raise RuntimeError(f"push {number} failed:\n{pushed.output}")
        seconds.append(pushed.seconds)
        print(f"    push v{number}: {pushed.seconds:.2f} s", flush=True)
    return seconds


def hey(url: str, host: str, seconds: int) -> dict[str, Any]:
    command = ["hey", "-z", f"{seconds}s", "-c", "20", "-host", host, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    result = parse_hey(command, done.stdout)
    return {"rate": result.rate, "non_2xx": result.non_2xx, "errors": result.error_count}


def live_app(daemon: TempsDaemon, app: str) -> tuple[str, str]:
    """An app pushed and live; (where Traefik reaches its container, its host name)."""
    daemon.create_app(app)
    repo = daemon.home.parent / "repos" / app
    commit_app(repo, "v1")
    if push(repo, daemon.git_url(app)).code != 0:
        raise RuntimeError(f"the push of {app} failed")
    (web,) = daemon.app(app)["live_release"]["slot"]["web"]
    return f"http://{web.get('address', '127.0.0.1')}:{web['host_port']}/", f"{app}.{daemon.domain}"


def throughput(seconds: int, runs: int) -> list[dict[str, float]]:
    rounds = []
    with running_daemon("targets") as plain, secure_daemon(False) as (secure, tls):
        direct, host = live_app(plain, "thru")
        _secure_direct, secure_host = live_app(secure, "thru")
        wait_until_secure(secure, "thru", tls)
        for run in range(runs):
            figures = {
                "direct": hey(direct, host, seconds),
                "traefik_http": hey(f"{plain.http_url}/", host, seconds),
                "traefik_https": hey(f"{secure.https_url}/", secure_host, seconds),
            }
            rates = {name: round(f["rate"], 1) for name, f in figures.items()}
            print(f"    round {run + 1}: {rates} req/s", flush=True)
            rounds.append(
                {
                    **rates,
                    "http_ratio": figures["traefik_http"]["rate"] / figures["direct"]["rate"],
                    "https_ratio": figures["traefik_https"]["rate"] / figures["direct"]["rate"],
                    "failed": sum(f["non_2xx"] + f["errors"] for f in figures.values()),
                }
            )
    return rounds


def main() -> None:
    args = parse_args(
        __doc__ or "",
        runs=3,
        pushes=(int, 5, "pushes with the default gate"),
        seconds=(int, 10, "seconds of each hey"),
    )
    report = header("targets", args)
    with running_daemon("targets-push") as daemon:
        pushes = summary(push_to_live(daemon, args.pushes))
    report.figure("push_to_live", pushes, f"push to live, default gate: {spread(pushes, secs)}")
    report.verdict(
        f"push-to-live median <= {PUSH_TARGET:g} s with the default gate",
        pushes["median"] <= PUSH_TARGET,
        secs(pushes["median"]),
    )
    rounds = throughput(args.seconds, args.runs)
    report.runs.extend(rounds)
    for name in ("http_ratio", "https_ratio"):
        stats = summary([r[name] for r in rounds])
        line = spread(stats, lambda value: f"{value:.2f}")
        report.figure(name, stats, f"{name.replace('_', ' ')} against direct: {line}")
        report.verdict(
            f"{name.split('_')[0].upper()} through Traefik >= {RATIO_TARGET:g}x of direct",
            stats["median"] >= RATIO_TARGET,
            f"median {stats['median']:.2f}x",
        )
    failed = sum(r["failed"] for r in rounds)
    report.figure("failed", failed, f"non-2xx and errors over every hey: {failed}")
    report.write()


if __name__ == "__main__":
    main()
