"""The MCP server (the official SDK's low-level `Server`), on Streamable HTTP at /mcp and on stdio.

/mcp is a route of the web app: the security middleware checks its Host and
Origin like every route's, and the endpoint wants the data dir's token as a
bearer header before the SDK's transport sees the request. It is stateless
(each request stands alone, answered with JSON; GET has no stream to offer: 405),
so a restart under the dev loop drops no session.
`theseus mcp` serves stdio, forwarding to the running server when there is one.
"""

from __future__ import annotations

import json

import mcp_types as types
from loguru import logger
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.routing import Route

from .. import __version__
from ..logs import log_safe
from ..security import MCP_PATH, bearer, request_headers, same_secret
from .gateway import Either, Local
from .resources import UnknownResource
from .tools import failure

INSTRUCTIONS = """Theseus is the user's local app (a task list, profiles, workflows and their own plugins).
Each tool is one of its operations: every call is logged in its action log as an outside agent's change, can be
undone there, and shows at once in the user's open tabs. Destructive operations wait for the user's click in
Theseus's chat pane, unless they chose otherwise. Read theseus://apps/NAME for an app's current rows and
theseus://docs/... for how things work; `search` finds passages in the docs, the source and the action log."""
RESOURCE_NOT_FOUND = -32002  # the MCP spec's error code for an unknown resource


def client_name(ctx) -> str:
    """The calling program's name as it introduced itself ('' if it did not)."""
    info = getattr(getattr(ctx.session, "client_params", None), "client_info", None)
    if info is None and isinstance(ctx.meta, dict):
        info = ctx.meta.get(types.CLIENT_INFO_META_KEY)
    name = info.get("name") if isinstance(info, dict) else getattr(info, "name", "")
    return " ".join(name.split())[:60] if isinstance(name, str) else ""


def build_server(pick) -> Server:
    """The MCP server; `pick(client)` is the gateway that answers a request (Local or Remote)."""
    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await (await pick(client_name(ctx))).list_tools())

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        client = client_name(ctx)
        args = params.arguments or {}
        logger.info(f"mcp: {log_safe(client or 'a client', 60)} calls {log_safe(params.name, 100)} "
                    f"{log_safe(json.dumps(args, ensure_ascii=False, default=str), 300)}")
        try:
            return await (await pick(client)).call_tool(params.name, args, client)
        except Exception as error:  # a bug, or a server that went away mid-call: say so, as a tool error
            logger.opt(exception=error).error(f"mcp: {log_safe(params.name, 100)} failed")
            return failure(f"{params.name} could not be run ({type(error).__name__}); the details are in Theseus's "
                           "log. If it was forwarded to the server, check the action log before calling again.")

    async def list_resources(ctx, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await (await pick(client_name(ctx))).list_resources())

    async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        try:
            contents = await (await pick(client_name(ctx))).read_resource(str(params.uri))
        except UnknownResource as error:
            raise MCPError(RESOURCE_NOT_FOUND, str(error)) from None
        return types.ReadResourceResult(contents=contents)

    return Server("theseus", version=__version__, title="Theseus", instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
                  on_read_resource=read_resource)


class Endpoint:
    """/mcp: refuses a request without the data dir's token (401), then hands it to the SDK's transport."""

    def __init__(self, runtime, token: str):
        gateway = Local(runtime)

        async def pick(client: str = ""):
            return gateway

        self.token = token
        self.manager = StreamableHTTPSessionManager(app=build_server(pick), stateless=True, json_response=True)
        self.transport = StreamableHTTPASGIApp(self.manager)

    async def __call__(self, scope, receive, send):
        if same_secret(bearer(request_headers(scope)), self.token):
            return await self.transport(scope, receive, send)
        logger.warning(f"401 {scope.get('method')} {MCP_PATH}: no valid MCP token")
        body = json.dumps({"error": "unauthorized", "error_description":
                           "Send the data dir's MCP token as 'Authorization: Bearer TOKEN' (theseus mcp --token "
                           "prints it)."}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b'Bearer realm="theseus"')]})
        await send({"type": "http.response.body", "body": body})


def add_mcp_route(app, runtime) -> Endpoint:
    """Serve MCP at /mcp; the app's lifespan runs `endpoint.manager.run()`."""
    endpoint = Endpoint(runtime, app.state.access.mcp_token)
    app.routes.append(Route(MCP_PATH, endpoint, methods=["POST", "DELETE"]))  # no GET stream: each request stands
    # alone, so the server never has anything to send outside an answer (and no request holds a connection open)
    return endpoint


async def serve_stdio(config) -> None:
    """`theseus mcp`: MCP over this process's stdin and stdout until the client closes them."""
    either = Either(config)
    server = build_server(either.pick)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await either.close()
