"""bench/peers.py's figures: what the probe loop saw of each deploy, a contender's totals, and
the table that sets the contenders side by side."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from common import HeyResult, Sample, ms, secs, summary


def is_ok(sample: Sample) -> bool:
    return sample.status is not None and 200 <= sample.status < 300


def failure_kind(sample: Sample) -> str:
    return str(sample.status) if sample.status is not None else sample.body.split(":")[0]


def judge(row: dict[str, Any], samples: list[Sample]) -> None:
    """Add the probe loop's view of one deploy to its row; `samples` are those sent between
    its trigger and the next deploy's, by arrival."""
    old, new = f"version {row['was']}", f"version {row['version']}"
    old_at = [s.received for s in samples if is_ok(s) and s.body.strip() == old]
    news = [s for s in samples if is_ok(s) and s.body.strip() == new]
    # Live: when the first request the new version answered was sent, since the proxy chose
    # its server then (a request stuck on a dead address would otherwise push it later).
    # The gap is what clients waited, so it goes by arrival.
    live = min((s.sent for s in news), default=None)
    first_new = min((s.received for s in news), default=None)
    last_old = max(old_at) if old_at else None
    # The switch as clients saw it: the first answer that was not the old version's.
    switch = next((s.received for s in samples if not (is_ok(s) and s.body.strip() == old)), None)
    row["live_seconds"] = None if live is None else round(live - row["started"], 3)
    # Negative: both versions answered side by side for a while.
    gap = None if first_new is None or last_old is None else first_new - last_old
    row["gap_seconds"] = None if gap is None else round(gap, 4)
    good = [s.received for s in samples if is_ok(s)]
    row["longest_without_2xx"] = (
        round(max(b - a for a, b in itertools.pairwise(good)), 4) if len(good) > 1 else None
    )
    row["probe_failures"] = dict(Counter(failure_kind(s) for s in samples if not is_ok(s)))
    for request in row["slow"]:
        request["cut"] = request["status"] != 200
        ended = request["sent"] + request["seconds"]
        request["in_flight_at_switch"] = switch is not None and request["sent"] < switch < ended


def non_2xx_by_status(loads: list[HeyResult]) -> dict[int, int]:
    found: Counter[int] = Counter()
    for load in loads:
        found.update({code: n for code, n in load.statuses.items() if not 200 <= code < 300})
    return dict(found)


def outcome(
    name: str,
    rows: list[dict[str, Any]],
    samples: list[Sample],
    loads: list[HeyResult],
    ended: float,
) -> dict[str, Any]:
    for index, row in enumerate(rows):
        until = rows[index + 1]["started"] if index + 1 < len(rows) else ended
        judge(row, [s for s in samples if row["started"] <= s.sent < until])
    slow = [request for row in rows for request in row["slow"]]
    failed = [s for s in samples if not is_ok(s)]
    return {
        "contender": name,
        "deploys": rows,
        "deploys_ok": sum(1 for row in rows if row["ok"]),
        "hey": [
            {
                "command": load.command,
                "statuses": load.statuses,
                "errors": load.errors,
                "rate": load.rate,
                "total": load.total,
            }
            for load in loads
        ],
        "requests": sum(load.total for load in loads),
        "rate": sum(load.rate for load in loads),
        "non_2xx": sum(load.non_2xx for load in loads),
        "non_2xx_by_status": non_2xx_by_status(loads),
        "errors": sum(load.error_count for load in loads),
        "probe": {
            "requests": len(samples),
            "failed": len(failed),
            "kinds": dict(Counter(failure_kind(s) for s in failed)),
        },
        "slow_total": len(slow),
        "slow_cut": sum(1 for request in slow if request["cut"]),
        "slow_in_flight_at_switch": sum(1 for request in slow if request["in_flight_at_switch"]),
        "live_seconds": [row["live_seconds"] for row in rows if row["live_seconds"] is not None],
        "longest_without_2xx": [
            row["longest_without_2xx"] for row in rows if row["longest_without_2xx"] is not None
        ],
        "gap_seconds": [
            max(0.0, row["gap_seconds"]) for row in rows if row["gap_seconds"] is not None
        ],
    }


def hey_errors(result: dict[str, Any]) -> str:
    texts = Counter[str]()
    for load in result["hey"]:
        for text, count in load["errors"].items():
            texts[text[:90]] += count
    return "; ".join(f"{n}x {text}" for text, n in texts.most_common(3))


def print_table(results: dict[str, dict[str, Any]]) -> None:
    columns = (
        "contender",
        "deploys",
        "requests",
        "req/s",
        "non-2xx",
        "conn err",
        "slow cut",
        "probe failed",
        "trigger->live",
        "gap median (max)",
    )
    rows = [columns]
    for name, figures in results.items():
        live, gap = figures["live"], figures["gap"]
        rows.append(
            (
                name,
                f"{figures['deploys_ok']}/{figures['deploys']}",
                str(figures["requests"]),
                f"{figures['rate'].get('median', 0):.0f}",
                str(figures["non_2xx"]),
                str(figures["errors"]),
                f"{figures['slow_cut']}/{figures['slow_total']}",
                f"{figures['probe_failed']}/{figures['probe_requests']}",
                secs(live.get("median")),
                f"{ms(gap.get('median'))} ({ms(gap.get('max'))})",
            )
        )
    widths = [max(len(row[index]) for row in rows) for index in range(len(columns))]
    print()
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  " + "  ".join(cells), flush=True)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender's figures over every run."""
    probe_kinds: Counter[str] = Counter()
    for run in runs:
        probe_kinds.update(run["probe"]["kinds"])
    return {
        "deploys": sum(len(run["deploys"]) for run in runs),
        "deploys_ok": sum(run["deploys_ok"] for run in runs),
        "requests": sum(run["requests"] for run in runs),
        "rate": summary([run["rate"] for run in runs]),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "slow_cut": sum(run["slow_cut"] for run in runs),
        "slow_total": sum(run["slow_total"] for run in runs),
        "slow_in_flight_at_switch": sum(run["slow_in_flight_at_switch"] for run in runs),
        "probe_requests": sum(run["probe"]["requests"] for run in runs),
        "probe_failed": sum(run["probe"]["failed"] for run in runs),
        "probe_failure_kinds": dict(probe_kinds),
        "live": summary([value for run in runs for value in run["live_seconds"]]),
        "gap": summary([value for run in runs for value in run["gap_seconds"]]),
        "longest_without_2xx": summary(
            [value for run in runs for value in run["longest_without_2xx"]]
        ),
    }
