"""An app's view and a release's, as receiver.api.views makes them: what the dashboard's pages
are rendered from, so that a test can render a page without a daemon."""

from __future__ import annotations

import time
from typing import Any

APP = {
    "name": "demo",
    "url": "http://demo.localhost",
    "git_url": "http://127.0.0.1:7000/demo.git",
    "live_release": None,
}


def release_view(number: int = 2, **fields: Any) -> dict[str, Any]:
    """Release `number`, live since a few seconds after it was queued 30 s ago; `fields` over
    that."""
    at = time.time() - 30
    view: dict[str, Any] = {
        "number": number,
        "version": f"v{number}",
        "state": "live",
        "source": "push",
        "rollback_of": None,
        "commit": "0123456789abcdef",
        "image": "temps/demo:0123456789ab",
        "strategy": "blue-green",
        "formation": None,
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
    view.update(fields)
    return view
