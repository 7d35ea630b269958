"""logs_tail: from a line printed in a container to that line at a `temps logs --tail` client.

The app is the harness's busybox site with one more CGI script, `mark`, which prints
`mark <n>` on the container's stdout (PID 1's, the way the app's own output goes). The bench
asks for marks through Traefik at a steady pace while `--clients` real `temps logs APP --tail
-n 0` processes run, and times each mark's line at each client against
- the engine's timestamp on the line (when dockerd read it from the container: the print,
  to within the pipe), the figure the target is about;
- when the bench sent the request that printed it (an upper bound: it adds the request's
  way through Traefik and the CGI's start).

    .venv/bin/python bench/logs_tail.py [--runs 3] [--marks 200] [--clients 1]
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from common import (
    REPO_ROOT,
    TempsDaemon,
    commit_app,
    git,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    spread,
    summary,
    write_file,
)

TARGET = 0.100  # median, engine's stamp to the client
APP = "ticks"
MARK_CGI = """
n=${QUERY_STRING:-0}
echo "mark $n" > /proc/1/fd/1
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
"""
READY_TIMEOUT = 60.0
TEMPS_BIN = REPO_ROOT / ".venv" / "bin" / "temps"


class Client:
    """One `temps logs --tail -n 0`: each line with the time it arrived."""

    def __init__(self, daemon: TempsDaemon) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
        env |= {"TEMPS_URL": daemon.api_url, "TEMPS_HOME": str(daemon.home)}
        self.process = subprocess.Popen(
            [str(TEMPS_BIN), "logs", APP, "--tail", "-n", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.arrived: dict[int, tuple[float, float]] = {}  # mark -> (arrival, engine stamp)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            now = time.time()
            stamp, _, rest = raw.decode("utf-8", "replace").partition(" ")
            words = rest.split()
            if len(words) == 4 and words[2] == "mark" and words[3].isdigit():
                printed = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                self.arrived[int(words[3])] = (now, printed)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(10)


def mark(daemon: TempsDaemon, n: int) -> float:
    """Ask the app to print `mark n`; when the request went out."""
    sent = time.time()
    answer = daemon.get_app_page(APP, f"/cgi-bin/mark?{n}")
    if answer.status_code != 200:
        raise RuntimeError(f"mark {n}: HTTP {answer.status_code} {answer.text[:200]}")
    return sent


def run_once(daemon: TempsDaemon, marks: int, clients: int, pace: float, first: int) -> Any:
    tails = [Client(daemon) for _ in range(clients)]
    try:
        # Connected once a mark reaches every client.
        deadline = time.monotonic() + READY_TIMEOUT
        warm = first
        while not all(warm in tail.arrived for tail in tails):
            if time.monotonic() > deadline:
                raise RuntimeError("the tails never showed a line")
            warm += 1
            mark(daemon, warm)
            time.sleep(0.2)
        sent: dict[int, float] = {}
        for n in range(warm + 1, warm + 1 + marks):
            sent[n] = mark(daemon, n)
            time.sleep(pace)
        time.sleep(1.0)
    finally:
        for tail in tails:
            tail.close()
    from_print, from_request, missing = [], [], 0
    for tail in tails:
        for n, at in sent.items():
            if n not in tail.arrived:
                missing += 1
                continue
            arrived, printed = tail.arrived[n]
            from_print.append(arrived - printed)
            from_request.append(arrived - at)
    return {"from_print": from_print, "from_request": from_request, "missing": missing,
            "next": warm + marks + 1}  # fmt: skip


def main() -> None:
    args = parse_args(
        "line printed in a container -> the line at `temps logs --tail`",
        runs=3,
        marks=(int, 200, "marks per run (default 200)"),
        clients=(int, 1, "`temps logs --tail` processes at once (default 1)"),
        pace=(float, 0.05, "seconds between marks (default 0.05)"),
    )
    report = header("logs_tail", args)
    with running_daemon("logs_tail", args.profile) as daemon:
        daemon.create_app(APP)
        repo = Path(daemon.home.parent / "repos" / APP)
        commit_app(repo, "v1")
        write_file(repo / "www" / "cgi-bin" / "mark", "#!/bin/sh" + MARK_CGI, 0o755)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "mark")
        pushed = push(repo, daemon.git_url(APP))
        if pushed.code != 0:
            raise RuntimeError(f"push failed:\n{pushed.output}")
        first = 0
        from_print: list[float] = []
        from_request: list[float] = []
        missing = 0
        for run in range(args.runs):
            row = run_once(daemon, args.marks, args.clients, args.pace, first)
            first = row["next"]
            print(
                f"    run {run + 1}: print -> client {spread(summary(row['from_print']))}; "
                f"{row['missing']} missing",
                flush=True,
            )
            report.runs.append({key: row[key] for key in ("from_print", "from_request", "missing")})
            from_print += row["from_print"]
            from_request += row["from_request"]
            missing += row["missing"]
    printed, requested = summary(from_print), summary(from_request)
    report.figure("print_to_client", printed, f"printed -> at the client: {spread(printed)}")
    report.figure("request_to_client", requested, f"request -> at the client: {spread(requested)}")
    report.figure("missing", missing, f"{missing} marks never reached a client")
    report.verdict(
        f"median print -> `temps logs --tail` <= {ms(TARGET)}",
        bool(printed.get("n")) and printed["median"] <= TARGET and missing == 0,
        f"median {ms(printed.get('median'))}, p95 {ms(printed.get('p95'))}, "
        f"{printed.get('n', 0)} lines, {args.clients} client(s), {missing} missing",
    )
    report.write()


if __name__ == "__main__":
    main()
