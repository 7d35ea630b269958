"""The canary's judgement (pipeline.deploy.strategies.judgement) and the split route it is
served by."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.config import CanarySettings
from pipeline.deploy.strategies.judgement import MIN_SAMPLE, Verdict, judge
from pipeline.errors import SwitchFailed
from pipeline.traefik.documents import split_document
from pipeline.traefik.traffic import Served, served_by
from pipeline.traefik.validation import validate_service

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


@pytest.mark.parametrize(
    ("canary", "live", "passed"),
    [
        (served(100, 2), served(1000), True),  # 2 %: at max_error_rate, not above
        (served(100, 3), served(1000), False),  # 3 %: above it, and 3 points above live
        (served(100, 3), served(1000, 25), True),  # 3 % against 2.5 %: half a point more
        (served(100, p95=None), served(1000, p95=20.0), True),  # no latency to compare
        (served(100, p95=90.0), served(MIN_SAMPLE - 1, p95=20.0), True),  # live too few
        (served(100, p95=40.0), served(1000, p95=20.0), True),  # 2.0x: at max_p95_ratio
        (served(100, p95=41.0), served(1000, p95=20.0), False),  # 2.05x, 21 ms slower
        (served(100, p95=9.5), served(1000, p95=0.0), True),  # 9.5 ms: below the gap
    ],
)
def test_a_limit_is_broken_only_past_it(canary: Served, live: Served, passed: bool) -> None:
    verdict = judge(canary, live, LIMITS, final=True)
    assert verdict is not None and verdict.passed is passed, verdict


def test_errors_are_judged_before_latency_and_a_pass_states_both_sides() -> None:
    both = judge(served(100, 50, p95=500.0), served(1000, p95=5.0), LIMITS, final=True)
    assert both is not None and both.reason.startswith("canary errors 50 of 100"), both
    passed = judge(served(100, 1), served(1000, p95=None), LIMITS, final=True)
    assert passed == Verdict(
        True, "canary 1 errors in 100 requests, p95 5 ms; live 0 errors in 1000 requests, p95 -"
    )


def test_the_app_s_own_limits_are_the_ones_applied() -> None:
    lenient = CanarySettings(max_error_rate=0.5, max_p95_ratio=10)
    verdict = judge(served(100, 40, p95=90.0), served(1000, p95=10.0), lenient, final=True)
    assert verdict is not None and verdict.passed, verdict
    strict = CanarySettings(max_error_rate=0.0, max_error_rate_increase=0.0)
    verdict = judge(served(MIN_SAMPLE, 1), served(1000), strict, final=False)
    assert verdict is not None and not verdict.passed
    assert "(max_error_rate 0, max_error_rate_increase 0)" in verdict.reason
