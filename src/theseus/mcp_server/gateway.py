"""Who answers an MCP request: a runtime in this process (`Local`), or the data dir's running server (`Remote`).

The web server answers /mcp from its own runtime. `theseus mcp` (stdio) forwards
to the server of its data dir when one runs, so a call is live in the user's
tabs and a confirm card can be clicked there; when none runs, it serves from a
runtime of its own on the same file (`Either` picks, per request).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import LATEST_MODERN_VERSION

from ..actions import NotFound, OperationError
from ..chat import approval
from ..chat.commands import Command
from ..markup import escape_markdown
from ..running import answers, running_server
from ..security import MCP_PATH, mcp_token
from .resources import read, resources
from .tools import SEARCH_TOOL, done, failure, found, search_args, tools

WAIT_FOR_CLICK = 50.0  # seconds a call that needs the user's click waits for it (clients often give up at 60)
OPEN_CARDS = 20  # an agent's calls that may wait for the user's click at once; more are refused


class Local:
    """Answers from a runtime. `clicks`: a web server serves this runtime, so the user can click a confirm card
    while a call waits; without one, such a call says where its card waits and returns."""

    def __init__(self, runtime, *, clicks: bool = True, wait: float = WAIT_FOR_CLICK):
        self.runtime, self.clicks, self.wait = runtime, clicks, wait

    async def list_tools(self) -> list[types.Tool]:
        return tools(self.runtime.registry)

    async def call_tool(self, name: str, args: dict, client: str = "") -> types.CallToolResult:
        """Run one operation as actor "agent" (after the user's click, if the approval policy asks), or search."""
        if name == SEARCH_TOOL:
            return await self.search(args)
        try:
            op = approval.offered_operation(self.runtime, name)
        except NotFound:
            return failure(f"There is no tool called {name[:100]!r}; tools/list shows them all.")
        try:
            values = op.validate(args)
        except OperationError as error:
            return failure(f"{error.message}. Nothing was changed.")
        if await asyncio.to_thread(approval.agent_needs_confirm, self.runtime.db, op):
            return await self.ask_user(Command(op.name, values), client)
        try:
            outcome = await asyncio.to_thread(self.runtime.registry.execute, op.name, values, "agent")
        except OperationError as error:
            return failure(error.message)
        return done([outcome])

    async def ask_user(self, command: Command, client: str) -> types.CallToolResult:
        """Put a confirm card in the chat pane and wait for the click (or say that it waits)."""
        agent = self.runtime.chat.agent
        if await asyncio.to_thread(open_agent_cards, self.runtime.db) >= OPEN_CARDS:
            return failure(f"{OPEN_CARDS} of your calls already wait for the user's click; nothing was changed. "
                           "Wait for their answer before asking for more.")
        reply, what = await asyncio.to_thread(self.card, command, client)
        if reply.proposal is None:
            return failure(reply.text)
        token = reply.proposal.token
        future = agent.expect(token)  # before the card is shown: a click may come at once
        try:
            await asyncio.to_thread(self.runtime.chat.post, reply)
            if not self.clicks:
                return waiting(token, what, "Theseus is not running: the card waits in its chat pane for the next "
                                            "start (./run serve).")
            try:
                return decided(await asyncio.wait_for(asyncio.shield(future), self.wait), token, what)
            except TimeoutError:
                return decided(None, token, what)
        finally:
            agent.decisions.pop(token, None)

    def card(self, command: Command, client: str):
        """(the reply with the confirm card, what the command does in words), in the current conversation."""
        agent = self.runtime.chat.agent
        what = agent.describe(command)
        who = f"An outside agent ({escape_markdown(client)})" if client else "An outside agent"
        conversation_id = self.runtime.chat.conversations.current()["id"]
        return agent.propose([command], conversation_id, question=f"{who} asks to {what}. Allow it?",
                             actor="agent"), what

    async def search(self, args: dict) -> types.CallToolResult:
        try:
            query, kinds, limit = search_args(args)
        except ValueError as error:
            return failure(str(error))
        return found(await asyncio.to_thread(self.runtime.knowledge.search, query, kinds=kinds, limit=limit))

    async def list_resources(self) -> list[types.Resource]:
        return await asyncio.to_thread(resources, self.runtime.plugins)

    async def read_resource(self, uri: str) -> list:
        return [await asyncio.to_thread(read, self.runtime.plugins, uri)]


def open_agent_cards(db) -> int:
    return db.value("SELECT COUNT(*) FROM proposals WHERE actor = 'agent' AND expires >= ?", (time.time(),))


def waiting(token: str, what: str, where: str) -> types.CallToolResult:
    text = (f"Waiting for the user's click: Theseus asks them whether to let you {what}. Nothing has changed yet; "
            f"if they allow it, it runs as an outside agent's change. {where}")
    return types.CallToolResult(content=[types.TextContent(text=text)],
                                structured_content={"status": "waiting", "proposal": token, "message": text})


def decided(decision, token: str, what: str) -> types.CallToolResult:
    """The call's result once the user decided (or the wait ended)."""
    if decision is None:
        return waiting(token, what, "The card stays in the chat pane.")
    kind, detail = decision
    if kind == "cancelled":
        return failure(f"The user declined to let you {what}; nothing was changed.", proposal=token)
    if kind == "refused":
        return failure(str(detail), proposal=token)
    ran = [step.outcome for step in detail if step.outcome]
    return done(ran) if ran else failure(detail[0].error if detail else "Nothing ran.", proposal=token)


class Remote:
    """Forwards requests to a running server's /mcp. The HTTP connections are shared; the SDK's client is made per
    request, in the request's own task (it is bound to the task that opens it), and speaks the server's own
    revision at once (no probe)."""

    def __init__(self, url: str, http: httpx2.AsyncClient, client: str = ""):
        self.url, self.http, self.client_name = url, http, client

    @asynccontextmanager
    async def connected(self):
        info = types.Implementation(name=f"{self.client_name or 'agent'} via theseus mcp", version="1")
        transport = streamable_http_client(self.url + MCP_PATH, http_client=self.http)
        async with Client(transport, client_info=info, mode=LATEST_MODERN_VERSION) as client:
            yield client

    async def list_tools(self) -> list[types.Tool]:
        async with self.connected() as client:
            return (await client.list_tools()).tools

    async def call_tool(self, name: str, args: dict, client: str = "") -> types.CallToolResult:
        async with self.connected() as connection:
            return await connection.call_tool(name, args)

    async def list_resources(self) -> list[types.Resource]:
        async with self.connected() as client:
            return (await client.list_resources()).resources

    async def read_resource(self, uri: str) -> list:
        async with self.connected() as client:
            return (await client.read_resource(uri)).contents


class Either:
    """`theseus mcp`: the running server of the data dir when there is one, else a runtime of its own."""

    def __init__(self, config):
        self.config = config
        self.local: Local | None = None
        self.starting = asyncio.Lock()  # requests come in concurrently: one runtime for all of them
        self.verified: dict | None = None  # the server record whose /health answered last
        self.http: httpx2.AsyncClient | None = None  # connections to the server, kept between requests

    async def pick(self, client: str = ""):
        record = await asyncio.to_thread(running_server, self.config.data_dir)
        if record and (record == self.verified or await asyncio.to_thread(answers, record)):
            self.verified = record
            if self.http is None:
                self.http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {mcp_token(self.config.data_dir)}"},
                                               timeout=httpx2.Timeout(30.0, read=WAIT_FOR_CLICK + 30.0))
            return Remote(record["url"], self.http, client)
        async with self.starting:
            if self.local is None:
                from ..runtime import Runtime  # the web server's gateway never needs one of its own
                self.local = Local(await asyncio.to_thread(Runtime, self.config), clicks=False)
        return self.local

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.local is not None:
            self.local.runtime.close()
