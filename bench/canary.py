"""canary: how fast a canary that fails its users is withdrawn, and how many it hurt (issue 19).

A live app (`/cgi-bin/page` answers "version v1") under `hey` at --rate requests per second,
as new clients (hey keeps no cookie). A canary release whose page answers 500 to every fifth
request (its health check passes) is pushed with `strategy = "canary"` at --weight percent.
- time to withdrawal: from the first 500 the canary answered (Traefik's access log, its start
  time) to the release's `failed` event (the split withdrawn and confirmed before it);
- requests hurt: the 500s `hey` received, and the canary's own count in its record.
Then a good canary at the same weight, promoted: its push-to-live and hey's non-2xx (0).

    .venv/bin/python bench/canary.py [--runs 3] [--rate 300] [--weight 10]
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from common import (
    Hey,
    TempsDaemon,
    commit_app,
    event_at,
    git,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    summary,
    write_file,
)

PAGE = "/cgi-bin/page"
GOOD = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nversion {version}\\n'\n"
FAILING = """#!/bin/sh
n=$(( $(cat /tmp/count 2>/dev/null || echo 0) + 1 ))
echo "$n" > /tmp/count
if [ $(( n % 5 )) -eq 0 ]; then
  printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nfailed\\n'
  exit 0
fi
printf 'Content-Type: text/plain\\r\\n\\r\\nversion {version}\\n'
"""
WITHDRAWAL_TARGET = 5.0  # seconds from the first bad request


def commit_canary(repo: Path, version: str, page: str, weight: int) -> None:
    commit_app(repo, version)
    write_file(repo / "www" / "cgi-bin" / "page", page.format(version=version), 0o755)
    toml = (repo / "temps.toml").read_text()
    canary = f"\n[canary]\nweight = {weight}\nduration = 60\nmin_requests = 1000\n"
    write_file(
        repo / "temps.toml", toml.replace("bake = ", 'strategy = "canary"\nbake = ') + canary
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{version} as a canary")


def first_failure(access_log: Path, since: float) -> float | None:
    """The start of the first request answered 500 after `since`, from Traefik's log."""
    first = None
    for line in access_log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("DownstreamStatus") != 500:
            continue
        head, _dot, tail = str(entry["StartUTC"]).rstrip("Z").partition(".")
        at = datetime.fromisoformat(f"{head}.{(tail + '000000')[:6]}+00:00").timestamp()
        if at >= since and (first is None or at < first):
            first = at
    return first


def one_run(daemon: TempsDaemon, app: str, rate: float, weight: int) -> dict[str, Any]:
    repo = daemon.home.parent / "repos" / app
    daemon.create_app(app)
    commit_app(repo, "v1")
    write_file(repo / "www" / "cgi-bin" / "page", GOOD.format(version="v1"), 0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1 page")
    if push(repo, daemon.git_url(app)).code != 0:
        raise RuntimeError("the first push failed")
    workers = 10
    hey = Hey(
        f"{daemon.http_url}{PAGE}",
        f"{app}.{daemon.domain}",
        workers=workers,
        qps_per_worker=rate / workers,
        max_seconds=120,
    ).start()
    try:
        commit_canary(repo, "v2", FAILING, weight)
        bad = push(repo, daemon.git_url(app))
        commit_canary(repo, "v3", GOOD, weight)
        good = push(repo, daemon.git_url(app))
    finally:
        result = hey.stop()
    if bad.code == 0 or good.code != 0:
        raise RuntimeError(f"unexpected outcome:\n{bad.output}\n{good.output}")
    failed = daemon.release(app, 2)
    withdrawn_at = event_at(failed, "failed")
    started = event_at(failed, "canary")
    first_bad = first_failure(daemon.home / "traefik" / "access.log", started or 0.0)
    record = failed["traffic"]["canary"]
    return {
        "withdrawal_seconds": (withdrawn_at - first_bad) if withdrawn_at and first_bad else None,
        "hurt_seen_by_hey": result.statuses.get(500, 0),
        "hurt_in_record": record.get("errors_until_withdrawn"),
        "canary_requests_in_record": record.get("requests_until_withdrawn"),
        "reason": failed["failure_reason"],
        "good_push_seconds": good.seconds,
        "good_state": daemon.release(app, 3)["state"],
        "hey_total": result.total,
        "hey_non_2xx_other_than_the_canary": result.non_2xx - result.statuses.get(500, 0),
        "hey_errors": result.error_count,
        "hey_rate": result.rate,
    }


def main() -> None:
    args = parse_args(
        __doc__ or "",
        runs=3,
        rate=(float, 300.0, "requests per second offered"),
        weight=(int, 10, "the canary's percent"),
    )
    report = header("canary", args)
    with running_daemon("canary") as daemon:
        for run in range(args.runs):
            figures = one_run(daemon, f"canary-{run}", args.rate, args.weight)
            report.runs.append(figures)
            print(f"  run {run + 1}: {figures}", flush=True)
    withdrawal = summary([r["withdrawal_seconds"] for r in report.runs if r["withdrawal_seconds"]])
    hurt = summary([float(r["hurt_seen_by_hey"]) for r in report.runs])
    report.figure(
        "withdrawal", withdrawal, f"first bad request -> withdrawn: {spread(withdrawal, secs)}"
    )
    report.figure(
        "hurt", hurt, f"requests hurt (500s hey got): {spread(hurt, lambda v: f'{v:.0f}')}"
    )
    good = summary([r["good_push_seconds"] for r in report.runs])
    report.figure("good_push", good, f"good canary push-to-live: {spread(good, secs)}")
    others = sum(r["hey_non_2xx_other_than_the_canary"] + r["hey_errors"] for r in report.runs)
    report.figure("others_hurt", others, f"non-2xx and errors besides the canary's 500s: {others}")
    report.verdict(
        f"withdrawn within {WITHDRAWAL_TARGET:g} s of the first bad request",
        withdrawal["max"] <= WITHDRAWAL_TARGET,
        f"median {ms(withdrawal['median'])}, max {ms(withdrawal['max'])}",
    )
    report.verdict("no error outside the canary's own", others == 0, f"{others}")
    report.write()


if __name__ == "__main__":
    main()
