"""deploy_overhead: `git push` to live with temps, against a hand-written shell deploy
(bench/baseline_deploy.sh: docker build, docker run, 3 probes with curl, Traefik file into a
second Traefik's watched dir, wait for its API and one request through it, stop the old
container), on the same small app with the same health settings, in interleaved runs.

Both sides are timed to their answer, the moment the new release is live: temps answers the
pusher once the old slot is drained and stops it afterwards, and the script stops its old
container after printing its `switched` step. Both stop the old container before the next
run starts, so no run overlaps the previous one's teardown.

temps' own time is given two ways: from the release's event timestamps (queued -> live, less
the build, boot and gate steps: queueing, the switch and its confirmation, the drain), and on
the pusher's clock (the whole `git push` less the same three steps, which adds receiving the
push, the traffic report and answering git).

    .venv/bin/python bench/deploy_overhead.py [--runs 5]
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    REPO_ROOT,
    TempsDaemon,
    commit_app,
    event_at,
    header,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    step_seconds,
    summary,
)

from pipeline.settings import Address, Settings
from pipeline.traefik.config import static_config
from pipeline.traefik.documents import render
from pipeline.traefik.homefile import ensure_default_certificate
from tests.support.daemon import free_port
from tests.support.dockercli import docker, lines

SCRIPT = REPO_ROOT / "bench" / "baseline_deploy.sh"
RATIO_TARGET = 1.2
OWN_TARGET = 0.5


class BaselineTraefik:
    """A second Traefik with temps' own static settings, for the shell baseline."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings(
            home=home,
            http=Address("127.0.0.1", free_port()),
            traefik_api=Address("127.0.0.1", free_port()),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        settings = self.settings
        settings.make_dirs()
        ensure_default_certificate(settings)
        settings.traefik_static_config.write_bytes(render(static_config(settings)))
        with open(settings.traefik_dir / "traefik.out", "ab") as output:
            self.process = subprocess.Popen(
                [str(settings.traefik_bin), f"--configFile={settings.traefik_static_config}"],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{settings.traefik_api.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the baseline's Traefik did not answer /ping")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Baseline:
    def __init__(self, traefik: BaselineTraefik, app: str, repo: Path) -> None:
        self.traefik, self.app, self.repo = traefik, app, repo
        self.live: str | None = None

    def deploy(self, release: str) -> dict[str, Any]:
        settings = self.traefik.settings
        command = [
            "bash",
            str(SCRIPT),
            self.app,
            str(self.repo),
            release,
            str(settings.dynamic_dir),
            str(settings.staging_dir),
            settings.traefik_api.url,
            settings.http.url,
        ]
        if self.live:
            command.append(f"baseline-{self.app}-{self.live}")
        started = time.time()
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        finished = time.time()
        if done.returncode != 0:
            raise RuntimeError(f"baseline deploy failed:\n{done.stdout}{done.stderr}")
        self.live = release
        steps = {}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "step":
                steps[parts[1]] = float(parts[2])
        build = steps["built"] - steps["start"]
        boot = steps["booted"] - steps["built"]
        gate = steps["healthy"] - steps["booted"]
        total = steps["switched"] - started  # live: what follows is the old container's stop
        return {
            "total": total,
            "build": build,
            "boot": boot,
            "gate": gate,
            "switch": steps["switched"] - steps["healthy"],
            "stop_old": steps["done"] - steps["switched"],
            "script_exit": finished - started,
            "own": total - build - boot - gate,
        }

    def remove(self) -> None:
        names = lines(docker("ps", "-aq", "--filter", f"name=baseline-{self.app}-", check=False))
        if names:
            docker("rm", "-f", *names, check=False)
        images = lines(
            docker("images", f"temps-baseline/{self.app}", "--format", "{{.ID}}", check=False)
        )
        if images:
            docker("rmi", "-f", *sorted(set(images)), check=False)


def temps_deploy(daemon: TempsDaemon, app: str, repo: Path) -> dict[str, Any]:
    pushed = push(repo, daemon.git_url(app))
    if pushed.code != 0:
        raise RuntimeError(f"temps push failed:\n{pushed.output}")
    releases = daemon.releases(app)
    release = releases[0]
    old_gone = wait_until_removed([r["container"] for r in releases[1:2] if r["container"]])
    steps = step_seconds(release)
    build, boot, gate = (steps.get(k, 0.0) for k in ("building", "booting", "health_checking"))
    queued, live = event_at(release, "queued"), event_at(release, "live")
    assert queued is not None and live is not None
    return {
        "release": release["version"],
        "total": pushed.seconds,
        "build": build,
        "boot": boot,
        "gate": gate,
        "receive": queued - pushed.started,
        "queued": steps.get("queued", 0.0),
        "switch": steps.get("switching", 0.0),
        "drain": steps.get("draining", 0.0),
        "after_live": pushed.finished - live,
        "own": pushed.seconds - build - boot - gate,
        "own_recorded": (live - queued) - build - boot - gate,
        "old_stopped_after_answer": old_gone - pushed.finished,
    }


def wait_until_removed(names: list[str], timeout: float = 30.0) -> float:
    """When the containers are gone (polled every 20 ms, outside the timed push)."""
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        present = set(lines(docker("ps", "-a", "--format", "{{.Names}}", check=False)))
        if not present & set(names):
            break
        time.sleep(0.02)
    return time.time()


def main() -> None:
    args = parse_args("push-to-live against a hand-written docker+curl deploy", runs=5)
    report = header("deploy_overhead", args)
    temps_rows: list[dict[str, Any]] = []
    base_rows: list[dict[str, Any]] = []
    with running_daemon("deploy_overhead", args.profile) as daemon:
        work = daemon.home.parent
        traefik = BaselineTraefik(work / "baseline")
        traefik.start()
        baseline = Baseline(traefik, f"base{os.getpid()}", work / "repos" / "baseline")
        try:
            app = "small"
            daemon.create_app(app)
            repo = work / "repos" / app
            commit_app(repo, "t1")
            temps_deploy(daemon, app, repo)
            commit_app(baseline.repo, "b1")
            baseline.deploy("v1")
            for run in range(args.runs):
                order = ["temps", "baseline"] if run % 2 == 0 else ["baseline", "temps"]
                for side in order:
                    if side == "temps":
                        commit_app(repo, f"t{run + 2}")
                        row = temps_deploy(daemon, app, repo)
                        temps_rows.append(row)
                    else:
                        commit_app(baseline.repo, f"b{run + 2}")
                        row = baseline.deploy(f"v{run + 2}")
                        base_rows.append(row)
                    print(
                        f"    run {run + 1} {side:8s} total {secs(row['total'])}: "
                        f"build {secs(row['build'])}, boot {secs(row['boot'])}, "
                        f"gate {secs(row['gate'])}, rest {secs(row['own'])}",
                        flush=True,
                    )
        finally:
            traefik.stop()
            baseline.remove()

    report.runs = [{"temps": t, "baseline": b} for t, b in zip(temps_rows, base_rows, strict=True)]
    figures: dict[str, Any] = {}
    for side, rows in (("temps", temps_rows), ("baseline", base_rows)):
        for key in rows[0]:
            if key != "release":
                figures[f"{side}.{key}"] = summary([row[key] for row in rows])
        print(f"  {side}:", flush=True)
        for key in ("total", "build", "boot", "gate", "own"):
            report.figure(
                f"{side}.{key}",
                figures[f"{side}.{key}"],
                f"  {key:6s} {spread(figures[f'{side}.{key}'], secs)}",
            )
    print("  temps' own time, by part:", flush=True)
    for key in (
        "receive",
        "queued",
        "switch",
        "drain",
        "after_live",
        "own_recorded",
        "old_stopped_after_answer",
    ):
        report.figure(
            f"temps.{key}",
            figures[f"temps.{key}"],
            f"  {key:12s} {spread(figures[f'temps.{key}'], secs)}",
        )
    pair_ratios = [t["total"] / b["total"] for t, b in zip(temps_rows, base_rows, strict=True)]
    ratio = figures["temps.total"]["median"] / figures["baseline.total"]["median"]
    report.figure("ratio", ratio, f"push-to-live / baseline, medians: {ratio:.2f}")
    report.figure(
        "pair_ratios",
        summary(pair_ratios),
        f"per interleaved pair: {spread(summary(pair_ratios), lambda v: f'{v:.2f}')}",
    )
    recorded = figures["temps.own_recorded"]["median"]
    own = figures["temps.own"]["median"]
    report.verdict("ratio <= 1.2", ratio <= RATIO_TARGET, f"{ratio:.2f}")
    report.verdict(
        "temps' own time <= 0.5 s, from the event timestamps (queued -> live)",
        recorded <= OWN_TARGET,
        f"median {secs(recorded)} outside build/boot/gate",
    )
    report.verdict(
        "temps' own time <= 0.5 s, on the pusher's clock (whole git push)",
        own <= OWN_TARGET,
        f"median {secs(own)} outside build/boot/gate, of which live -> git's exit "
        f"{secs(figures['temps.after_live']['median'])}",
    )
    report.write()


if __name__ == "__main__":
    main()
