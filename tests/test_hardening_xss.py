"""XSS: a corpus of hostile strings in every place text is shown, in a real Chromium; none may run.

Every page gets a trap (`window.__trap`) before its own scripts; each payload calls it if it
runs, and dialogs are recorded. After the payloads are shown the page must hold no trace, no
element with an event-handler attribute or a script URL, and the payloads' markers as text.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.hardening import XSS_TRAP, xss_payloads

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
PAYLOADS = xss_payloads()

# Elements and attributes that can run script; none may come from what a user or Chip wrote.
ACTIVE = """() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      if (el.matches("form.search") && attr.name === "onsubmit") continue;  // the app's own search box
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, "").toLowerCase();
      if (/^on/i.test(attr.name) || /^(javascript|vbscript|data):/.test(value) && /^(href|src|action|xlink:href|data|formaction)$/i.test(attr.name)
          || /^hx-on/i.test(attr.name) || attr.name === "srcdoc") found.push(el.tagName + " " + attr.name);
    }
  }
  document.querySelectorAll("iframe, object, embed, img, video, svg, math, marquee, body script:not([src])")
    .forEach(el => found.push(el.tagName));
  return found;
}"""


@pytest.fixture
def trap(context):
    """Every page of the context is trapped; `trap.dialogs` collects any alert/confirm/prompt."""
    context.add_init_script(XSS_TRAP)
    dialogs = []
    context.on("page", lambda page: page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss())))
    return dialogs


def assert_inert(page, dialogs):
    page.wait_for_load_state("load")
    assert page.evaluate("window.__xss") == [], "a payload ran"
    assert dialogs == [], "a payload opened a dialog"
    assert page.evaluate(ACTIVE) == []
    assert page.js_errors == []


def assert_markers_shown(text: str, payloads=PAYLOADS):
    missing = [marker for marker, _ in payloads if marker not in text]
    assert not missing, f"not shown as text: {missing}"


def send(page, text):
    page.fill("#chat-form textarea", text)
    page.press("#chat-form textarea", "Enter")


def replies(page):
    return page.locator(".message.assistant:not(.streaming)")


def test_the_trap_catches_a_payload_that_does_run(trap, open_page):
    page = open_page()
    page.evaluate("document.body.insertAdjacentHTML('beforeend', `%s`)" % PAYLOADS[2][1])  # raw HTML: runs
    page.wait_for_function("window.__xss.includes('x02')")
    assert page.evaluate(ACTIVE) != []
    page.evaluate("alert('control')")
    assert trap == ["control"]


def test_hostile_task_and_profile_names_stay_text_everywhere(trap, open_page, live_server):
    page = open_page()
    for _, payload in PAYLOADS[:3]:  # through the form, as a person types them
        page.fill("#tasks-add input[name=name]", payload)
        page.click("#tasks-add button")
        expect(page.locator("#main li.item")).to_have_count(PAYLOADS.index((_, payload)) + 1)
    for _, payload in PAYLOADS[3:]:  # the rest arrive over live sync, as Chip's changes do
        live_server.execute("tasks.insert", {"name": payload}, actor="user")
    expect(page.locator("#main li.item")).to_have_count(len(PAYLOADS))
    shown = [" ".join(n.split()) for n in page.locator("#main li.item .name").all_inner_texts()]
    assert shown == [" ".join(p.split()) for _, p in PAYLOADS]  # exactly the names, as text
    for index in (0, 2, 36):  # the inline edit form carries the name in an attribute
        page.locator("#main li.item .name").nth(index).click()
        expect(page.locator("#main li.editing input[name=name]")).to_have_value(PAYLOADS[index][1].strip())
        page.keyboard.press("Escape")
        expect(page.locator("#main li.editing")).to_have_count(0)
    profiles = [(m, p) for m, p in PAYLOADS if len(p.strip()) <= 100]
    for _, payload in profiles:
        live_server.execute("profiles.insert", {"name": payload}, actor="user")
    expect(page.locator("#profile-menu option")).to_have_count(len(profiles) + 1)
    assert_markers_shown(" ".join(page.locator("#profile-menu option").all_inner_texts()), profiles)
    assert_inert(page, trap)
    for path, region in (("/apps/tasks", "#main"), ("/apps/profiles", "#main"), ("/apps/history", "#main")):
        page.goto(live_server.url + path)  # the full-page render path, too
        page.wait_for_function("document.body.dataset.live === 'open'")
        assert_markers_shown(page.locator(region).inner_text(), profiles if path == "/apps/profiles" else PAYLOADS)
        assert_inert(page, trap)


def test_hostile_chat_messages_and_llm_replies_stay_text(trap, open_page, live_server, backend):
    backend.replies = [payload for _, payload in PAYLOADS]
    page, other = open_page(), open_page()
    for count, (_, payload) in enumerate(PAYLOADS, start=1):  # each user message is answered with a payload
        send(page, payload)
        expect(replies(page)).to_have_count(count, timeout=10_000)
    expect(replies(other)).to_have_count(len(PAYLOADS))
    for tab in (page, other):
        log = tab.locator("#chat-log").inner_text()
        assert_markers_shown(log)
        assert all(log.count(marker) >= 2 for marker, _ in PAYLOADS)  # in the message and in the reply
        assert_inert(tab, trap)
    page.reload()  # the stored conversation renders the same way
    page.wait_for_function("document.body.dataset.live === 'open'")
    assert_markers_shown(page.locator("#chat-log").inner_text())
    expect(page.locator("#conversation-bar .title")).to_contain_text(PAYLOADS[0][0])
    assert_inert(page, trap)


def test_hostile_names_chip_writes_and_lists_stay_text(trap, open_page, live_server, backend):
    chosen = PAYLOADS[::6]
    backend.commands = [{"command": "add", "name": payload} for _, payload in chosen]
    page = open_page()
    for count, (marker, payload) in enumerate(chosen, start=1):  # Chip adds each one: an action card with Undo
        send(page, f"add the task {payload}")  # the name is in the message: Chip writes only what it was given
        expect(replies(page)).to_have_count(count, timeout=10_000)
        expect(replies(page).last).to_contain_text(marker)
    send(page, "/list")
    expect(replies(page)).to_have_count(len(chosen) + 1)
    assert_markers_shown(replies(page).last.inner_text(), chosen)
    assert_markers_shown(page.locator("#main").inner_text(), chosen)
    assert live_server.runtime.db.value("SELECT COUNT(*) FROM tasks") == len(chosen)
    assert_inert(page, trap)


def test_hostile_workflow_step_values_stay_text(trap, open_page, live_server):
    """The Hello workflow: a name typed into its first step shows in the done card, in the next step's
    suggested greeting (an attribute), in what Chip says about it, and in the runs list."""
    fitting = [(m, p) for m, p in PAYLOADS if len(p.strip()) <= 100]  # Hello refuses longer names
    page = open_page("/apps/hello")
    page.click("button.new-run")
    page.wait_for_url("**/apps/hello?run=*")
    page.wait_for_function("document.body.dataset.live === 'open'")
    key = page.url.split("run=")[1]
    page.fill("#main form input[name=value]", fitting[0][1])  # typed, as a person would
    page.click("#main form button[type=submit]")
    expect(page.locator("#main .step.done .value")).to_have_text(fitting[0][1].strip())
    for marker, payload in fitting[1:]:  # the rest as Chip fills the step, arriving over live sync
        live_server.execute("hello.submit", {"key": key, "step": "step_01", "value": payload})
        expect(page.locator("#main .step.done .value")).to_contain_text(marker)
        greeting = f"Hello, {payload.strip()}!".replace("\n", "")  # a one-line input drops line breaks
        expect(page.locator("#main form input[name=value]")).to_have_value(greeting)
    said = [(m, p) for m, p in fitting if len(" ".join(p.split())) <= 80]  # Chip shortens what it quotes
    assert_markers_shown(page.locator("#chat-log").inner_text(), said)  # "Nice to meet you, ...!"
    assert_inert(page, trap)
    page.locator("#main .step.done button.revert").click()  # the old value comes back as an attribute
    expect(page.locator("#main form input[name=value]")).to_have_value(fitting[-1][1].strip().replace("\n", ""))
    assert_inert(page, trap)
    for path in (f"/apps/hello?run={key}", "/apps/hello", "/apps/history"):
        page.goto(live_server.url + path)
        page.wait_for_function("document.body.dataset.live === 'open'")
        assert_inert(page, trap)
    assert_markers_shown(page.locator("#main").inner_text(), said)  # the action log, shortened the same way


FENCE_LANGUAGES = ("python", "html", "js", "nosuchlanguage", "")  # highlighted, highlighted, highlighted, plain, none


def fenced(language: str) -> str:
    """Every payload in a code fence of one language (a fence longer than any a payload holds)."""
    return "\n\n".join(f"``````{language}\n{payload}\n``````" for _, payload in PAYLOADS)


def test_hostile_payloads_in_code_fences_of_every_language_stay_inert(trap, context, open_page, live_server,
                                                                      backend):
    """Highlighting opens no hole: each payload inside fences of five languages, streamed, copied, and shown
    again on the conversation's full-size page."""
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    backend.replies = [fenced(language) for language in FENCE_LANGUAGES]
    page = open_page()
    for count, language in enumerate(FENCE_LANGUAGES, start=1):
        send(page, f"show the payloads as {language or 'plain'} code")
        expect(replies(page)).to_have_count(count, timeout=20_000)
    blocks = page.locator(".message.assistant .code-block code")
    expect(blocks).to_have_count(len(PAYLOADS) * len(FENCE_LANGUAGES))
    assert page.locator(".message.assistant .code-block code span[class^=tok-]").count() > 0  # highlighted
    assert_markers_shown(" ".join(blocks.evaluate_all("codes => codes.map(code => code.textContent)")))
    assert_inert(page, trap)
    script = page.locator(".message.assistant .code-block", has_text="<script").first
    script.locator("button.copy").click()
    expect(script.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == script.locator("code").evaluate("c => c.textContent")
    assert_inert(page, trap)
    page.goto(live_server.url + f"/chat/{live_server.runtime.chat.conversations.current()['id']}")
    page.wait_for_function("document.body.dataset.live === 'open'")
    expect(page.locator("#workspace")).to_have_class("workspace chat-full")
    expect(blocks).to_have_count(len(PAYLOADS) * len(FENCE_LANGUAGES))
    assert_markers_shown(page.locator("#chat-log").inner_text())
    assert_inert(page, trap)
