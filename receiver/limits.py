"""Request body limit for the API: a clear 413 before a large body is read."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver.problems import problem

# Git and webhooks enforce their own (larger) limits while they stream the body.
OWN_LIMITS = ("/hooks/",)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path.endswith(("/git-receive-pack", "/git-upload-pack"))
            or path.startswith(OWN_LIMITS)
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = problem(413, "Content Too Large", self._message())
            await response(scope, receive, send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            # A body without a length is counted as it arrives; past the limit the client
            # gets the 413 here and the endpoint sees a disconnect.
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await problem(413, "Content Too Large", self._message())(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:
                raise

    def _message(self) -> str:
        return f"request body larger than the limit of {self.max_bytes} bytes"
