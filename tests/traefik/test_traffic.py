"""The per-release traffic report read from Traefik's JSON access log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipeline.traefik.traffic import traffic_report

START = datetime(2026, 12, 2, 7, 0, 0, tzinfo=UTC).timestamp()


def line(at: float, host: str, status: int, router: str) -> str:
    started = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return json.dumps(
        {
            "StartUTC": started,
            "Duration": 2_000_000,
            "RequestHost": host,
            "DownstreamStatus": status,
            "RouterName": router,
            "ServiceURL": "http://127.0.0.1:18000",
        }
    )


def test_both_entrypoints_count_and_redirects_to_https_do_not(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        "\n".join(
            [
                line(START + 1, "www.shop.test", 200, "shop_tls_www_shop_test@file"),
                line(START + 2, "shop.localhost", 200, "shop@file"),
                line(START + 3, "www.shop.test", 301, "shop_redirect@file"),
                line(START + 4, "www.shop.test", 502, "shop_tls_www_shop_test@file"),
                line(START + 5, "other.localhost", 500, "other@file"),
                line(START - 5, "shop.localhost", 200, "shop@file"),
            ]
        )
        + "\n"
    )
    report = traffic_report(log, {"www.shop.test", "shop.localhost"}, START, START + 10)
    assert (report.requests, report.errors) == (3, 1)
    assert report.before == {"requests": 1, "errors": 0}
