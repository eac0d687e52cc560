"""The source viewer, Chip's context page, and sources under Chip's replies, through the real app."""

from __future__ import annotations

import json
import re

import pytest

from theseus.knowledge import Knowledge
from theseus.knowledge.embedders import E5Embedder
from theseus.knowledge.index import Source

HX = {"HX-Request": "true"}
GUIDE = "# Brewing guide\n\nIntro.\n\n## Coffee\n\nTo make coffee, grind the beans.\nPour hot water slowly.\n"
HOSTILE = "# <script>alert('x')</script> Tea\n\nSteep the leaves <b>three</b> minutes.\n"


@pytest.fixture(scope="module")
def e5():
    return E5Embedder()


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text(GUIDE)
    (root / "docs" / "tea.md").write_text(HOSTILE)
    (root / "secret.md").write_text("# Secret\n\nnot indexed\n")
    return root


@pytest.fixture
def runtime(runtime, corpus, e5):
    """The app's runtime, its knowledge index built over the small corpus."""
    runtime.knowledge = Knowledge(runtime.db, runtime.config, sources=[Source(corpus, "docs/*.md", "doc")],
                                  embedder=e5)
    runtime.knowledge.refresh()
    return runtime


def test_the_viewer_shows_an_indexed_file_with_numbered_lines_at_a_line(client):
    page = client.get("/source", params={"path": "docs/guide.md", "line": "5", "end": "8"})
    assert page.status_code == 200 and "<title>docs/guide.md · Theseus source</title>" in page.text
    assert re.search(r'<span id="L5" class="line hl">.*## Coffee</span>', page.text)
    assert '<span id="L3" class="line">' in page.text and 'id="L8" class="line hl"' in page.text


def test_the_viewer_escapes_the_file(client):
    page = client.get("/source", params={"path": "docs/tea.md"})
    assert page.status_code == 200 and "<script>alert" not in page.text and "&lt;script&gt;" in page.text


@pytest.mark.parametrize("path", [
    "secret.md", "../secret.md", "docs/../secret.md", "/etc/passwd", "../../../../etc/passwd",
    "docs/%2e%2e/secret.md", "", "docs/guide.md\x00.py", "docs\\..\\secret.md",
])
def test_the_viewer_opens_nothing_outside_the_index(client, path):
    page = client.get("/source", params={"path": path})
    assert page.status_code == 404
    assert "is not a file in Chip" in page.text and "Traceback" not in page.text and "not indexed" not in page.text


def test_a_file_deleted_since_indexing_is_a_clear_404(client, corpus):
    (corpus / "docs" / "guide.md").unlink()
    page = client.get("/source", params={"path": "docs/guide.md", "line": "x"})
    assert page.status_code == 404 and "no longer exists" in page.text


def test_a_question_gets_sources_that_are_stored_and_shown_after_a_reload(socket, client, runtime, backend):
    backend.replies = ["Grind the beans [docs/guide.md:5]."]
    tab = socket()
    tab.send(action="send", message="How do I make coffee?")
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    link = '<a href="/source?path=docs%2Fguide.md&amp;line=5&amp;end=8#L5" target="_blank" class="source-link">' \
           'docs/guide.md:5</a>'
    assert link in final
    prompt = backend.prompts[-1]
    assert prompt[-2] == {"role": "user", "content": "How do I make coffee?"}  # the excerpts come after it
    assert prompt[-1]["role"] == "system" and "[docs/guide.md:5] Brewing guide › Coffee" in prompt[-1]["content"]
    stored = runtime.chat.conversations.messages(runtime.chat.conversations.current()["id"])[-1]
    assert json.loads(stored["sources"])[0] | {"title": ""} == {
        "path": "docs/guide.md", "line": 5, "end": 8, "title": "", "kind": "doc", "event_id": None}
    assert link in client.get("/apps/tasks").text  # after a reload, from the stored message
    assert client.get("/source?path=docs%2Fguide.md&line=5&end=8").status_code == 200


def test_small_talk_looks_nothing_up(socket, runtime, backend):
    tab = socket()
    tab.send(action="send", message="thanks")
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "source-link" not in final
    assert not any("Excerpts for this question" in m["content"] for m in backend.prompts[-1])


def test_source_titles_are_escaped_under_a_reply(socket, backend):
    tab = socket()
    tab.send(action="send", message="How long do I steep tea?")
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "docs/tea.md:1" in final and "<script>" not in final


def test_the_context_page_shows_every_part_of_the_next_context(client, runtime):
    cid = runtime.chat.conversations.current()["id"]
    runtime.chat.conversations.add(cid, "user", "hello")
    runtime.registry.execute("tasks.insert", {"name": "buy beans"})
    page = client.get("/chip/context", params={"message": "how do I make coffee?"})
    assert page.status_code == 200
    html = page.text
    for part in ("system", "knowledge", "conversation", "events"):
        assert f"<td>{part}</td>" in html
    assert "Looked up (doc, code) because it asks a question" in html
    assert 'href="/source?path=docs%2Fguide.md&amp;line=5&amp;end=8#L5"' in html and "in the context" in html
    assert "You are Chip" in html and "buy beans" in html and "hello" in html
    assert runtime.chat.conversations.messages(cid)[-1]["content"] == "hello"  # the preview sent nothing


def test_the_context_page_without_a_message_and_with_a_tight_window(client, runtime):
    page = client.get("/chip/context")
    assert page.status_code == 200 and "Nothing was looked up" in page.text
    runtime.backend.n_ctx = 1200  # a tiny model window: the excerpts must give way
    page = client.get("/chip/context", params={"message": "how do I make coffee? " + "please " * 300})
    assert page.status_code == 200 and "Traceback" not in page.text
    runtime.backend.n_ctx = 700
    page = client.get("/chip/context", params={"message": "x" * 9000})
    assert page.status_code == 200 and "too long for the model" in page.text


def test_the_chat_pane_links_to_the_context_page_from_where_the_tab_is(client, runtime):
    assert 'href="/chip/context?app=tasks"' in client.get("/apps/tasks").text
    runtime.registry.execute("hello.start")
    assert 'href="/chip/context?app=hello&amp;run=home-hello-01"' in client.get("/apps/hello?run=home-hello-01").text


def test_excerpts_give_way_before_the_conversation_when_the_window_is_tight(runtime, backend):
    from theseus.chat.context import build_context
    cid = runtime.chat.conversations.current()["id"]
    roomy = build_context(runtime, backend, cid, pending="how do I make coffee?")
    assert [h.cite for h in roomy.knowledge][:1] == ["docs/guide.md:5"] and roomy.tokens["knowledge"] > 0
    window = roomy.tokens["system"] + 512 + 20  # room for the question, not for the excerpts
    tight = build_context(runtime, backend, cid, pending="how do I make coffee?", window=window)
    assert tight.knowledge == [] and "knowledge" not in tight.tokens
    assert "knowledge: docs/guide.md:5 (no room)" in tight.dropped
    assert tight.messages[-1] == {"role": "user", "content": "how do I make coffee?"}
    assert roomy.messages[-2] == tight.messages[-1]  # in a roomy window the excerpts follow the question


def test_the_search_box_finds_passages_as_well_as_apps(client):
    found = client.get("/search", params={"q": "how do I make coffee"}).text
    assert "In the docs and code" in found and "/source?path=docs%2Fguide.md&amp;line=5" in found
    assert "Coffee" in found
    assert "knowledge-hits" not in client.get("/search", params={"q": "ta"}).text  # too short to look up


def test_path_line_references_in_replies_link_to_the_viewer_for_indexed_files_only(client, runtime):
    conversations = runtime.chat.conversations
    conversations.add(conversations.current()["id"], "assistant",
                      "Coffee is at docs/guide.md:5-8 (and `docs/tea.md:1`); secret.md:1 is not indexed.")
    page = client.get("/apps/tasks").text
    links = re.findall(r'<a class="source-ref" href="([^"]+)"', page)
    assert links == ["/source?path=docs%2Fguide.md&amp;line=5&amp;end=8#L5", "/source?path=docs%2Ftea.md&amp;line=1#L1"]
    assert "secret.md:1 is not indexed" in page and "path=secret.md" not in page
    viewer = client.get(links[0].replace("&amp;", "&"))
    assert viewer.status_code == 200 and 'id="L5" class="line hl"' in viewer.text
