"""An app's view and a release's, as receiver.api.views makes them: what the dashboard's pages
are rendered from, so that a test can render a page without a daemon."""

from __future__ import annotations

import time
from typing import Any

from receiver.api.views import AppView, ReleaseDetail


def app_view(**fields: Any) -> AppView:
    """App `demo`, created a minute ago, nothing live; `fields` over that."""
    view: dict[str, Any] = {
        "name": "demo",
        "created_at": time.time() - 60,
        "url": "http://demo.localhost",
        "domains": [],
        "git_url": "http://127.0.0.1:7000/demo.git",
        "live_release": None,
        "processes": None,
        "stopped": [],
        "destroying": False,
        "maintenance_since": None,
    }
    return AppView.model_validate(view | fields)


APP = app_view()


def release_view(number: int = 2, **fields: Any) -> ReleaseDetail:
    """Release `number`, live since a few seconds after it was queued 30 s ago; `fields` over
    that."""
    at = time.time() - 30
    view: dict[str, Any] = {
        "number": number,
        "state": "live",
        "source": "push",
        "rollback_of": None,
        "commit": "0123456789abcdef",
        "image": "temps/demo:0123456789ab",
        "pulled": None,
        "strategy": "blue-green",
        "container": f"temps-demo-v{number}-0123",
        "host_port": 40001,
        "formation": None,
        "slot": None,
        "config": {},
        "traffic": None,
        "failure_reason": None,
        "failed_step": None,
        "log_tail": None,
        "created_at": at,
        "updated_at": at + 5,
        "events": [
            {"state": "queued", "was": None, "at": at},
            {"state": "building", "was": "queued", "at": at + 1},
            {"state": "live", "was": "building", "at": at + 5},
        ],
        "timings": {"queued": 1.0, "building": 4.0},
    }
    return ReleaseDetail.model_validate(view | fields)
