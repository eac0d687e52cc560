"""MCP: the SDK's own client against /mcp (Streamable HTTP) on a live server, and against `theseus mcp` (stdio)."""

from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import run_async
from tests.waits import wait_until
from theseus.chat import approval
from theseus.mcp_server.gateway import WAIT_FOR_CLICK
from theseus.security import mcp_token

NOTES_PLUGIN = '''
from theseus.apps.crud import BaseApp
from theseus.actions import Result, operation


class Notes(BaseApp):
    name = "notes"
    display_name = "Notes"
    description = "A user's own notes."
    table = "notes"
    item = "note"

    @operation(target="note", verb="add")
    def insert(self, ctx, name: str) -> Result:
        """Add a note."""
        row = self.insert_item(ctx, name=name)
        return Result(f"Added {self.label(row)}", row)
'''


@pytest.fixture
def config(config):
    """The data dir holds a user plugin: its operations must be tools with no MCP code in it."""
    config.user_apps_dir.mkdir(parents=True, exist_ok=True)
    (config.user_apps_dir / "notes.py").write_text(NOTES_PLUGIN, encoding="utf-8")
    return config


@asynccontextmanager
async def http_client(live_server, mode: str = "auto"):
    """The SDK's client over Streamable HTTP with the data dir's token; `mode` "legacy": the initialize handshake
    of the revisions before 2026-07-28."""
    headers = {"Authorization": f"Bearer {mcp_token(live_server.config.data_dir)}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=WAIT_FOR_CLICK + 30)) as http:
        async with Client(streamable_http_client(live_server.url + "/mcp", http_client=http), mode=mode) as client:
            yield client


def over_http(live_server, work, mode: str = "auto"):
    """Run `await work(client)` with an HTTP client of the live server; its result."""
    async def main():
        async with http_client(live_server, mode) as client:
            return await work(client)
    return run_async(main())


def stdio_params(config) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "theseus", "mcp", "--data", str(config.data_dir)],
                                 env={"THESEUS_LLM": "embedded", "PATH": "/usr/bin:/bin"})


def over_stdio(config, work):
    async def main():
        async with Client(stdio_params(config)) as client:
            return await work(client)
    return run_async(main())


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content)


def tasks(runtime) -> list[str]:
    return [row["name"] for row in runtime.db.query("SELECT name FROM tasks ORDER BY id")]


def events(runtime) -> list[dict]:
    return runtime.db.query("SELECT * FROM events WHERE actor != 'system' ORDER BY id")


# ---- tools ----

def test_every_offered_operation_is_a_tool_with_its_schema_and_hints(live_server):
    listed = {tool.name: tool for tool in over_http(live_server, lambda c: c.list_tools()).tools}
    registry = live_server.runtime.registry
    offered = {op.name for op in registry.operations.values() if not op.internal}
    assert set(listed) == offered | {"search"}
    assert "notes.insert" in listed  # the user's plugin, from the data dir
    assert not [op for op in registry.operations.values() if op.internal and op.name in listed]
    insert = listed["tasks.insert"]
    assert insert.input_schema == registry.get("tasks.insert").schema()
    assert insert.description.startswith(registry.get("tasks.insert").description)
    assert listed["tasks.delete"].annotations.destructive_hint is True
    assert listed["tasks.insert"].annotations.destructive_hint is False
    assert listed["tasks.list"].annotations.read_only_hint is True
    assert listed["search"].annotations.read_only_hint is True


def test_a_client_of_an_older_revision_gets_the_same_tools(live_server):
    async def work(client):
        names = {tool.name for tool in (await client.list_tools()).tools}
        return client.protocol_version, names, await client.call_tool("tasks.insert", {"name": "buy oat milk"})

    version, names, result = over_http(live_server, work, mode="legacy")
    assert version == "2025-11-25" and "tasks.insert" in names
    assert not result.is_error and tasks(live_server.runtime) == ["buy oat milk"]


def test_mcp_offers_no_stream_to_hold_open(live_server):
    token = mcp_token(live_server.config.data_dir)
    response = httpx.get(live_server.url + "/mcp", headers={"Authorization": f"Bearer {token}",
                                                           "Accept": "text/event-stream"})
    assert response.status_code == 405


@pytest.mark.parametrize("args, says", [
    ({}, "needs 'name'"),
    ({"name": ""}, "can't be empty"),
    ({"name": "x", "colour": "red"}, "unknown argument 'colour'"),
    ({"name": 7}, "must be text"),
])
def test_a_bad_argument_is_a_clear_tool_error_and_changes_nothing(live_server, args, says):
    before = events(live_server.runtime)
    result = over_http(live_server, lambda c: c.call_tool("tasks.insert", args))
    assert result.is_error and says in text_of(result) and "Nothing was changed" in text_of(result)
    assert events(live_server.runtime) == before and tasks(live_server.runtime) == []


def test_an_unknown_or_internal_operation_is_no_tool(live_server):
    internal = next(op.name for op in live_server.runtime.registry.operations.values() if op.internal)
    for name in ("tasks.nope", internal):
        result = over_http(live_server, lambda c, name=name: c.call_tool(name, {}))
        assert result.is_error and "no tool called" in text_of(result)


def test_a_call_runs_as_agent_and_arrives_live_in_an_open_tab(live_server, open_page):
    page = open_page("/apps/tasks")
    result = over_http(live_server, lambda c: c.call_tool("tasks.insert", {"name": "buy oat milk"}))
    assert not result.is_error, text_of(result)
    page.get_by_text("buy oat milk").wait_for()  # the fragment came over the tab's live-sync stream
    assert tasks(live_server.runtime) == ["buy oat milk"]
    event = events(live_server.runtime)[-1]
    assert (event["actor"], event["operation"]) == ("agent", "tasks.insert")
    assert result.structured_content["results"][0]["event_id"] == event["id"]
    assert json.loads(event["changes"])[0]["after"]["name"] == "buy oat milk"  # the snapshot Undo uses
    page.goto(live_server.url + "/apps/history")
    page.locator(".event", has_text="buy oat milk").get_by_text("An agent").wait_for()


def test_an_agents_change_is_undone_from_the_activity_app(live_server):
    over_http(live_server, lambda c: c.call_tool("tasks.insert", {"name": "write the report"}))
    event_id = events(live_server.runtime)[-1]["id"]
    live_server.execute("history.undo", {"event_id": event_id}, actor="user")
    assert tasks(live_server.runtime) == []


# ---- destructive calls wait for the user's click ----

def confirm_card(runtime) -> dict:
    """The newest message with an open confirm card (waits for it)."""
    def card():
        rows = runtime.db.query("SELECT * FROM messages WHERE card LIKE '%\"proposal\"%' ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None
    message = wait_until(card, "an agent's confirm card in the chat")
    return {**message, "card": json.loads(message["card"])}


def test_a_destructive_call_waits_for_the_confirm_click(live_server):
    row = live_server.execute("tasks.insert", {"name": "old junk"}, actor="user").value

    async def work(client):
        import asyncio
        call = asyncio.create_task(client.call_tool("tasks.delete", {"id": row["id"]}))
        message = await asyncio.to_thread(confirm_card, live_server.runtime)
        assert tasks(live_server.runtime) == ["old junk"]  # nothing ran before the click
        assert not call.done()
        assert "outside agent" in message["content"] and "old junk" in message["content"]
        async with httpx.AsyncClient(base_url=live_server.url) as web:
            response = await web.post(f"/chat/confirm/{message['card']['token']}", headers={"HX-Request": "true"})
            assert response.status_code == 200
        return await call

    result = over_http(live_server, work)
    assert not result.is_error and "Deleted" in text_of(result)
    assert tasks(live_server.runtime) == []
    assert events(live_server.runtime)[-1]["actor"] == "agent"


def test_the_agents_card_appears_in_an_open_tab_and_its_click_answers_the_call(live_server, open_page):
    row = live_server.execute("tasks.insert", {"name": "old junk"}, actor="user").value
    page = open_page("/apps/tasks")

    async def work(client):
        return await client.call_tool("tasks.delete", {"id": row["id"]})

    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(over_http, live_server, work)
        card = page.locator(".message.assistant", has_text="outside agent").locator(".confirm-card button.confirm")
        card.click()  # the card came over the chat socket: no reload
        result = call.result(timeout=60)
    assert not result.is_error and "Deleted" in text_of(result)
    page.locator(f"#task-{row['id']}").wait_for(state="detached")  # gone from the list, live
    assert tasks(live_server.runtime) == [] and events(live_server.runtime)[-1]["actor"] == "agent"


def test_a_declined_destructive_call_is_an_error_and_changes_nothing(live_server):
    row = live_server.execute("tasks.insert", {"name": "keep me"}, actor="user").value

    async def work(client):
        import asyncio
        call = asyncio.create_task(client.call_tool("tasks.delete", {"id": row["id"]}))
        message = await asyncio.to_thread(confirm_card, live_server.runtime)
        async with httpx.AsyncClient(base_url=live_server.url) as web:
            await web.post(f"/chat/cancel/{message['card']['token']}", headers={"HX-Request": "true"})
        return await call

    result = over_http(live_server, work)
    assert result.is_error and "declined" in text_of(result)
    assert tasks(live_server.runtime) == ["keep me"]


def in_process(runtime, work, **options):
    """Run `await work(client)` with the SDK's client connected in-process to a server over this runtime."""
    from theseus.mcp_server.gateway import Local
    from theseus.mcp_server.server import build_server
    gateway = Local(runtime, **options)

    async def pick(client: str = ""):
        return gateway

    async def main():
        async with Client(build_server(pick)) as client:
            return await work(client)
    return run_async(main())


def test_a_call_nobody_answers_says_it_waits_and_its_card_still_works(runtime):
    row = runtime.registry.execute("tasks.insert", {"name": "old junk"}).value
    result = in_process(runtime, lambda c: c.call_tool("tasks.delete", {"id": row["id"]}), wait=0.01)
    assert result.structured_content["status"] == "waiting" and not result.is_error
    assert "Nothing has changed yet" in text_of(result) and tasks(runtime) == ["old junk"]
    run_async(runtime.chat.confirm_proposal(result.structured_content["proposal"]))  # the user clicks later
    assert tasks(runtime) == [] and events(runtime)[-1]["actor"] == "agent"


def test_yes_typed_in_the_chat_is_not_a_click_on_an_agents_card(runtime):
    row = runtime.registry.execute("tasks.insert", {"name": "old junk"}).value
    in_process(runtime, lambda c: c.call_tool("tasks.delete", {"id": row["id"]}), clicks=False)
    conversation_id = runtime.chat.conversations.current()["id"]
    approval.allow_here(runtime.db, conversation_id, "tasks.delete")  # Chip may delete here without asking
    assert runtime.chat.agent.answer("yes", conversation_id) is None
    assert tasks(runtime) == ["old junk"]


def test_an_agent_cannot_flood_the_chat_with_cards(runtime):
    from theseus.mcp_server.gateway import OPEN_CARDS
    ids = [runtime.registry.execute("tasks.insert", {"name": f"task {i}"}).value["id"] for i in range(OPEN_CARDS + 1)]

    async def work(client):
        return [await client.call_tool("tasks.delete", {"id": row_id}) for row_id in ids]

    results = in_process(runtime, work, clicks=False)
    assert all(r.structured_content["status"] == "waiting" for r in results[:OPEN_CARDS])
    assert results[-1].is_error and "already wait" in text_of(results[-1])
    assert len(tasks(runtime)) == OPEN_CARDS + 1


def test_a_long_listing_is_cut_and_says_where_the_rest_is(runtime):
    with runtime.db.transaction():
        runtime.db.conn.executemany("INSERT INTO tasks (name, done, priority, profile_id) VALUES (?, 0, ?, ?)",
                                    [(f"task {i}", i, runtime.profile_id) for i in range(450)])
    result = in_process(runtime, lambda c: c.call_tool("tasks.list", {}))
    listed = result.structured_content["results"][0]
    assert len(listed["value"]) == 200 and "the first 200 of 450" in listed["more"]
    assert "theseus://apps/tasks" in text_of(result)


def test_the_user_can_let_agents_run_destructive_calls(live_server):
    row = live_server.execute("tasks.insert", {"name": "old junk"}, actor="user").value
    approval.set_agents_policy(live_server.runtime.db, approval.NEVER)
    result = over_http(live_server, lambda c: c.call_tool("tasks.delete", {"id": row["id"]}))
    assert not result.is_error and tasks(live_server.runtime) == []


def test_the_agents_setting_is_on_the_approvals_page(client):
    assert "Outside agents (MCP)" in client.get("/chip/approvals").text
    assert client.post("/chip/approvals/agents", data={"policy": "sometimes"}).status_code == 400
    response = client.post("/chip/approvals/agents", data={"policy": "never"})
    assert response.status_code == 200 and 'data-policy="never"' in response.text


# ---- resources and search ----

def test_docs_and_app_states_are_resources(live_server):
    live_server.execute("tasks.insert", {"name": "buy oat milk"}, actor="user")

    async def work(client):
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        state = (await client.read_resource("theseus://apps/tasks")).contents[0]
        doc = (await client.read_resource("theseus://docs/crash-course.md")).contents[0]
        return listed, state, doc

    listed, state, doc = over_http(live_server, work)
    assert {"theseus://apps/tasks", "theseus://apps/notes", "theseus://docs/crash-course.md",
            "theseus://docs/apps/tasks.md"} <= listed
    assert [row["name"] for row in json.loads(state.text)["rows"]] == ["buy oat milk"]
    assert doc.text.startswith("#")


def test_an_unknown_resource_is_an_error(live_server):
    async def work(client):
        for uri in ("theseus://apps/nope", "theseus://docs/../../etc/passwd", "file:///etc/passwd"):
            with pytest.raises(Exception, match="no resource"):
                await client.read_resource(uri)
    over_http(live_server, work)


def test_search_returns_cited_excerpts_of_the_action_log(live_server):
    live_server.execute("tasks.insert", {"name": "renew the passport"}, actor="user")
    result = over_http(live_server, lambda c: c.call_tool("search", {"query": "passport", "kinds": ["event"]}))
    assert not result.is_error
    hit = result.structured_content["hits"][0]
    assert hit["cite"].startswith("event #") and "passport" in hit["text"]
    bad = over_http(live_server, lambda c: c.call_tool("search", {"query": "x", "limit": 99}))
    assert bad.is_error and "'limit'" in text_of(bad)


# ---- security ----

@pytest.mark.parametrize("headers, status", [
    ({}, 401),
    ({"Authorization": "Bearer wrong"}, 401),
    ({"Authorization": "Bearer wrong", "Origin": "http://evil.example"}, 403),
    ({"Origin": "http://evil.example", "token": True}, 403),
    ({"Host": "evil.example", "token": True}, 403),
])
def test_mcp_without_the_token_or_from_a_foreign_origin_is_refused(live_server, headers, status):
    headers = dict(headers)
    if headers.pop("token", False):
        headers["Authorization"] = f"Bearer {mcp_token(live_server.config.data_dir)}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(live_server.url + "/mcp", json=body, headers={
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25", **headers})
    assert response.status_code == status
    assert "tasks.insert" not in response.text


def test_the_token_is_made_once_per_data_dir_and_kept_private(config):
    token = mcp_token(config.data_dir)
    assert len(token) >= 32 and mcp_token(config.data_dir) == token
    assert (config.data_dir / "mcp-token").stat().st_mode & 0o077 == 0


# ---- the docs ----

def doc_blocks(language: str) -> list[str]:
    import re

    from theseus.package_docs import doc_text
    return re.findall(rf"```{language}\n(.*?)```", doc_text("mcp.md"), re.S)


def test_the_python_example_in_the_docs_adds_a_task(live_server):
    namespace: dict = {}
    exec(doc_blocks("python")[0], namespace)
    token = mcp_token(live_server.config.data_dir)
    said = run_async(namespace["add_task"](live_server.url + "/mcp", token, "call mom"))
    assert said.startswith("Added task") and tasks(live_server.runtime) == ["call mom"]


def test_the_stdio_configuration_in_the_docs_is_a_theseus_command_line():
    from theseus.cli import build_parser
    server = json.loads(doc_blocks("json")[0])["mcpServers"]["theseus"]
    assert server["command"].endswith("/.venv/bin/theseus")
    parsed = build_parser().parse_args(server["args"])
    assert parsed.command == "mcp" and parsed.data and not parsed.token


# ---- stdio ----

def test_stdio_without_a_server_serves_the_data_dir_itself(config):
    async def work(client):
        names = {tool.name for tool in (await client.list_tools()).tools}
        added = await client.call_tool("tasks.insert", {"name": "from the desktop"})
        row_id = added.structured_content["results"][0]["value"]["id"]
        waits = await client.call_tool("tasks.delete", {"id": row_id})
        return names, added, waits

    names, added, waits = over_stdio(config, work)
    assert {"tasks.insert", "notes.insert", "search"} <= names
    assert not added.is_error
    assert waits.structured_content["status"] == "waiting" and "not running" in text_of(waits)
    from theseus.db import Database
    db = Database(config.db_path)
    try:
        assert [r["name"] for r in db.query("SELECT name FROM tasks")] == ["from the desktop"]  # not deleted
        assert db.value("SELECT actor FROM events WHERE operation = 'tasks.insert'") == "agent"
        assert db.value("SELECT COUNT(*) FROM proposals WHERE actor = 'agent'") == 1  # the card waits
    finally:
        db.close()


def test_stdio_forwards_to_the_running_server(live_server):
    row = live_server.execute("tasks.insert", {"name": "old junk"}, actor="user").value

    async def work(client):
        import asyncio
        call = asyncio.create_task(client.call_tool("tasks.delete", {"id": row["id"]}))
        message = await asyncio.to_thread(confirm_card, live_server.runtime)  # in the server's chat pane
        async with httpx.AsyncClient(base_url=live_server.url) as web:
            await web.post(f"/chat/confirm/{message['card']['token']}", headers={"HX-Request": "true"})
        return await call

    result = over_stdio(live_server.config, work)
    assert not result.is_error and "Deleted" in text_of(result)
    assert tasks(live_server.runtime) == []
