"""previews: push to live of a branch made a preview, and of an update to it, beside a push to
main of an app already live (issue 32).

One app with `[preview] enabled = true` on main, the harness's busybox site (a Dockerfile
`FROM` the local busybox image, `COPY www`): every build answers from the cache but for the
one small layer of the site's files, so the figures are temps' own work around a build that
costs next to nothing, not a compile. Each run pushes, in an order that turns (main first on
even runs, last on odd ones):

- main: a new commit of the app, live already (blue-green of the app);
- new: a new branch, so temps makes its preview (name, repository borrowing the app's
  objects, host) and deploys its first release;
- update: a second commit on that branch (blue-green of the preview);

then deletes the branch (`git push <url> :<branch>`), which destroys the preview: every run's
new branch makes a preview, and one preview at most exists at a time (the default cap is 10).

Each push is timed as the pusher sees it, from `git push` to its exit (the push follows the
deploy until the release is live), and to the first answer with the new commit's page at the
app's or the preview's host through Traefik (a request every 5 ms on one keep-alive
connection, started with the push). From the release's records: push start -> queued (the
pack received, and for a new branch the preview made), the build, boot, gate, switch and
drain steps; `rest` is the push less build, boot and gate (temps' own time, as in
bench/deploy_overhead.py). The preview's making (its record, name, repository and host) is
push -> queued of the new branch less that of its update, run by run. One warm-up run first,
not counted.

    .venv/bin/python bench/previews.py [--runs 7] [--minutes 20]
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from common import (
    ProbeLoop,
    Push,
    event_at,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
    step_seconds,
    summary,
)

from tests.support.apprepo import git, make_app_repo
from tests.support.daemon import TempsDaemon

APP = "shop"
PREVIEWS_ON = {"preview": {"enabled": True}}
KINDS = ("main", "new", "update")
ABOUT = {
    "main": "main, app live (blue-green)",
    "new": "new branch (preview made)",
    "update": "branch update (blue-green)",
}
RECORDED = ("queued", "build", "boot", "gate", "switch", "drain", "rest")
PROBE_EVERY = 0.005
ANSWER_WAIT = 30.0  # after the push returns, at most this long for the new page


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.9 * len(ordered))) - 1]


def stats(values: list[float]) -> dict[str, Any]:
    found = summary(values)
    return found | {"p90": p90(values)} if values else found


def timed_push(
    daemon: TempsDaemon, repo: Path, refspec: str, host_app: str, version: str
) -> tuple[Push, float]:
    """`git push` of `refspec`, with a probe loop on `host_app`'s host from the push's start:
    the push, and seconds from its start to the first answer of `version`'s page."""
    page = f"version {version}"
    host = f"{host_app}.{daemon.domain}"
    with ProbeLoop(daemon.http_port, host, every=PROBE_EVERY, workers=1, max_seconds=300) as loop:
        pushed = push(repo, daemon.git_url(APP), refspec)
        if pushed.code != 0:
            raise RuntimeError(f"push of {refspec} failed:\n{pushed.output}")
        deadline = time.monotonic() + ANSWER_WAIT
        while loop.first(body=page) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        loop.stop()
        answered = loop.first(body=page)
    if answered is None:
        raise RuntimeError(f"{host} did not answer {page!r} within {ANSWER_WAIT:g} s of the push")
    return pushed, answered.received - pushed.started


def figures_of(daemon: TempsDaemon, app: str, pushed: Push, answer: float) -> dict[str, float]:
    release = daemon.releases(app)[0]
    if release["state"] != "live":
        raise RuntimeError(f"{app} v{release['number']} is {release['state']}, not live")
    steps = step_seconds(release)
    build, boot, gate = (steps.get(k, 0.0) for k in ("building", "booting", "health_checking"))
    queued = event_at(release, "queued")
    return {
        "push": pushed.seconds,
        "answer": answer,
        "queued": (queued - pushed.started) if queued is not None else math.nan,
        "build": build,
        "boot": boot,
        "gate": gate,
        "switch": steps.get("switching", 0.0),
        "drain": steps.get("draining", 0.0),
        "rest": pushed.seconds - build - boot - gate,
    }


def previews(daemon: TempsDaemon) -> list[dict[str, Any]]:
    with daemon.client() as api:
        listed: list[dict[str, Any]] = api.get(f"/api/apps/{APP}/previews").json()
    return listed


def push_main(daemon: TempsDaemon, repo: Path, version: str) -> dict[str, float]:
    git(repo, "checkout", "-q", "main")
    make_app_repo(repo, version, settings=PREVIEWS_ON)
    pushed, answer = timed_push(daemon, repo, "main:main", APP, version)
    return figures_of(daemon, APP, pushed, answer)


def push_branch(
    daemon: TempsDaemon, repo: Path, branch: str, version: str, *, new: bool
) -> dict[str, float]:
    """A commit on `branch` (made from main when `new`), pushed; its preview must be live."""
    name = f"{branch}--{APP}"
    git(repo, "checkout", "-q", *(["-b", branch, "main"] if new else [branch]))
    try:
        make_app_repo(repo, version, settings=PREVIEWS_ON)
        pushed, answer = timed_push(daemon, repo, f"{branch}:{branch}", name, version)
    finally:
        git(repo, "checkout", "-q", "main")
    listed = [p["name"] for p in previews(daemon) if p["branch"] == branch]
    if listed != [name]:
        raise RuntimeError(f"the preview of {branch} is {listed}, not {name}")
    return figures_of(daemon, name, pushed, answer)


def delete_branch(daemon: TempsDaemon, repo: Path, branch: str) -> float:
    """`git push <url> :<branch>`, which destroys the preview before it returns."""
    pushed = push(repo, daemon.git_url(APP), f":{branch}")
    git(repo, "branch", "-q", "-D", branch)
    if pushed.code != 0 or previews(daemon):
        raise RuntimeError(f"deleting {branch} left {previews(daemon)}:\n{pushed.output}")
    return pushed.seconds


def one_run(daemon: TempsDaemon, repo: Path, run: int) -> dict[str, Any]:
    branch = f"topic-{run}"
    row: dict[str, Any] = {}
    if run % 2 == 0:
        row["main"] = push_main(daemon, repo, f"m{run}")
    row["new"] = push_branch(daemon, repo, branch, f"b{run}a", new=True)
    row["update"] = push_branch(daemon, repo, branch, f"b{run}b", new=False)
    if run % 2 == 1:
        row["main"] = push_main(daemon, repo, f"m{run}")
    row["delete"] = delete_branch(daemon, repo, branch)
    return row


def row_line(label: str, values: dict[str, Any], main: dict[str, Any] | None) -> str:
    cells = [label]
    for what in ("push", "answer"):
        found = values[what]
        cells += [secs(found[key]) for key in ("median", "p90", "min", "max")]
    for what in ("push", "answer"):
        ratio = values[what]["median"] / main[what]["median"] if main else 1.0
        cells.append(f"{ratio:.2f}x")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    args = parse_args(
        __doc__ or "",
        runs=7,
        minutes=(float, 20.0, "stop starting runs after this many minutes (default 20)"),
    )
    report = header("previews", args)
    with running_daemon("previews") as daemon:
        daemon.create_app(APP)
        repo = daemon.home.parent / "repos" / APP
        make_app_repo(repo, "m-first", settings=PREVIEWS_ON)
        first = push(repo, daemon.git_url(APP))
        if first.code != 0:
            raise RuntimeError(f"the first push failed:\n{first.output}")
        warm = one_run(daemon, repo, 0)
        report.figures["warm_up"] = warm
        print("    warm-up: " + ", ".join(f"{k} {secs(warm[k]['push'])}" for k in KINDS))
        deadline = time.monotonic() + args.minutes * 60
        for run in range(1, args.runs + 1):
            if time.monotonic() > deadline:
                print(f"    {args.minutes:g} minutes passed: {run - 1} runs", flush=True)
                break
            row = one_run(daemon, repo, run)
            report.runs.append(row)
            print(
                f"    run {run}: "
                + ", ".join(f"{k} {secs(row[k]['push'])} / {secs(row[k]['answer'])}" for k in KINDS)
                + f", delete {secs(row['delete'])}",
                flush=True,
            )
    table: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        table[kind] = {
            what: stats([row[kind][what] for row in report.runs])
            for what in ("push", "answer", *RECORDED)
        }
        report.figure(
            kind,
            table[kind],
            f"{ABOUT[kind]}: push to live median {secs(table[kind]['push']['median'])}, "
            f"new page answers {secs(table[kind]['answer']['median'])}",
        )
    report.figure(
        "delete",
        stats([row["delete"] for row in report.runs]),
        f"git push :branch (preview destroyed): median "
        f"{secs(stats([row['delete'] for row in report.runs])['median'])}",
    )
    making = stats([row["new"]["queued"] - row["update"]["queued"] for row in report.runs])
    report.figure(
        "making",
        making,
        f"push -> queued, new branch less update, run by run (the preview's making): median "
        f"{ms(making['median'])}, min {ms(making['min'])}, max {ms(making['max'])}",
    )
    for kind in ("new", "update"):
        for what in ("push", "answer"):
            ratio = table[kind][what]["median"] / table["main"][what]["median"]
            report.figures[f"ratio.{kind}.{what}"] = ratio
    print(f"\n  {len(report.runs)} runs; times from the start of `git push`:\n")
    print(
        "| push | to live, median | p90 | min | max | new page answers, median | p90 | min "
        "| max | to live / main | answers / main |"
    )
    print("| --- " * 11 + "|")
    for kind in KINDS:
        print(row_line(ABOUT[kind], table[kind], None if kind == "main" else table["main"]))
    print("\n  medians of the release's records:\n")
    print("| push | push -> queued | build | boot | gate | switch | drain | rest of the push |")
    print("| --- " * 8 + "|")
    for kind in KINDS:
        steps = [secs(table[kind][w]["median"]) for w in RECORDED]
        print(f"| {ABOUT[kind]} | " + " | ".join(steps) + " |")
    report.write()


if __name__ == "__main__":
    main()
