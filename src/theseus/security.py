"""The security floor for a single-user app on localhost.

Any web page the user visits can send requests to 127.0.0.1, so every request
must name one of our hosts in its `Host` header (defeats DNS rebinding), and
every state-changing request or WebSocket handshake that carries an `Origin`
(or a `Sec-Fetch-Site: cross-site`) must come from one of our own origins. The
hosts are a fixed set, whatever the bind address: the loopback names, the
address bound (for a wildcard bind, this machine's own names and addresses)
and what THESEUS_ALLOWED_HOSTS lists; origins come from that same set, never
from the request. Bound beyond loopback, every request also needs a secret
token (as Jupyter does): a link with `?token=` sets a cookie once. No other
site may frame our pages, and a GET a foreign page causes never writes anything.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from loguru import logger
from starlette.requests import cookie_parser

from .logs import PATH_LIMIT, log_safe

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Paths whose every request (not only writes) must not come from another site: the live-sync GET holds one of a
# capped number of open connections (another site must not use up the slots); /mcp is for agents, never pages.
STREAMS = {"/sync", "/mcp"}
MCP_PATH = "/mcp"
MCP_TOKEN_FILE = "mcp-token"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]"}
WILDCARDS = {"0.0.0.0", "::", "[::]", ""}
# No other site may show our pages in a frame (clickjacking: a hidden frame over a tempting button).
NO_FRAMING = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]
TOKEN_NEEDED = ("this Theseus is reachable from other machines, so every request needs its access token: "
                "open the link with ?token=... that `theseus serve` printed when it started")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(name: str) -> str:
    """A name or address as it appears in a Host header: lower case, an IPv6 address in brackets."""
    name = name.strip().lower()
    if name.count(":") > 1 and not name.startswith("["):
        return f"[{name.split('%')[0]}]"  # an IPv6 address (a zone id never appears in a Host header)
    return name


def host_values(entry: str, port: int) -> set[str]:
    """The Host header values one name stands for: `name:port` (and the bare name on port 80); kept if it has a port."""
    entry = host_name(entry)
    if entry.rpartition(":")[2].isdigit() and (entry.count(":") == 1 or "]:" in entry):
        return {entry}
    return {f"{entry}:{port}"} | ({entry} if port == 80 else set())


def own_addresses() -> set[str]:
    """This machine's names and addresses: its hostname, what that resolves to, the address of its default route."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return {host_name(name) for name in names | default_route_address() if name}


def default_route_address() -> set[str]:
    """The address other machines most likely reach this one by (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: only the routing table is asked
            return {probe.getsockname()[0]}
    except OSError:
        return set()


def allowed_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> set[str]:
    """Host header values we answer to: loopback, the bound address (every own one for a wildcard), and `extra`."""
    names = LOOPBACK_NAMES | (own_addresses() if host in WILDCARDS else {host_name(host)})
    return {value for name in names for value in host_values(name, port)} | \
        {value for entry in extra for value in host_values(entry, port)}


@dataclass(frozen=True)
class Access:
    """Who may talk to this server: the Host values it answers to and, bound beyond loopback, its secret token."""

    hosts: frozenset[str]
    port: int
    token: str | None = None
    mcp_token: str = ""  # the data dir's token for MCP clients (a bearer header on /mcp)

    @classmethod
    def of(cls, config) -> "Access":
        token = None if is_loopback(config.host) else with_token(config).token
        return cls(frozenset(allowed_hosts(config.host, config.port, config.allowed_hosts)), config.port, token,
                   mcp_token(config.data_dir))

    @property
    def origins(self) -> set[str]:
        return {f"http://{host}" for host in self.hosts}

    @property
    def cookie(self) -> str:
        """The token cookie's name; cookies ignore ports, so two servers on one machine need two names."""
        return f"theseus-token-{self.port}"


def with_token(config):
    """The config, with a new random access token if it binds beyond loopback and has none."""
    if is_loopback(config.host) or config.token:
        return config
    return dataclasses.replace(config, token=secrets.token_urlsafe(32))


def mcp_token(data_dir: Path) -> str:
    """The data dir's token for MCP clients over HTTP: made at first start (readable only by its owner), then
    the same on every start."""
    path = Path(data_dir) / MCP_TOKEN_FILE
    token = read_token(path)
    if token:
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=".mcp-token.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        if path.exists():  # unreadable or too short: replaced
            os.replace(partial, path)
        else:  # two processes starting at once: the first file made wins, and both read it
            try:
                os.link(partial, path)
            except FileExistsError:
                pass
    finally:
        Path(partial).unlink(missing_ok=True)
    return read_token(path)


def read_token(path: Path) -> str:
    """A token file's token; '' if it is missing, unreadable or too short to be one."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return token if len(token) >= 32 else ""


def bearer(headers: dict) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    value = headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def login_urls(config, access: Access) -> list[str]:
    """The links that open the app with its token (and set the cookie)."""
    hosts = ["127.0.0.1", *sorted(default_route_address())] if config.host in WILDCARDS else [host_name(config.host)]
    return [f"http://{host}:{config.port}/?token={access.token}" for host in hosts]


def exposure_notice(config, access: Access) -> str:
    """What `theseus serve` prints when it binds beyond loopback."""
    links = "\n".join(f"    {url}" for url in login_urls(config, access))
    return (f"WARNING: Theseus is bound to {config.host or '*'}, beyond this machine's loopback: anyone who can "
            f"reach port {config.port} can try to use it.\nEvery request needs the access token. Open this link "
            f"once in your browser (it sets a cookie):\n{links}\nHost names other than this machine's are refused "
            "unless THESEUS_ALLOWED_HOSTS lists them.")


def no_framing(send):
    """Wrap an ASGI send so every response forbids framing by other sites."""
    async def send_with_headers(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *NO_FRAMING]}
        await send(message)
    return send_with_headers


def request_headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def same_secret(given: str | None, token: str) -> bool:
    """Whether `given` is the token (never an empty one), compared in constant time."""
    return bool(given) and bool(token) and hmac.compare_digest(given.encode(), token.encode())


def token_in_query(scope) -> str | None:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("token")


def presented_tokens(scope, headers: dict, cookie: str) -> list[str]:
    """Every token the request carries: its cookie, an `Authorization: Bearer` header, a `token` parameter."""
    found = [cookie_parser(headers.get("cookie", "")).get(cookie), bearer(headers), token_in_query(scope)]
    return [token for token in found if token]


def without_token(scope) -> str:
    """This request's path and query without its `token` parameter: where the login link redirects."""
    path = "/" + scope["path"].lstrip("/")  # never `//host`: a redirect stays on this server
    query = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                     keep_blank_values=True) if k != "token"])
    return quote(path) + (f"?{query}" if query else "")


def writes(scope) -> bool:
    """Whether a request may change something: a WebSocket, or a method other than GET, HEAD and OPTIONS."""
    return scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS


class SecurityMiddleware:
    """ASGI middleware: 403 for a foreign Host, a missing token, or a foreign Origin on writes and WebSockets."""

    def __init__(self, app, access: Access):
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        reason = self.rejection(scope)
        if reason is None and scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if reason is None and self.logs_in(scope):
            return await self.set_cookie(scope, send)
        if reason is None:
            return await self.app(scope, receive, no_framing(send))
        logger.warning(f"403 {scope.get('method', 'WS')} {log_safe(scope['path'], PATH_LIMIT)}: {log_safe(reason, 300)}")
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": f"Forbidden: {reason}\n".encode()})

    def rejection(self, scope) -> str | None:
        """Why this request must be refused, or None."""
        headers = request_headers(scope)
        host = headers.get("host", "")
        if host.lower() not in self.access.hosts:
            return f"unexpected Host header {host!r}"
        if self.access.token and not any(same_secret(given, self.access.token)
                                         for given in presented_tokens(scope, headers, self.access.cookie)) \
                and not (scope["path"] == MCP_PATH and same_secret(bearer(headers), self.access.mcp_token)):
            return TOKEN_NEEDED
        if not (writes(scope) or scope["path"] in STREAMS):
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.access.origins:
            return f"foreign Origin {origin!r}"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request"
        return None

    def logs_in(self, scope) -> bool:
        """Whether this is the login link: a GET whose `token` parameter is the token."""
        return bool(self.access.token) and scope.get("method") in ("GET", "HEAD") and \
            same_secret(token_in_query(scope), self.access.token)

    async def set_cookie(self, scope, send) -> None:
        """Answer the login link: set the token cookie, then show the same page without the token in its URL."""
        cookie = f"{self.access.cookie}={self.access.token}; HttpOnly; SameSite=Strict; Path=/"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", without_token(scope).encode("latin-1")),
                                (b"set-cookie", cookie.encode()), (b"cache-control", b"no-store"), *NO_FRAMING]})
        await send({"type": "http.response.body", "body": b""})
