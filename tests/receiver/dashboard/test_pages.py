"""The dashboard's pure parts: escaping, the formatters, sessions and their CSRF tokens."""

from __future__ import annotations

import time
from typing import Any

import pytest
from markupsafe import Markup
from pydantic import ValidationError

from pipeline.release.records import TrafficRecord
from receiver.api.cron import CronEntryView
from receiver.api.domains import DomainsView
from receiver.dashboard.formats import seconds, source_label, step_breakdown
from receiver.dashboard.pages import Frame, app_page
from receiver.dashboard.release import release_page
from receiver.dashboard.session import Sessions
from receiver.dashboard.templating import environment, part, render_page
from receiver.dashboard.web import safe_next
from tests.support.views import APP, app_view, release_view

HOSTILE = '<script>alert("x")</script>'


def hosts(https: bool, entries: list[dict[str, Any]]) -> DomainsView:
    """The app's domains view with these hosts (the first the default)."""
    names = [entry["host"] for entry in entries] or ["demo.localhost"]
    return DomainsView.model_validate(
        {"app": "demo", "default": names[0], "domains": names[1:], "https": https,
         "redirect": True, "hsts_seconds": 0, "hosts": entries}
    )  # fmt: skip


def test_values_are_escaped_and_markup_is_not() -> None:
    template = environment().from_string("<p>{{ text }}</p>{{ markup }}")
    page = template.render(text=HOSTILE, markup=Markup("<b>ok</b>"))
    assert page == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p><b>ok</b>"


def test_pages_escape_what_comes_from_the_records() -> None:
    failed = release_view(
        state="failed",
        failure_reason=HOSTILE,
        failed_step="building",
        log_tail=HOSTILE,
        strategy=HOSTILE,
        image=HOSTILE,
        commit=HOSTILE,
    )
    with pytest.raises(ValidationError):  # a source is one of the five a release has
        release_view(source=HOSTILE)
    body = release_page(APP, failed, [HOSTILE], 1, following=False, now=time.time())
    history = app_page(APP, [failed])
    page = render_page(Frame("t", "csrf", [("error", HOSTILE)]), body) + render_page(
        Frame("t"), history
    )
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") >= 6, "a hostile value vanished instead of being shown"
    assert '<section class="card failure" role="alert"><h2>Failed at Build</h2>' in page


def test_app_page_lists_the_domains() -> None:
    page = render_page(Frame("t"), app_page(app_view(domains=["www.example.com", HOSTILE]), []))
    assert '<code class="domain">www.example.com</code>' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    bare = render_page(Frame("t"), app_page(APP, []))
    assert '<dt>Domains</dt><dd><span class="muted">—</span></dd>' in bare


def test_app_page_shows_maintenance_and_offers_to_switch_it() -> None:
    on = render_page(Frame("t"), app_page(app_view(maintenance_since=time.time() - 30), []))
    assert 'data-state="maintenance">on</span> since' in on
    assert 'href="/dashboard/apps/demo/maintenance">End maintenance</a>' in on
    off = render_page(Frame("t"), app_page(APP, []))
    assert '<dd id="maintenance">off</dd>' in off
    assert 'href="/dashboard/apps/demo/maintenance">Maintenance</a>' in off


def test_app_page_tails_the_logs_of_an_app_that_is_live() -> None:
    live = app_view(live_release=release_view(2).model_dump())
    page = render_page(Frame("t"), app_page(live, []))
    assert '<pre id="applog" class="log applog" data-url="/dashboard/apps/demo/logs">' in page
    assert 'id="applog"' not in render_page(Frame("t"), app_page(APP, []))


def test_app_page_shows_each_hosts_certificate_with_https() -> None:
    seen = {"retry_at": None, "updated_at": time.time()}
    https = hosts(
        True,
        [
            {"host": "demo.example.com", "certificate": {"source": "acme", "state": "issued",
             "expires_at": time.time() + 86400 * 60, "reason": None, **seen}},
            {"host": "www.demo.test", "certificate": {"source": "acme", "state": "failed",
             "expires_at": None, "reason": HOSTILE, **seen}},
        ],
    )  # fmt: skip
    page = render_page(Frame("t"), app_page(APP, [], https))
    assert "<h2>HTTPS</h2>" in page
    assert '<span class="badge badge-ok">issued</span> acme' in page
    assert '<span class="badge badge-bad">failed</span> acme' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<h2>HTTPS</h2>" not in render_page(Frame("t"), app_page(APP, [], hosts(False, [])))


def test_release_page_shows_traffic_when_present_and_tolerates_its_absence() -> None:
    before = {"requests": 1100, "errors": 2}
    report = {"window_seconds": 2.5, "requests": 1234, "errors": 0, "before": before}
    shown = render_page(
        Frame("t"),
        release_page(APP, release_view(traffic=report), [], 0, following=False, now=time.time()),
    )
    assert "0 errors" in shown and "1,234 requests" in shown and "before: 2 of 1,100" in shown
    for view in (release_view(), release_view(traffic=None)):
        page = render_page(
            Frame("t"), release_page(APP, view, [], 0, following=False, now=time.time())
        )
        assert "Traffic during switch" in page
    one_error = part("switch_traffic", TrafficRecord(requests=10, errors=1))
    assert '<span class="traffic-bad">1 error</span> in 10 requests' in one_error


def test_formatters() -> None:
    assert seconds(0.4213) == "0.42 s"
    assert seconds(3.26) == "3.3 s"
    assert seconds(42) == "42 s"
    assert seconds(185) == "3 min 5 s"
    assert step_breakdown({"queued": 1.0, "building": 3.0, "draining": 1.5}) == (
        "build\u00a03.0\u00a0s · drain\u00a01.5\u00a0s"
    )
    assert source_label(release_view(source="rollback", rollback_of=3)) == "rollback of v3"
    assert source_label(release_view(source="config")) == "config change"


def test_running_release_is_followed_and_its_current_step_counts_up() -> None:
    running = release_view(
        state="building",
        events=[
            {"state": "queued", "was": None, "at": 100.0},
            {"state": "building", "was": "queued", "at": 101.0},
        ],
    )
    page = render_page(
        Frame("t"), release_page(APP, running, ["step 1"], 1, following=True, now=104.0)
    )
    assert 'data-follow="1"' in page and 'data-position="1"' in page
    assert "3.0 s so far" in page and "step-current" in page


def test_sessions_csrf_and_expiry() -> None:
    sessions = Sessions(idle_timeout=60, max_age=3600, limit=2)
    cookie, session = sessions.create("admin", "hash")
    assert sessions.get(cookie) is session
    assert sessions.get("guess") is None and sessions.get(None) is None
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("forged") and not session.csrf_ok(None)
    session.flash("ok", "done")
    assert session.take_flashes() == [("ok", "done")] and session.take_flashes() == []

    session.seen -= 120
    assert sessions.get(cookie) is None, "an idle session outlived its timeout"

    first, _ = sessions.create("admin", "hash")
    sessions.create("admin", "hash")
    sessions.create("admin", "hash")
    assert sessions.get(first) is None, "the oldest session was kept past the limit"


def test_sign_in_returns_only_to_dashboard_paths() -> None:
    assert safe_next("/dashboard/apps/demo") == "/dashboard/apps/demo"
    for hostile in (None, "", "https://evil.example/", "//evil.example", "/dashboard//evil", "/x"):
        assert safe_next(hostile) == "/dashboard"


def test_app_page_shows_the_scheduled_jobs_with_their_last_run() -> None:
    last = {
        "id": 7, "name": "report", "scheduled_at": 1_800_000_000.0, "source": "schedule",
        "state": "failed", "release": 3, "command": HOSTILE, "container": None, "exit_code": 2,
        "detail": None, "output": HOSTILE, "started_at": 1_800_000_000.5,
        "ended_at": 1_800_000_001.0,
    }  # fmt: skip
    job = CronEntryView.model_validate(
        {"name": "report", "schedule": "*/5 * * * *", "command": HOSTILE,
         "timezone": "Europe/Paris", "timeout": 60.0, "overlap": "skip", "catch_up": False,
         "release": 3, "next_run": 1_800_000_300.0, "last_run": last}
    )  # fmt: skip
    page = render_page(Frame("t"), app_page(APP, [], cron=[job]))
    assert "<h2>Cron</h2>" in page and "<code>report</code>" in page
    assert "(Europe/Paris)" in page and "failed" in page and "(exit 2)" in page
    assert "<script>" not in page
    assert "<h2>Cron</h2>" not in render_page(Frame("t"), app_page(APP, []))
