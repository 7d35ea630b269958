"""bridge: issue 29's first step, Traefik routing to the container's address on the home's
bridge against a port Docker publishes on loopback (the path before, `--publish-ports`).

Two daemons side by side, the same app live on each: one routes to its container on the
bridge, the other (`--publish-ports`) to its container's published port, through Docker's
proxy. Each round runs `hey` without a rate limit (keep-alive, -c 20) four times, in an order
that turns from round to round: straight to each container (its bridge address; its published
port) and through each daemon's Traefik over HTTP. Per round, requests per second of each and
the ratios of the same round; the figures are medians over the rounds. On a machine shared
with other work, only the ratios within a round mean much.

    .venv/bin/python bench/bridge.py [--runs 6] [--seconds 6]
"""

from __future__ import annotations

from common import header, parse_args, running_daemon, spread, summary
from targets import hey, live_app

PATHS = ("direct_bridge", "direct_published", "traefik_bridge", "traefik_published")


def main() -> None:
    args = parse_args(__doc__ or "", runs=6, seconds=(int, 6, "seconds of each hey"))
    report = header("bridge", args)
    with (
        running_daemon("bridge") as bridged,
        running_daemon("bridge-published", extra_args=["--publish-ports"]) as published,
    ):
        bridge_url, bridge_host = live_app(bridged, "thru")
        published_url, published_host = live_app(published, "thru")
        targets = {
            "direct_bridge": (bridge_url, bridge_host),
            "direct_published": (published_url, published_host),
            "traefik_bridge": (f"{bridged.http_url}/", bridge_host),
            "traefik_published": (f"{published.http_url}/", published_host),
        }
        print(f"    bridge: {bridge_url}, published: {published_url}", flush=True)
        for run in range(args.runs):
            order = PATHS[run % len(PATHS) :] + PATHS[: run % len(PATHS)]
            figures = {path: hey(*targets[path], args.seconds) for path in order}
            rates = {path: round(figures[path]["rate"], 1) for path in PATHS}
            print(f"    round {run + 1}: {rates} req/s", flush=True)
            report.runs.append(
                {
                    **rates,
                    "traefik_gain": rates["traefik_bridge"] / rates["traefik_published"],
                    "direct_gain": rates["direct_bridge"] / rates["direct_published"],
                    "traefik_to_direct": rates["traefik_bridge"] / rates["direct_bridge"],
                    "failed": sum(f["non_2xx"] + f["errors"] for f in figures.values()),
                }
            )
    for name in PATHS:
        stats = summary([r[name] for r in report.runs])
        report.figure(name, stats, f"{name}: {spread(stats, lambda v: f'{v:,.0f} req/s')}")
    for name, about in (
        ("traefik_gain", "through Traefik, to the bridge against to a published port"),
        ("direct_gain", "straight to the container, its bridge address against its port"),
        ("traefik_to_direct", "through Traefik to the bridge, against straight to it"),
    ):
        stats = summary([r[name] for r in report.runs])
        report.figure(name, stats, f"{about}: {spread(stats, lambda v: f'{v:.2f}x')}")
    failed = sum(r["failed"] for r in report.runs)
    report.figure("failed", failed, f"non-2xx and errors over every hey: {failed}")
    report.write()


if __name__ == "__main__":
    main()
