"""Traefik's JSON access-log lines, as it writes them, for the series' tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def line(
    at: float,
    host: str = "shop.localhost",
    status: int = 200,
    ms: float = 2.0,
    server: str = "http://10.0.0.2:5000",
    router: str = "shop@file",
) -> str:
    started = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return json.dumps(
        {
            "StartUTC": started,
            "Duration": int(ms * 1_000_000),
            "RequestHost": host,
            "DownstreamStatus": status,
            "RouterName": router,
            "ServiceURL": server,
        }
    )
