"""bench/soak.py's figures and verdicts: the trend of each sampled figure over the run (least
squares on the operations done), and the home, images and containers after the first cycle
against the end."""

from __future__ import annotations

import math
import statistics
from typing import Any

from common import Report, secs

TRENDS = {
    "daemon_rss_mib": ("daemon RSS", "MiB", True),
    "daemon_heap_mib": ("daemon heap in use (--heaptrack)", "MiB", True),
    "daemon_anon_mib": ("daemon RSS, anonymous", "MiB", False),
    "daemon_file_mib": ("daemon RSS, mapped files", "MiB", False),
    "daemon_mappings": ("daemon memory mappings", "", False),
    "daemon_fds": ("daemon open fds", "", True),
    "daemon_threads": ("daemon threads", "", True),
    "traefik_rss_mib": ("Traefik RSS", "MiB", False),
    "traefik_fds": ("Traefik open fds", "", False),
    "sqlite_bytes": ("SQLite file (records grow by design)", "KiB", False),
    "git_packs": ("pack files in the apps' repositories", "", False),
}
PEAK_EVERY = 50  # operations: the daemon's most open fds in each such stretch


def trend(points: list[tuple[float, float]]) -> dict[str, Any]:
    """Least squares of a figure on the operations done: its slope per 100 operations, the rise
    that slope makes over the span sampled, and the noise, twice the standard deviation of
    the samples around the line (about 95% of them lie within it)."""
    if len(points) < 3 or len({x for x, _ in points}) < 2:
        return {"n": len(points)}
    xs, ys = [x for x, _ in points], [y for _, y in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    residuals = [y - (slope * x + intercept) for x, y in points]
    deviation = math.sqrt(sum(r * r for r in residuals) / (len(points) - 2))
    span = max(xs) - min(xs)
    return {
        "n": len(points),
        "slope_per_100": slope * 100,
        "rise": slope * span,
        "noise": 2 * deviation,
        "span": span,
        "first": ys[0],
        "last": ys[-1],
        "min": min(ys),
        "max": max(ys),
    }


def flat(stats: dict[str, Any]) -> bool:
    """No growth beyond the noise: the rise the line makes over the span is within it."""
    return "rise" in stats and stats["rise"] <= stats["noise"]


def points(samples: list[dict[str, Any]], key: str, warmup: int) -> list[tuple[float, float]]:
    scale = 1 / 1024 if key == "sqlite_bytes" else 1.0
    return [
        (float(s["done"]), float(s[key]) * scale)
        for s in samples
        if s["done"] >= warmup and s.get(key) is not None
    ]


def trend_line(stats: dict[str, Any], unit: str) -> str:
    if "rise" not in stats:
        return f"too few samples ({stats['n']})"
    unit = f" {unit}" if unit else ""
    return (
        f"{stats['slope_per_100']:+.2f}{unit} per 100 operations; rise over the run "
        f"{stats['rise']:+.2f}{unit} against noise {stats['noise']:.2f}{unit}; "
        f"{stats['first']:.1f} -> {stats['last']:.1f} (min {stats['min']:.1f}, "
        f"max {stats['max']:.1f}, {stats['n']} samples)"
    )


def labelled(samples: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    return next((s for s in samples if s.get("label") == label), None)


def report_figures(report: Report, run: dict[str, Any], warmup: int) -> None:
    rows, samples = run["operations"], run["samples"]
    expected = sum(1 for row in rows if row["ok"])
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["operation"]] = kinds.get(row["operation"], 0) + 1
    report.figure("operations", kinds, f"operations: {len(rows)} {kinds}")
    report.figure("as_expected", expected, f"operations as expected: {expected}/{len(rows)}")
    report.figure("wall_seconds", run["wall_seconds"], f"wall time: {secs(run['wall_seconds'])}")
    total = sum(h["total"] for h in run["hey"])
    failed = sum(h["non_2xx"] + h["error_count"] for h in run["hey"])
    rates = ", ".join(f"{h['app']} {h['rate']:.1f}" for h in run["hey"])
    report.figure("requests", total, f"requests: {total} ({rates} req/s), {failed} failed")
    statuses = [h["statuses"] | h["errors"] for h in run["hey"]]
    report.figure("failed_requests", failed, f"answers per app: {statuses}")
    for key, (text, unit, _judged) in TRENDS.items():
        if not any(key in sample for sample in samples):
            continue  # a figure this run did not take (the heap without --heaptrack)
        stats = trend(points(samples, key, warmup))
        report.figure(f"trend_{key}", stats, f"{text}: {trend_line(stats, unit)}")
    peaks: dict[int, int] = {}
    for sample in samples:
        stretch = sample["done"] // PEAK_EVERY * PEAK_EVERY
        peaks[stretch] = max(peaks.get(stretch, 0), sample.get("daemon_fds") or 0)
    line = ", ".join(f"{stretch}+: {peak}" for stretch, peak in sorted(peaks.items()))
    report.figure("daemon_fds_peaks", peaks, f"daemon open fds, most per {PEAK_EVERY}: {line}")
    series = [s["series"] for s in samples if (s.get("series") or {}).get("buckets") is not None]
    most = max((one["buckets"] for one in series), default=0)
    oldest = max((one["oldest_seconds"] or 0 for one in series), default=0.0)
    report.figure(
        "series_store",
        {"most_buckets": most, "oldest_seconds": oldest},
        f"traffic series stored: at most {most} buckets, the oldest at most {oldest:.0f} s old "
        f"(retention {run.get('series_retention', 0):g} s, forgotten once a minute)",
    )
    zombies = max((s["daemon_children"].get("Z", 0) for s in samples), default=0)
    report.figure("zombies_max", zombies, f"daemon's zombie children, most at once: {zombies}")
    start, end = labelled(samples, "start"), labelled(samples, "end")
    if start is None or end is None:
        report.figure("settled", None, "no sample after the first cycle: nothing to compare")
        return
    # Both taken with no deploy in flight: the process figures without the work's own.
    for key, (text, unit, _judged) in TRENDS.items():
        if key not in start or key not in end:
            continue
        was, now = (points([sample], key, 0)[0][1] for sample in (start, end))
        line = f"{text}, idle: {was:.1f} -> {now:.1f} {unit}".rstrip()
        report.figure(f"idle_{key}", [was, now], line)
    for part in end["home_parts"]:
        was, now = start["home_parts"][part] / 1024, end["home_parts"][part] / 1024
        report.figure(f"home_{part}", [was, now], f"home, {part}: {was:.0f} -> {now:.0f} KiB")
    before, after = start.get("images") or {}, end.get("images") or {}
    report.figure(
        "images",
        [before, after],
        f"images: {before.get('tagged')} -> {after.get('tagged')} tagged, "
        f"{before.get('untagged')} -> {after.get('untagged')} untagged, "
        f"{before.get('bytes', 0) / 2**20:.1f} -> {after.get('bytes', 0) / 2**20:.1f} MiB "
        "(the base image counted in each)",
    )
    containers = [
        {"states": sample.get("containers") or {}, "formations": sample["formations"]}
        for sample in (start, end)
    ]
    line = " -> ".join(
        f"{side['states']} for formations of {side['formations']}" for side in containers
    )
    report.figure("containers", containers, f"containers: {line}")


def report_verdicts(report: Report, warmup: int) -> None:
    figures = report.figures
    failed = figures["failed_requests"]
    report.verdict("0 failed requests", failed == 0, f"{failed} of {figures['requests']}")
    for key, (text, unit, judged) in TRENDS.items():
        stats = figures.get(f"trend_{key}", {})
        if judged and "rise" in stats:  # too few samples: the figure line says so
            report.verdict(
                f"{text}: no growth beyond the first {warmup} operations, within noise",
                flat(stats),
                trend_line(stats, unit),
            )
    if "home_rest" not in figures:
        return
    was, now = figures["home_rest"]
    report.verdict(
        "home's disk use (outside records, git, logs) flat after pruning",
        now <= was,
        f"{was:.0f} -> {now:.0f} KiB after the first cycle -> at the end",
    )
    start, end = figures["images"]
    report.verdict(
        "Docker images of the home flat after pruning",
        end.get("tagged", 0) <= start.get("tagged", 0)
        and end.get("untagged", 0) <= start.get("untagged", 0),
        f"{start.get('tagged')} -> {end.get('tagged')} tagged, "
        f"{start.get('untagged')} -> {end.get('untagged')} untagged",
    )
    sides = figures["containers"]
    report.verdict(
        "containers of the home: the live formations' and no more",
        all(sum(side["states"].values()) == side["formations"] for side in sides),
        " -> ".join(f"{side['states']} for {side['formations']}" for side in sides),
    )
