"""The security floor for a single-user app on localhost.

Any web page the user visits can send requests to 127.0.0.1, so every request
must name our host in its `Host` header (defeats DNS rebinding), and every
state-changing request or WebSocket handshake that carries an `Origin` (or a
`Sec-Fetch-Site: cross-site`) must come from our own origin. No other site may
frame our pages, and a GET a foreign page causes never writes anything.
"""

from __future__ import annotations

from loguru import logger

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]"}
# No other site may show our pages in a frame (clickjacking: a hidden frame over a tempting button).
NO_FRAMING = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """Host header values we answer to; None means any (the user bound a wildcard address)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = LOOPBACK_NAMES if host in LOOPBACK_NAMES or host == "::1" else {host}
    return {f"{name}:{port}" for name in names} | ({*names} if port == 80 else set())


def no_framing(send):
    """Wrap an ASGI send so every response forbids framing by other sites."""
    async def send_with_headers(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *NO_FRAMING]}
        await send(message)
    return send_with_headers


def is_own_navigation(request) -> bool:
    """Whether the user opened this page: typed, bookmarked, one of our links, or a non-browser client.

    Not an <img>, <iframe> or fetch on another page; on localhost another port is "same-site" too.
    """
    headers = request.headers
    return headers.get("sec-fetch-site", "none") in ("none", "same-origin") and \
        headers.get("sec-fetch-dest", "document") == "document"


class SecurityMiddleware:
    """ASGI middleware: 403 for a foreign Host, or a foreign Origin on writes and WebSockets; no framing."""

    def __init__(self, app, host: str, port: int):
        self.app = app
        self.hosts = allowed_hosts(host, port)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        reason = self.rejection(scope)
        if reason is None and scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if reason is None:
            return await self.app(scope, receive, no_framing(send))
        logger.warning(f"403 {scope.get('method', 'WS')} {scope['path']}: {reason}")
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": f"Forbidden: {reason}\n".encode()})

    def rejection(self, scope) -> str | None:
        """Why this request must be refused, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return f"unexpected Host header {host!r}"
        writes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if not writes:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins(host):
            return f"foreign Origin {origin!r}"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request"
        return None

    def origins(self, host: str) -> set[str]:
        if self.hosts is None:
            return {f"http://{host.lower()}"}
        return {f"http://{h}" for h in self.hosts}
