"""The dashboard's stylesheet and its one script (static/), served by the daemon itself.

No build step and nothing from outside: the Content-Security-Policy of the pages allows
styles and scripts from the daemon only. URLs carry a hash of the content, so a browser may
cache them and still never run an old script against a new page.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from fastapi import Response
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

FILES = StaticFiles(packages=[("receiver.dashboard", "static")])
HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
_VERSIONS = {
    entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()[:12]
    for entry in (resources.files("receiver.dashboard") / "static").iterdir()
    if entry.is_file()
}


def asset_url(name: str) -> str:
    return f"/dashboard/assets/{name}?v={_VERSIONS[name]}"


async def asset_response(name: str, scope: Scope) -> Response:
    """The file `name` from static/ with the headers above; a plain 404 for any other name.

    A route asks StaticFiles for the file instead of mounting it: FastAPI's include_router
    leaves out what is mounted on an APIRouter, and the app includes this package's router.
    """
    try:
        response = await FILES.get_response(name, scope)
    except HTTPException as error:
        return PlainTextResponse("not found", status_code=error.status_code)
    response.headers.update(HEADERS)
    return response
