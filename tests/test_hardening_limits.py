"""Limits on what one request can make the server hold or do: live-sync streams, chat sockets,
request bodies, chat socket messages, and a model that never stops talking.

Each limit is reached by counting (streams opened, bytes sent, characters streamed), never by time.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.websockets import WebSocketDisconnect

from tests.conftest import run_async
from tests.hardening import check_invariants
from tests.llm.conftest import serve
from tests.test_hardening_origin import counts
from theseus.chat.routes import SOCKET_MESSAGE_LIMIT
from theseus.chat.service import REPLY_LIMIT
from theseus.events import STREAM_LIMIT
from theseus.limits import BODY_LIMIT
from theseus.llm.openai_compat import OpenAICompatBackend
from tests.waits import wait_until

pytestmark = pytest.mark.timeout(90)
HX = {"HX-Request": "true"}


# ---- live-sync streams and chat sockets ----

def open_tabs(live_server) -> int:
    return httpx.get(f"{live_server.url}/health").json()["tabs"]


def test_live_sync_streams_are_capped_and_a_refused_tab_gets_in_once_one_leaves(live_server):
    with httpx.Client(base_url=live_server.url, timeout=10) as http, ExitStack() as tabs:
        streams = [tabs.enter_context(http.stream("GET", f"/sync?tab=t{n}")) for n in range(STREAM_LIMIT)]
        assert all(stream.status_code == 200 for stream in streams) and open_tabs(live_server) == STREAM_LIMIT
        refused = http.get("/sync?tab=one-too-many")
        assert refused.status_code == 503 and f"{STREAM_LIMIT} tabs are already connected" in refused.text
        assert refused.headers["retry-after"] and open_tabs(live_server) == STREAM_LIMIT
        streams[0].close()  # one tab goes
        wait_until(lambda: open_tabs(live_server) < STREAM_LIMIT, "the server to notice the tab left")
        late = tabs.enter_context(http.stream("GET", "/sync?tab=late"))
        assert late.status_code == 200 and open_tabs(live_server) == STREAM_LIMIT


def test_chat_sockets_are_capped_with_a_notice(client, runtime, socket):
    runtime.chat.sockets.limit = 2  # the same Broadcaster limit as live sync, lowered to keep this test small
    first, second = socket("a"), socket("b")
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/chat/ws?tab=c", headers={"host": f"127.0.0.1:{runtime.config.port}",
                                                                 "origin": runtime.config.origin}) as ws:
            assert "2 tabs are already connected" in ws.receive_text()
            ws.receive_text()
    assert closed.value.code == 1013
    first.send(action="send", message="/add still works")
    assert "Added task" in first.until("Added task") and "Added task" in second.until("Added task")


# ---- request bodies ----

def test_a_body_over_the_limit_gets_413_and_stores_nothing(client, runtime):
    runtime.chat.conversations.current()
    before = counts(runtime.db)
    big = "x" * (2 * 1024 * 1024)
    for request in ({"data": {"name": big}}, {"content": json.dumps({"name": big}),
                                               "headers": {"content-type": "application/json"}}):
        response = client.post("/ops/tasks.insert", **request)
        assert response.status_code == 413 and "too large: the limit is 1,024 KiB" in response.text
    response = client.post("/ops/tasks.insert", data={"name": big}, headers=HX)
    assert response.status_code == 413 and 'class="toast error"' in response.text  # shown like any refusal
    assert client.post("/chat/new", content=big).status_code == 413
    assert counts(runtime.db) == before
    check_invariants(runtime.db)


def test_a_body_under_the_limit_is_read_as_before(client, runtime):
    assert client.post("/ops/tasks.insert", data={"name": "n" * 500}).status_code == 200
    near = client.post("/ops/tasks.insert", data={"name": "n" * (BODY_LIMIT - 100)})
    assert near.status_code == 400 and "500" in near.text  # refused by the operation (too long a name), not by size
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 1


def test_a_chunked_body_is_counted_while_it_streams(live_server):
    db = live_server.runtime.db

    def chunks():
        yield b"name="
        for _ in range(64):  # 2 MiB in 32 KiB pieces, with no Content-Length
            yield b"y" * 32768

    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        response = http.post("/ops/tasks.insert", content=chunks(),
                             headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 413 and "too large" in response.text
        declared = http.post("/ops/tasks.insert", data={"name": "z" * (2 * 1024 * 1024)})
        assert declared.status_code == 413
        assert http.post("/ops/tasks.insert", data={"name": "fits"}).status_code == 200
    assert [row["name"] for row in db.query("SELECT name FROM tasks")] == ["fits"]


def test_a_huge_chat_socket_message_is_refused_with_a_notice(socket, runtime):
    tab = socket()
    tab.ws.send_text(json.dumps({"action": "send", "message": "m" * (SOCKET_MESSAGE_LIMIT + 1)}))
    assert "That message is too large" in tab.until("chat-notice")
    assert runtime.db.value("SELECT COUNT(*) FROM messages") == 0
    tab.send(action="send", message="/add after the big one")
    tab.until("Added task")


# ---- a model that never stops ----

def endless_model(behaviour: dict) -> Starlette:
    """An OpenAI-compatible server whose replies never end (or whose one line never ends)."""
    async def chat(request: Request):
        body = await request.json()
        if not body.get("stream"):
            message = {"role": "assistant", "content": json.dumps({"command": "chat"})}
            return JSONResponse({"choices": [{"message": message, "finish_reason": "stop"}]})
        return StreamingResponse(forever(behaviour), media_type="text/event-stream")

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "m"}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


async def forever(behaviour: dict):
    if behaviour["mode"] == "one endless line":
        yield 'data: {"choices": [{"delta": {"content": "'
    while True:
        yield "la " * 1000 if behaviour["mode"] == "one endless line" else \
            'data: {"choices": [{"delta": {"content": "la "}}]}\n\n'
        await asyncio.sleep(0)


class TestAModelThatNeverStops:
    """The real OpenAI-compatible backend, talking to a server that never stops (only these tests use it)."""

    @pytest.fixture
    def behaviour(self):
        return {"mode": "endless"}

    @pytest.fixture
    def backend(self, behaviour):
        with serve(endless_model(behaviour)) as url:
            backend = OpenAICompatBackend(f"{url}/v1", "m", first_token_timeout=30, stall_timeout=30)
            yield backend
            try:
                run_async(backend.close())
            except RuntimeError:  # its client belonged to the app's event loop, which is gone
                pass

    def test_an_endless_reply_is_cut_with_a_note_and_the_chat_frees_up(self, socket, runtime):
        tab = socket()
        for turn in (1, 2):  # the chat is free again after a cut reply
            tab.send(action="send", message=f"/chat tell me everything ({turn})")
            final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
            assert f"(reply cut at {REPLY_LIMIT:,} characters)" in final
            assert 'data-streaming="false"' in final and not runtime.chat.streaming  # the form is free again
        replies = [m for m in runtime.chat.conversations.messages(1) if m["role"] == "assistant"]
        assert len(replies) == 2
        for reply in replies:
            text, note = reply["content"].rsplit("\n\n", 1)
            assert len(text) == REPLY_LIMIT and note == f"*(reply cut at {REPLY_LIMIT:,} characters)*"

    def test_a_reply_line_that_never_ends_is_stopped_at_the_byte_limit(self, socket, runtime, behaviour):
        behaviour["mode"] = "one endless line"
        tab = socket()
        tab.send(action="send", message="/chat tell me everything")
        notice = tab.until("chat-notice")
        assert "Chip can't answer right now" in notice and "sent more than 8 MiB" in notice
        assert not runtime.chat.streaming
        assert [m["role"] for m in runtime.chat.conversations.messages(1)] == ["user"]  # no half reply stored
