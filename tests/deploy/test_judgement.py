"""The canary's judgement (pipeline.deploy.strategies.judgement) and the split route it is
served by."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.config import CanarySettings
from pipeline.deploy.strategies.judgement import MIN_SAMPLE, judge
from pipeline.errors import SwitchFailed
from pipeline.traefik.documents import split_document, validate_service
from pipeline.traefik.traffic import Served, served_by

LIMITS = CanarySettings()


def served(requests: int, errors: int = 0, p95: float | None = 5.0) -> Served:
    return Served(requests, errors, p95, p95)


def test_a_canary_failing_a_fifth_of_its_requests_fails_as_soon_as_it_is_sampled() -> None:
    verdict = judge(served(MIN_SAMPLE, 4), served(200), LIMITS, final=False)
    assert verdict is not None and not verdict.passed
    assert verdict.reason.startswith("canary errors 4 of 20 requests (20.0%) against 0 of 200")


def test_too_few_requests_are_not_judged_until_the_step_ends() -> None:
    assert judge(served(MIN_SAMPLE - 1, 10), served(200), LIMITS, final=False) is None
    verdict = judge(served(5), served(200), LIMITS, final=True)
    assert verdict is not None and verdict.passed


def test_a_canary_no_worse_than_the_live_release_is_not_blamed_for_its_errors() -> None:
    # 10 % errors on both sides: above max_error_rate, but no increase.
    verdict = judge(served(100, 10), served(1000, 100), LIMITS, final=True)
    assert verdict is not None and verdict.passed, verdict


def test_latency_is_judged_when_the_step_ends_above_the_ratio_and_the_gap() -> None:
    slow, fast = served(100, p95=60.0), served(1000, p95=20.0)
    assert judge(slow, fast, LIMITS, final=False) is None
    verdict = judge(slow, fast, LIMITS, final=True)
    assert verdict is not None and not verdict.passed
    assert "canary p95 60 ms is 3.0x the live release's 20 ms (max_p95_ratio 2)" in verdict.reason
    # A fast app's noise: 3x of 2 ms is 4 ms more, below the gap that is judged.
    quick = judge(served(100, p95=6.0), served(1000, p95=2.0), LIMITS, final=True)
    assert quick is not None and quick.passed


def test_the_split_document_weighs_two_halves_and_keeps_clients_by_a_cookie() -> None:
    document = split_document(
        "shop", ["http://127.0.0.1:1001"], ["http://127.0.0.1:2002"], 10, "v2", "/health"
    )
    services = document["http"]["services"]
    weighted = services["shop"]["weighted"]
    assert weighted["services"] == [
        {"name": "shop_live", "weight": 90},
        {"name": "shop_canary", "weight": 10},
    ]
    assert weighted["sticky"]["cookie"]["name"] == "temps-canary-shop"
    assert services["shop_canary"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:2002"}]
    validate_service("shop", document)
    services["other"] = services.pop("shop_live")
    with pytest.raises(SwitchFailed, match="services of its own"):
        validate_service("shop", document)


def test_served_by_splits_the_access_log_by_server(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = []
    for n in range(10):
        server = "http://127.0.0.1:2002" if n % 2 else "http://127.0.0.1:1001"
        status = 500 if n == 9 else 200
        lines.append(
            f'{{"StartUTC": "2026-12-02T10:00:0{n}.000000000Z", "Duration": {(n + 1) * 1000000},'
            f' "RequestHost": "shop.example", "DownstreamStatus": {status},'
            f' "ServiceURL": "{server}", "RouterName": "shop@file"}}'
        )
    log.write_text("\n".join(lines) + "\n")
    start = 1796205600.0  # 2026-12-02T10:00:00Z
    groups = {"live": {"http://127.0.0.1:1001"}, "canary": {"http://127.0.0.1:2002"}}
    found = served_by(log, groups, start, start + 60)
    assert (found["live"].requests, found["live"].errors) == (5, 0)
    assert (found["canary"].requests, found["canary"].errors) == (5, 1)
    assert found["canary"].p95_ms == 10.0 and found["live"].p50_ms == 5.0
