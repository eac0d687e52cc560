"""Request bodies have a size limit: no request makes the server read (or hold) more than BODY_LIMIT bytes.

A declared Content-Length over the limit is refused with 413 before anything is read; a chunked body
is counted while it streams in, and refused the moment it passes the limit (whatever the route was
doing with it is dropped: the answer is the 413). The chat socket's messages have their own limit
(chat/routes.py), and uvicorn's `ws_max_size` bounds a WebSocket frame (server.py).
"""

from __future__ import annotations

from fasthtml.common import to_xml

from .ui import Toast

BODY_LIMIT = 1024 * 1024  # bytes; a workflow step's 10 KB value or a chat message fits many times over


class BodyTooLarge(Exception):
    """Raised from `receive` once a body passes the limit, so the route stops reading it."""


def too_large_message(limit: int) -> str:
    return f"That request is too large: the limit is {limit // 1024:,} KiB. Nothing was changed."


def declared_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


async def refuse_too_large(scope, send, limit: int) -> None:
    """Answer 413 with a clear message (a toast for htmx)."""
    htmx = any(name.lower() == b"hx-request" for name, _ in scope["headers"])
    body, kind = (to_xml(Toast(too_large_message(limit))), b"text/html") if htmx else \
        (too_large_message(limit) + "\n", b"text/plain")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind + b"; charset=utf-8"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body.encode()})


class BodyLimitMiddleware:
    """ASGI middleware: 413 for a request body over `limit` bytes, declared or streamed."""

    def __init__(self, app, limit: int = BODY_LIMIT):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            return await refuse_too_large(scope, send, self.limit)
        state = {"read": 0, "over": False, "started": False}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.limit:
                    state["over"] = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            if state["over"]:
                return  # the route's answer to a body it could not read is replaced by the 413
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await refuse_too_large(scope, send, self.limit)
