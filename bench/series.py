"""series: an app's graphs on a daemon whose store holds a busy app's traffic.

A real `temps serve` with `--series-retention` (default a day here); the bench writes
`--hours` of 10 s buckets for `--apps` apps into its store (the first app busy: about
`--rate` requests a second with a spread of latencies; the others quieter), plus a day
beyond the retention, and appends `--lines` access-log lines for the daemon's own reader
to take in. It then measures
- the app page with its hour of graphs: server time of a GET, signed in (target: 200 ms);
- the apps page with its lines;
- the series API's answer for 1h, 6h and 24h: points and bytes;
- how long the reader took to take the appended lines in;
- the series' rows and bytes once the retention has forgotten the old ones;
- the daemon's RSS before the series were filled and after the pages were read.

    .venv/bin/python bench/series.py [--runs 30] [--apps 20] [--rate 500]
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from common import (
    TempsDaemon,
    daemon_pid,
    header,
    ms,
    parse_args,
    rss_mb,
    running_daemon,
    summary,
)

from pipeline.series.buckets import BUCKET_SECONDS, Bucket, floor
from pipeline.settings import Settings
from pipeline.sqlite.store import Store, make_engine

TARGET = 0.200  # the app page with an hour of a busy app's graphs, server time
APP = "busy"
FORGET_WAIT = 75.0  # the daemon forgets old buckets once a minute


def fill(store: Store, apps: list[str], hours: float, rate: float, now: float) -> int:
    """`hours` of buckets for each app (the first at `rate` requests a second), written as
    the reader writes them: one add per 10 minutes of buckets."""
    rng = random.Random(35)
    written = 0
    first = floor(now - hours * 3600)
    for start in range(first, floor(now), 600):
        batch: dict[tuple[str, int], Bucket] = {}
        for index, app in enumerate(apps):
            busy = rate if index == 0 else rate / 50
            for at in range(start, min(start + 600, floor(now)), BUCKET_SECONDS):
                count = max(1, int(rng.gauss(busy * BUCKET_SECONDS, busy)))
                bucket = Bucket()
                for _ in range(40):  # a latency spread, scaled to the bucket's count
                    bucket.add(200, rng.lognormvariate(-3.5, 0.9))
                bucket.latency = [round(n * count / 40) for n in bucket.latency]
                bucket.classes = [int(count * 0.93), int(count * 0.04), int(count * 0.025), 0]
                bucket.classes[3] = count - sum(bucket.classes)
                bucket.restarts = 1 if rng.random() < 0.001 else 0
                batch[(app, at)] = bucket
                written += 1
        store.series.add(batch)
    return written


def access_lines(host: str, count: int, now: float) -> str:
    rng = random.Random(7)
    lines = []
    for index in range(count):
        at = now - 30 + index * 30 / count
        started = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        lines.append(
            json.dumps(
                {
                    "StartUTC": started,
                    "Duration": int(rng.lognormvariate(-3.5, 0.9) * 1e9),
                    "RequestHost": host,
                    "DownstreamStatus": rng.choice((200,) * 20 + (404, 500)),
                    "RouterName": f"{APP}@file",
                    "ServiceURL": "http://10.0.0.2:5000",
                    "RequestMethod": "GET",
                    "RequestPath": "/",
                }
            )
        )
    return "\n".join(lines) + "\n"


def timed_get(client: httpx.Client, path: str, runs: int) -> dict[str, Any]:
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path)
        taken.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return {**summary(taken), "bytes": len(answer.content)}


def series_bytes(db: str) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select count(*) from series_buckets").fetchone()[0]
        try:
            size = connection.execute(
                "select sum(pgsize) from dbstat where name in "
                "('series_buckets', 'sqlite_autoindex_series_buckets_1')"
            ).fetchone()[0]
        except sqlite3.OperationalError:  # SQLite built without dbstat
            size = connection.execute(
                "select sum(length(latency)) + count(*) * 40 from series_buckets"
            ).fetchone()[0]
    return {"rows": int(rows), "bytes": int(size or 0)}


def main() -> None:
    args = parse_args(
        "an app's graphs with a busy hour in the store",
        30,
        apps=(int, 20, "apps with series"),
        rate=(float, 500.0, "requests per second of the busy app"),
        hours=(float, 24.0, "hours of buckets kept (--series-retention)"),
        lines=(int, 100_000, "access-log lines appended for the daemon's reader"),
    )
    report = header("series", args)
    retention = int(args.hours * 3600)
    extra = ["--series-retention", str(retention)]
    with running_daemon("series", args.profile, extra_args=extra) as daemon:
        run(daemon, args, report)
        report.write()  # before the daemon's teardown, which asks Docker


def run(daemon: TempsDaemon, args: Any, report: Any) -> None:
    apps = [APP, *(f"app{i}" for i in range(1, args.apps))]
    for app in apps:
        daemon.create_app(app)
    pid = daemon_pid(daemon)
    with httpx.Client(base_url=daemon.api_url, timeout=60) as client:
        signed = client.post("/dashboard/login", data={"token": daemon.admin_token})
        assert signed.status_code in (200, 303), signed.status_code
        for path in (f"/dashboard/apps/{APP}", "/dashboard"):
            client.get(path)  # templates loaded: what stays in memory anyway
        before = rss_mb(pid)
        report.figure("rss_before_mb", before, f"daemon RSS before the series: {before}")
        settings = Settings(home=daemon.home)
        store = Store(make_engine(settings.db_url))
        now = time.time()
        started = time.perf_counter()
        written = fill(store, apps, args.hours + 24, args.rate, now)
        report.figure(
            "filled",
            {"buckets": written, "seconds": round(time.perf_counter() - started, 1)},
            f"wrote {written:,} buckets ({args.hours + 24:g} h x {len(apps)} apps)",
        )
        # The daemon's reader takes in what Traefik would have written.
        counted = sum(
            b.requests for _, b in store.series.buckets(store.get_app(APP), now - 40, now + 10)
        )
        with open(settings.access_log, "a") as log:
            log.write(access_lines(f"{APP}.{daemon.domain}", args.lines, now))
        appended = time.monotonic()
        while time.monotonic() - appended < 120:
            total = sum(
                b.requests for _, b in store.series.buckets(store.get_app(APP), now - 40, now + 10)
            )
            if total - counted >= args.lines:
                break
            time.sleep(0.2)
        took = time.monotonic() - appended
        report.figure(
            "reader",
            {"lines": args.lines, "seconds": round(took, 2), "counted": total - counted},
            f"reader took in {total - counted:,} of {args.lines:,} lines within {took:.1f} s "
            f"(reads every 5 s)",
        )
        page = timed_get(client, f"/dashboard/apps/{APP}", args.runs)
        report.figure("app_page", page, f"app page, 1h: median {ms(page['median'])}, "
                      f"p95 {ms(page['p95'])}, {page['bytes']:,} bytes")  # fmt: skip
        report.verdict(
            f"app page with an hour of a busy app <= {TARGET * 1000:.0f} ms",
            page["median"] <= TARGET,
            f"median {ms(page['median'])}, max {ms(page['max'])}",
        )
        day = timed_get(client, f"/dashboard/apps/{APP}?range=24h", max(5, args.runs // 3))
        report.figure("app_page_24h", day, f"app page, 24h: median {ms(day['median'])}")
        home = timed_get(client, "/dashboard", max(5, args.runs // 3))
        report.figure(
            "apps_page", home, f"apps page, {len(apps)} lines: median {ms(home['median'])}"
        )
        headers = {"Authorization": f"Bearer {daemon.admin_token}"}
        sizes = {}
        for name in ("1h", "6h", "24h"):
            answer = client.get(f"/api/apps/{APP}/series", params={"range": name}, headers=headers)
            document = answer.json()
            sizes[name] = {"points": len(document["points"]), "step": document["step"],
                           "bytes": len(answer.content)}  # fmt: skip
        report.figure("api", sizes, f"series API: {sizes}")
        waited = time.monotonic()
        oldest_allowed = time.time() - args.hours * 3600 - BUCKET_SECONDS
        while time.monotonic() - waited < FORGET_WAIT:
            with sqlite3.connect(settings.db_path) as connection:
                oldest = connection.execute("select min(at) from series_buckets").fetchone()[0]
            if oldest is not None and oldest >= oldest_allowed - 60:
                break
            time.sleep(1)
        after = series_bytes(settings.db_path.as_posix())
        report.figure(
            "store",
            {"written": written, "after_retention": after},
            f"series store: {written:,} buckets written, {after['rows']:,} rows / "
            f"{after['bytes'] / 2**20:.1f} MiB kept after the retention",
        )
        expected_rows = len(apps) * int(args.hours * 3600) // BUCKET_SECONDS
        report.verdict(
            f"retention keeps at most {args.hours:g} h of buckets",
            after["rows"] <= expected_rows + 2 * len(apps) * 60,
            f"{after['rows']:,} rows for {expected_rows:,} expected",
        )
        filled = rss_mb(pid)
        report.figure("rss_filled_mb", filled, f"daemon RSS with the series, pages read: {filled}")
        for _ in range(3):
            timed_get(client, f"/dashboard/apps/{APP}", args.runs)
            timed_get(client, f"/dashboard/apps/{APP}?range=24h", 5)
        rss = rss_mb(pid)
        report.figure("rss_after_mb", rss, f"daemon RSS after 3 more rounds of pages: {rss}")
        grown = rss["VmRSS"] - filled["VmRSS"]
        report.verdict(
            "RSS does not grow with the series (3 more rounds of pages)",
            grown < 5,
            f"{grown:+.1f} MiB; {filled['VmRSS'] - before['VmRSS']:+.1f} MiB from before the "
            "series to the first pages",
        )
        store.engine.dispose()


if __name__ == "__main__":
    main()
