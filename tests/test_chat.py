"""The chat pipeline with a scripted backend: conversations, context, WebSocket turns, stop, failures."""

from __future__ import annotations

import json
import time

import pytest

from theseus.chat.context import ContextTooLarge, build_context
from theseus.chat.conversations import Conversations
from theseus.llm.base import BackendError, BackendUnavailable

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.timeout(30)  # a socket that never gets its frame fails instead of hanging


@pytest.fixture
def conversations(runtime) -> Conversations:
    return runtime.chat.conversations


def test_conversations_persist_title_search_rename_delete(conversations, runtime, config):
    first = conversations.current()
    conversations.add(first["id"], "user", "Plan the garden party")
    conversations.add(first["id"], "assistant", "Start with a guest list.")
    second = conversations.create()
    conversations.add(second["id"], "user", "Tax return questions")
    assert conversations.get(first["id"])["title"] == "Plan the garden party"
    assert [c["id"] for c in conversations.list("guest LIST")] == [first["id"]]
    assert [c["id"] for c in conversations.list("100%_")] == []
    conversations.rename(second["id"], "  Taxes\n2026 ")
    assert conversations.get(second["id"])["title"] == "Taxes 2026"
    with pytest.raises(ValueError):
        conversations.rename(second["id"], "   ")
    runtime.close()
    reopened = Conversations(type(runtime.db)(config.db_path))
    assert [m["role"] for m in reopened.messages(first["id"])] == ["user", "assistant"]
    reopened.delete(first["id"])
    assert reopened.messages(first["id"]) == [] and reopened.get(first["id"]) is None


def test_export_as_markdown_and_json(conversations):
    cid = conversations.current()["id"]
    conversations.add(cid, "user", "Hi **Chip**")
    conversations.add(cid, "assistant", "Hello!", status="stopped")
    markdown = conversations.export_markdown(cid)
    assert markdown.startswith("# Hi **Chip**") and "## You" in markdown and "## Chip (stopped)" in markdown
    data = json.loads(conversations.export_json(cid))
    assert [m["content"] for m in data["messages"]] == ["Hi **Chip**", "Hello!"]


def test_a_message_too_long_for_the_window_is_refused(runtime, backend):
    cid = runtime.chat.conversations.current()["id"]
    runtime.chat.conversations.add(cid, "user", "y" * 9000)
    with pytest.raises(ContextTooLarge):
        build_context(runtime, backend, cid, window=2000)


FINAL = r'hx-swap-oob="outerHTML:#message-s\d+"'  # the stored reply replacing the streamed one


def test_a_turn_streams_to_every_tab_and_is_stored(socket, runtime, backend):
    backend.replies = ["Hello **there**, friend."]
    one, two = socket("one"), socket("two")
    one.send(action="send", message="  hi Chip  ", HEADERS={"HX-Request": "true"})
    for tab in (one, two):
        user = tab.until(r'class="message user"')
        assert "hi Chip" in user and 'hx-swap-oob="beforeend:#chat-log"' in user
        assert '<span class="title" title="hi Chip">hi Chip</span>' in user  # the conversation got its title
        assert 'data-streaming="true"' in tab.until("chat-form")
        final = tab.until(FINAL)
        assert "<strong>there</strong>" in final and 'hx-swap-oob="outerHTML:#message-s1"' in final
        assert 'data-streaming="false"' in final  # Send is enabled again in the same frame
    messages = runtime.chat.conversations.messages(runtime.chat.conversations.current()["id"])
    assert [(m["role"], m["content"].strip(), m["status"]) for m in messages] == [
        ("user", "hi Chip", "done"), ("assistant", "Hello **there**, friend.", "done")]
    assert backend.prompts[-1][-1] == {"role": "user", "content": "hi Chip"}
    assert backend.temperatures == [runtime.config.temperature]  # THESEUS_TEMPERATURE reaches the model


def test_stop_really_cancels_and_keeps_what_was_said(socket, runtime, backend):
    backend.replies = [" ".join(f"word{i}" for i in range(200))]
    backend.delay = 0.02
    tab = socket()
    tab.send(action="send", message="talk a lot")
    tab.until(r"word3")
    tab.send(action="stop")
    final = tab.until(FINAL)
    assert "(stopped)" in final and backend.stopped_early
    reply = runtime.chat.conversations.messages(1)[-1]
    assert reply["status"] == "stopped" and "word199" not in reply["content"]


@pytest.mark.parametrize("failure, shown", [
    (BackendUnavailable("Cannot reach Ollama at http://127.0.0.1:11434"), "Cannot reach Ollama"),
    (BackendError("garbage from the server"), "garbage from the server"),
])
def test_a_backend_failure_is_shown_and_nothing_half_written(socket, runtime, backend, failure, shown):
    backend.fail = failure
    tab = socket()
    tab.send(action="send", message="are you there?")
    notice = tab.until("chat-notice")
    assert "Chip can't answer right now" in notice and shown in notice and 'role="alert"' in notice
    assert 'data-streaming="false"' in notice
    assert [m["role"] for m in runtime.chat.conversations.messages(1)] == ["user"]
    backend.fail = None  # the backend is back: the next turn works by itself
    tab.send(action="send", message="and now?")
    tab.until(FINAL)


def test_a_model_still_loading_is_explained(socket, backend):
    from theseus.llm.base import BackendStatus
    backend.state = BackendStatus("loading", "Loading qwen2.5-coder-0.5b-instruct", 0.4)
    tab = socket()
    tab.send(action="send", message="hello?")
    assert "Loading qwen" in tab.until("chat-notice")


@pytest.mark.parametrize("raw, shown", [
    ('{"action": "send", "message": "   "}', "Type a message first."),
    ('{"action": "send", "message": "' + "z" * 9000 + '"}', "the limit is 8,000"),
    ('{"action": "send", "message": 42}', "Type a message first."),
    ("not json at all", "not understood"),
    ('["send"]', "not understood"),
    ('{"action": "rm -rf"}', "not understood"),
])
def test_bad_socket_messages_get_a_notice(socket, runtime, raw, shown):
    tab = socket()
    tab.ws.send_text(raw)
    assert shown in tab.until("chat-notice")
    assert runtime.chat.conversations.list() == [] or runtime.chat.conversations.messages(1) == []


def test_a_second_message_while_streaming_is_refused(socket, backend):
    backend.replies = [" ".join(["slow"] * 100)]
    backend.delay = 0.02
    tab = socket()
    tab.send(action="send", message="first")
    tab.until("slow")
    tab.send(action="send", message="second")
    assert "still answering" in tab.until("chat-notice")
    tab.send(action="stop")
    tab.until(FINAL)


def test_hostile_model_output_is_rendered_inert(socket, backend):
    backend.replies = ['<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>']
    tab = socket()
    tab.send(action="send", message="be evil")
    final = tab.until(FINAL)
    assert "<script" not in final and "<img" not in final and "javascript:" not in final.split("&lt;")[0]
    assert "&lt;script&gt;" in final


def test_poke_gives_a_state_aware_nudge(socket, client, runtime, backend):
    runtime.registry.execute("tasks.insert", {"name": "file the taxes"})
    backend.replies = ["You have 1 open task: file the taxes."]
    tab = socket()
    assert client.post("/poke", headers=HX).status_code == 204
    final = tab.until(FINAL)
    assert "file the taxes" in final
    prompt = backend.prompts[-1]
    assert "Poke" in prompt[-1]["content"]
    assert any("the user: Added task 'file the taxes'" in m["content"] for m in prompt[1:-1])  # the action, as news
    assert [m["role"] for m in runtime.chat.conversations.messages(1)] == ["assistant"]


def test_conversation_routes(client, runtime, socket):
    conversations = runtime.chat.conversations
    first = conversations.current()
    conversations.add(first["id"], "user", "old topic")
    tab = socket()
    response = client.post("/chat/new", headers=HX)
    assert response.status_code == 200 and "Say hello to Chip." in response.text
    assert 'id="conversation-bar"' in tab.until("conversation-bar")
    second = conversations.current()
    assert second["id"] != first["id"]
    client.post(f"/chat/{second['id']}/rename", headers={**HX, "HX-Prompt": "Renamed"})
    assert conversations.get(second["id"])["title"] == "Renamed"
    assert "old topic" in client.post(f"/chat/{first['id']}/switch", headers=HX).text
    assert "old topic" in client.get("/chat/list", params={"q": "old"}).text
    assert "Renamed" not in client.get("/chat/list", params={"q": "old"}).text
    md = client.get(f"/chat/{first['id']}/export.md")
    assert md.headers["content-type"].startswith("text/markdown") and "old topic" in md.text
    assert json.loads(client.get(f"/chat/{first['id']}/export.json").text)["messages"][0]["content"] == "old topic"
    assert client.post(f"/chat/{first['id']}/delete", headers=HX).status_code == 200
    assert conversations.get(first["id"]) is None
    for path in ("/chat/999/switch", "/chat/999/delete", "/chat/999/rename"):
        assert client.post(path, headers=HX).status_code == 404
    assert client.get("/chat/999/export.md").status_code == 404
    assert client.post(f"/chat/{second['id']}/rename", headers={**HX, "HX-Prompt": " "}).status_code == 400


def test_the_chat_page_shows_a_conversation_full_size_and_changes_nothing(client, runtime):
    conversations = runtime.chat.conversations
    current = conversations.current()
    conversations.add(current["id"], "user", "about `history.py`")
    other = conversations.create("Older talk")
    conversations.add(other["id"], "assistant", "```python\nimport os\n```")
    page = client.get(f"/chat/{current['id']}")
    assert page.status_code == 200 and 'data-chat-page="true"' in page.text and "chat-full" in page.text
    assert "about <code>history.py</code>" in page.text and "data-preview" not in page.text
    assert f'href="/chat/{other["id"]}"' in page.text  # the conversation list, each with its own page
    shown = client.get(f"/chat/{other['id']}")
    assert 'data-preview="true"' in shown.text and "Continue this conversation" in shown.text
    assert '<span class="tok-k">import</span>' in shown.text
    assert conversations.current()["id"] == current["id"]  # a GET shows, never switches
    assert client.get("/chat/999").status_code == 404 and client.get("/chat/abc").status_code == 400
    assert client.get("/chat/0").status_code == 400
    for path in ("/chat/status", "/chat/list"):  # the named chat routes are not conversation ids
        assert client.get(path).status_code == 200


def test_a_message_markdown_source_is_served_as_stored(client, runtime):
    conversations = runtime.chat.conversations
    source = "# Title\n\n```python\nx = 1  \n```\n\n| a |\n|---|\n| <b>1</b> |\n"
    message = conversations.add(conversations.current()["id"], "assistant", source)
    response = client.get(f"/chat/messages/{message['id']}.md")
    assert response.status_code == 200 and response.text == source
    assert response.headers["content-type"].startswith("text/markdown")
    page = client.get("/apps/tasks").text
    assert f'data-source="/chat/messages/{message["id"]}.md"' in page and "Copy as markdown" in page
    assert client.get("/chat/messages/999.md").status_code == 404
    assert client.get("/chat/messages/x.md").status_code == 400


def test_model_status_polls_until_ready(client, backend):
    from theseus.llm.base import BackendStatus
    backend.state = BackendStatus("loading", "Loading the model", 0.5)
    loading = client.get("/chat/status", headers=HX).text
    assert "Loading the model 50%" in loading and 'hx-trigger="every 1s"' in loading
    backend.state = BackendStatus("ready", "ok")
    ready = client.get("/chat/status", headers=HX).text
    assert "Chip is ready" in ready and "hx-trigger" not in ready


def test_the_chat_socket_refuses_a_foreign_origin(client, config):
    from starlette.websockets import WebSocketDisconnect
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/chat/ws", headers={"host": f"127.0.0.1:{config.port}",
                                                           "origin": "http://evil.example"}) as ws:
            ws.receive_text()

