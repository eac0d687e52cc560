"""The chat for talking about code, in a real Chromium: full size and back mid-stream, /chat/{id}, highlighted
code that copies exactly, Copy as markdown, long replies that stay readable, the reader's place kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.fakes import ScriptedBackend

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PYTHON = ('from pathlib import Path\n\n\ndef lines(path: str) -> int:\n'
          '    """Count the lines of a file."""  # docstring\n'
          '    return len(Path(path).read_text().splitlines()) + 0\n')
LONG_REPLY = " ".join(f"word{i}" for i in range(120)) + "\n\n```python\nprint('done')\n```"
LOG_BOTTOM = "(log) => log.scrollHeight - log.scrollTop - log.clientHeight <= 48"


@pytest.fixture
def backend():
    """Chip streams word by word, slowly enough that a view can be switched while a reply streams."""
    return ScriptedBackend([LONG_REPLY], delay=0.05)


def send(page, text):
    page.fill("#chat-form textarea", text)
    page.press("#chat-form textarea", "Enter")


def finished(page, count: int = 1):
    """Wait until `count` replies are complete and the form is idle again."""
    expect(page.locator(".message.assistant:not(.streaming)")).to_have_count(count, timeout=30_000)
    expect(page.locator("#chat-form[data-streaming=false]")).to_be_attached()


def add_messages(live_server, *pairs, conversation_id=None) -> int:
    """Store (user, assistant) message pairs in a conversation (the current one by default); return its id."""
    conversations = live_server.runtime.chat.conversations
    cid = conversation_id or conversations.current()["id"]
    for question, answer in pairs:
        conversations.add(cid, "user", question)
        conversations.add(cid, "assistant", answer)
    return cid


def grant_clipboard(context, live_server):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def chat_sockets(page) -> list:
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url) if "/chat/ws" in socket.url else None)
    return sockets


def test_full_size_and_back_mid_stream_keeps_one_whole_reply(context, live_server):
    page, errors = context.new_page(), []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sockets = chat_sockets(page)
    page.goto(live_server.url + "/apps/tasks")
    page.wait_for_function("document.body.dataset.live === 'open'")
    workspace, toggle = page.locator("#workspace"), page.locator("button.chat-toggle")
    expect(page.locator("#main")).to_be_visible()
    send(page, "tell me a long story")
    expect(page.locator(".message.assistant.streaming")).to_be_visible()
    toggle.click()  # one click: the chat takes the main area, the conversation list beside it
    expect(workspace).to_have_class("workspace chat-full")
    expect(page.locator("#main")).to_be_hidden()
    expect(page.locator("#chat .chat-history #conversations")).to_be_visible()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Alt+Shift+F")  # and back, by keyboard
    expect(workspace).to_have_class("workspace")
    expect(page.locator("#main")).to_be_visible()
    page.keyboard.press("Alt+Shift+F")
    expect(workspace).to_have_class("workspace chat-full")
    expect(page.locator(".message.assistant.streaming")).to_be_visible()  # all of it happened mid-stream
    finished(page)
    expect(page.locator(".message.user")).to_have_count(1)
    stored = live_server.runtime.chat.conversations.messages(1)
    assert [m["role"] for m in stored] == ["user", "assistant"] and stored[1]["status"] == "done"
    body = page.locator(".message.assistant .body")
    expect(body).to_contain_text("word0 word1")
    expect(body).to_contain_text("word119")
    assert body.inner_text().count("word119") == 1 and body.locator(".code-block").count() == 1  # nothing doubled
    assert len(sockets) == 1  # the same WebSocket all along
    page.reload()  # remembered for this tab
    expect(page.locator("#workspace")).to_have_class("workspace chat-full")
    assert errors == []


def test_chat_page_opens_a_conversation_full_size_with_the_list_beside_it(open_page, live_server):
    first = add_messages(live_server, ("how many lines?", f"Like this:\n\n```python\n{PYTHON}```"))
    conversations = live_server.runtime.chat.conversations
    second = conversations.create("Another talk")["id"]
    add_messages(live_server, ("older question", "older **answer**"), conversation_id=second)
    page = open_page(f"/chat/{first}")
    expect(page.locator("#workspace")).to_have_class("workspace chat-full")
    expect(page.locator("#main")).to_be_hidden()
    expect(page.locator("#conversations li")).to_have_count(2)
    expect(page.locator("#conversations li.current")).to_contain_text("how many lines?")
    expect(page.locator(".message.assistant .code-block .tok-k").first).to_be_visible()
    expect(page.locator("#chat-form textarea")).to_be_visible()

    page.goto(live_server.url + f"/chat/{second}")  # not the current one: shown, not made current by a GET
    expect(page.locator(".message.assistant")).to_contain_text("older answer")
    expect(page.locator("#chat-form")).to_be_hidden()
    assert conversations.current()["id"] == first
    page.wait_for_function("document.body.dataset.live === 'open'")
    other = open_page()  # Chip talks in the current conversation meanwhile: the shown one takes none of it
    send(other, "a question in the current conversation")
    finished(other, 2)
    expect(page.locator(".message")).to_have_count(2)
    expect(page.locator("#chat-log")).not_to_contain_text("a question in the current conversation")
    expect(page.locator("#conversation-bar .title")).to_have_text("Another talk")
    page.locator("#conversation-bar button.continue").click()
    expect(page.locator("#chat-form textarea")).to_be_visible()
    expect(page.locator("#conversation-bar button.continue")).to_have_count(0)
    assert conversations.current()["id"] == second
    page.locator(f"#conversation-{first} a").click()  # switching from the list: the address follows
    expect(page.locator("#conversation-bar .title")).to_have_text("how many lines?")
    page.wait_for_function(f"location.pathname === '/chat/{first}'")
    assert page.js_errors == []


def test_a_python_block_is_highlighted_and_copy_gives_exactly_the_source(context, open_page, live_server, backend):
    grant_clipboard(context, live_server)
    backend.replies = [f"Here:\n\n```python\n{PYTHON}```\n\nSee src/theseus/app.py:10 for more."]
    page = open_page()
    send(page, "show me code")
    finished(page)
    block = page.locator(".message.assistant .code-block")
    expect(block.locator(".code-lang")).to_have_text("python")
    for token in ("tok-k", "tok-nf", "tok-s", "tok-c"):
        expect(block.locator(f"code span.{token}").first).to_be_visible()
    expect(block.locator("pre.numbered")).to_be_visible()  # six lines: numbered
    number = block.locator(".line").first.evaluate("el => getComputedStyle(el, '::before').content")
    assert number == "counter(line)" or number.strip('"') == "1"
    block.locator("button.copy").click()
    expect(block.locator("button.copy")).to_have_text("Copied")
    assert clipboard(page) == PYTHON.removesuffix("\n")  # no line numbers, no stray whitespace
    assert block.locator("code").inner_text() == PYTHON.removesuffix("\n")  # what a selection shows, too
    assert page.js_errors == []


def test_copy_as_markdown_gives_the_stored_source(context, open_page, live_server):
    grant_clipboard(context, live_server)
    answer = "# Plan\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nlet x = `t`;\n```\n\n- **bold** and `code`"
    add_messages(live_server, ("make a *plan*", answer))
    page = open_page()
    for selector, source in ((".message.assistant", answer), (".message.user", "make a *plan*")):
        button = page.locator(f"{selector} button.copy-md")
        button.click()
        expect(button).to_have_text("Copied")
        assert clipboard(page) == source
    stored = [m["content"] for m in live_server.runtime.chat.conversations.messages(1)]
    assert stored == ["make a *plan*", answer]
    assert page.js_errors == []


def test_long_replies_stay_readable_in_the_narrow_pane_and_full_size(open_page, live_server):
    path = "src/theseus/apps/" + "very_long_directory_name/" * 6 + "history.py"
    table = "| " + " | ".join(f"column{i}" for i in range(14)) + " |\n|" + "---|" * 14 + "\n|" + " x |" * 14
    code = "```python\nx = '" + "y" * 400 + "'\n```"
    add_messages(live_server, ("long things", f"The file {path} is long.\n\n{table}\n\n{code}"))
    page = open_page()
    for full in (False, True):
        message = page.locator(".message.assistant")
        overflow = message.evaluate("m => m.closest('#chat-log').scrollWidth - m.closest('#chat-log').clientWidth")
        assert overflow <= 1  # the log never scrolls sideways: each part handles its own width
        assert message.locator(".table-wrap").evaluate("t => t.scrollWidth > t.clientWidth")  # the table scrolls
        assert message.locator("pre").evaluate("p => p.scrollWidth > p.clientWidth")  # the code line scrolls
        assert message.locator("p").first.evaluate("p => p.scrollWidth <= p.clientWidth")  # the prose wraps
        if not full:
            page.locator("button.chat-toggle").click()
            expect(page.locator("#workspace")).to_have_class("workspace chat-full")
    assert page.js_errors == []


def test_a_streaming_reply_keeps_the_readers_place_unless_at_the_bottom(open_page, live_server, backend):
    add_messages(live_server, *[(f"question {i}", f"answer {i}\n\n" + "filler line\n\n" * 4) for i in range(12)])
    backend.replies = [" ".join(f"paragraph{i}\n\n" for i in range(100))]  # a paragraph per streamed piece
    page = open_page()
    log = page.locator("#chat-log")
    page.wait_for_function(f"({LOG_BOTTOM})(document.getElementById('chat-log'))")
    send(page, "first long reply")
    expect(page.locator(".message.assistant.streaming .body")).to_contain_text("paragraph10")
    log.evaluate("log => log.scrollTo(0, 0)")  # the reader scrolls up to read something earlier
    finished(page, 13)
    assert log.evaluate("log => log.scrollTop") == 0  # their place was kept while the reply streamed

    log.evaluate("log => log.scrollTo(0, log.scrollHeight)")
    send(page, "second long reply")
    expect(page.locator(".message.assistant.streaming .body")).to_contain_text("paragraph10")
    finished(page, 14)
    assert log.evaluate(LOG_BOTTOM)  # at the bottom, the log followed the reply to its end
    assert page.js_errors == []
