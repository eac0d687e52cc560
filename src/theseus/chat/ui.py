"""Chat components: the pane, one message, the form, the conversation list, the model status."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from fasthtml.common import (A, Article, Aside, Button, Details, Div, Footer, Form, Header, Input, Li, NotStr, P,
                             Progress, Small, Span, Strong, Summary, Textarea, Ul, to_xml)

from ..changes.ui import LazyCodeCard
from ..knowledge.recall import stored_sources
from ..knowledge.viewer import source_url
from ..location import LOCATION_ID, NOWHERE, Location
from ..markup import IndexedPaths, render_markdown
from .approval import APPROVALS_URL

CHAT_LOG_ID = "chat-log"
CHAT_FORM_ID = "chat-form"
CHAT_STATUS_ID = "chat-status"
CONVERSATIONS_ID = "conversations"
MESSAGE_LIMIT = 8000
FULL_SIZE_KEYS = "Alt+Shift+F"  # toggles the full-size chat (theseus.js)
CONTEXT_URL = "/chip/context"  # the page showing what Chip would see (knowledge/mind.py)


def message_id(message_id_or_key) -> str:
    return f"message-{message_id_or_key}"


def body_id(key) -> str:
    return f"message-{key}-body"


def markdown_url(message_id: int) -> str:
    """The stored markdown source of one message."""
    return f"/chat/messages/{message_id}.md"


def CopyMarkdown(message_id: int):
    """Puts the message's stored markdown source on the clipboard (theseus.js fetches it)."""
    return Button("Copy as markdown", type="button", cls="copy-md outline secondary",
                  data_source=markdown_url(message_id), title="Copy this message's markdown source")


def ChatMessage(message: dict, card="", *, key=None, streaming: bool = False, indexed: IndexedPaths | None = None,
                **attrs):
    """One message: markdown rendered on the server and sanitized (`path:line` references to `indexed` files
    link to the source viewer); Copy as markdown once it is stored; an action card below it."""
    key = key if key is not None else message["id"]
    who = "You" if message["role"] == "user" else "Chip"
    note = Small(" (stopped)", cls="stopped") if message.get("status") == "stopped" else ""
    copy = CopyMarkdown(message["id"]) if message.get("id") else ""
    return Article(Header(Strong(who), note, copy),
                   Div(NotStr(render_markdown(message["content"], indexed)), id=body_id(key), cls="body"),
                   Sources(stored_sources(message)), card or StoredCard(message),
                   id=message_id(key), cls=f"message {message['role']}{' streaming' if streaming else ''}",
                   **attrs)


def Sources(sources: list[dict]):
    """The sources a reply was given, as links into the read-only source viewer (rendered by the app, not Chip)."""
    if not sources:
        return ""
    items = [Li(Small(f"action log, event #{s['event_id']}: {s.get('title', '')}")) if s.get("kind") == "event"
             else Li(A(f"{s['path']}:{s.get('line', 1)}", href=source_url(s["path"], s.get("line"), s.get("end")),
                       target="_blank", cls="source-link"), " ", Small(s.get("title", "")))
             for s in sources]
    return Div(Small("Sources"), Ul(*items), cls="sources")


def Appended(component):
    """Wrap a component so it is appended to the chat log (out-of-band)."""
    return Div(component, hx_swap_oob=f"beforeend:#{CHAT_LOG_ID}")


def StreamingBody(key: str, text: str, indexed: IndexedPaths | None = None):
    """The growing reply, rendered as markdown (and sanitized) so far."""
    return Div(NotStr(render_markdown(text, indexed)), id=body_id(key), cls="body", hx_swap_oob="true")


def ReadingBody(key: str, what: str, fraction: float):
    """The reply's place while the model reads a long prompt: what it reads, and how far it got."""
    percent = round(100 * max(0.0, min(1.0, fraction)))
    return Div(P(Small(f"{what}… {percent}%"), Progress(value=percent, max=100)), id=body_id(key),
               cls="body reading", hx_swap_oob="true")


def UndoCard(event_id: int, count: int = 1, **attrs):
    """Under a change Chip made: undo it (a plan of several changes: all of them)."""
    return Footer(Button("Undo" if count == 1 else f"Undo all {count}", hx_post=f"/chat/undo/{event_id}",
                         hx_swap="none", cls="outline secondary"),
                  id=f"undo-{event_id}", cls="action-card", **attrs)


def proposal_card_id(token: str) -> str:
    return f"proposal-{token}"


def ConfirmCard(token: str, label: str, lines: list[str] = (), remember: bool = False, **attrs):
    """Under a plan that waits for the user: nothing happens until they click (Yes, Yes and don't ask again in
    this conversation, or Cancel); a plan of several changes lists them."""
    url = f"/chat/confirm/{token}"
    return Footer(Ul(*[Li(line) for line in lines]) if lines else "",
                  Button(label[:1].upper() + label[1:], hx_post=url, hx_swap="none", cls="confirm"),
                  Button("Yes, and don't ask again here", hx_post=url, hx_vals={"remember": "1"}, hx_swap="none",
                         cls="confirm-remember outline", title="Don't ask again for these operations in this "
                         "conversation (change it in Chip's approvals)") if remember else "",
                  Button("Cancel", hx_post=f"/chat/cancel/{token}", hx_swap="none", cls="outline secondary"),
                  id=proposal_card_id(token), cls="action-card confirm-card", **attrs)


def CardResult(card_id: str, text: str, undo: int | None = None, count: int = 1):
    """What replaces a card once it was used (with an Undo button for a change just made)."""
    return Footer(Small(text), UndoCard(undo, count) if undo else "", id=card_id, cls="action-card done",
                  hx_swap_oob="true")


def StoredCard(message: dict):
    """A message's stored card, as it was last left: a plan's Undo, an open proposal, or what became of it."""
    card = json.loads(message["card"]) if message.get("card") else None
    if not card:
        return ""
    if card["kind"] == "proposal":
        return ConfirmCard(card["token"], card["label"], card.get("lines", []), card.get("remember", False))
    if card["kind"] == "code" and isinstance(card.get("change"), int):
        return LazyCodeCard(card["change"])
    changed = sum(1 for step in card.get("steps", []) if step.get("ok")) or 1
    undo = UndoCard(card["undo"], changed) if card.get("undo") and not card.get("undone") else ""
    if card.get("note"):
        return Footer(Small(card["note"]), undo, id=card.get("id"), cls="action-card done")
    return undo


def shows_text(body) -> bool:
    """Whether a rendered body shows any character (a reply starting "# " first renders an empty heading)."""
    return bool(re.sub(r"<[^>]*>", "", to_xml(body)).strip())


def Notice(text: str, kind: str = "error", **attrs):
    """A message in the chat log that is not part of the conversation (errors, status)."""
    return Div(P(text), cls=f"chat-notice {kind}", role="alert" if kind == "error" else "status", **attrs)


def ChatForm(streaming: bool = False, **attrs):
    """The message box: Send while idle; disabled with a Stop button while Chip answers."""
    return Div(Form(Textarea(name="message", placeholder="Message Chip…  (Enter sends, Shift+Enter: new line)",
                             aria_label="Message Chip", rows=2, maxlength=MESSAGE_LIMIT, disabled=streaming),
                    Input(type="hidden", name="action", value="send"),
                    Button("Send", type="submit", disabled=streaming, cls="send"),
                    ws_send=True, hx_include=f"#{LOCATION_ID}", cls="chat-send"),  # where this tab is
               Form(Input(type="hidden", name="action", value="stop"),
                    Button("Stop", type="submit", cls="secondary stop"),
                    ws_send=True, cls="chat-stop") if streaming else "",
               id=CHAT_FORM_ID, cls="chat-form", data_streaming="true" if streaming else "false", **attrs)


def ModelStatus(status, **attrs):
    """The backend's state; polls itself until the model is ready."""
    poll = {} if status.state in ("ready", "error") else {"hx_get": "/chat/status", "hx_trigger": "every 1s",
                                                           "hx_swap": "outerHTML"}
    percent = f" {status.progress:.0%}" if status.progress is not None and status.state != "ready" else ""
    label = "Chip is ready" if status.ready else f"{status.detail or status.state}{percent}"
    return Small(label, id=CHAT_STATUS_ID, cls=f"model-status {status.state}", title=status.detail,
                 **poll, **attrs)


def conversation_url(conversation_id: int) -> str:
    """The page showing one conversation full-size."""
    return f"/chat/{conversation_id}"


def ConversationItem(conversation: dict, current_id: int):
    current = conversation["id"] == current_id
    return Li(A(conversation["title"], hx_post=f"/chat/{conversation['id']}/switch", hx_swap="none",
                aria_current="true" if current else None, href=conversation_url(conversation["id"])),
              Small(conversation["updated"][:16].replace("T", " ")),
              id=f"conversation-{conversation['id']}", cls="current" if current else "")


def ConversationList(conversations: list[dict], current_id: int, query: str = "", **attrs):
    return Div(Input(type="search", name="q", value=query, placeholder="Search conversations…",
                     aria_label="Search conversations", hx_get="/chat/list", hx_target=f"#{CONVERSATIONS_ID}",
                     hx_trigger="input changed delay:200ms, search", hx_swap="outerHTML"),
               Ul(*[ConversationItem(c, current_id) for c in conversations]) if conversations
               else P("No conversation matches.", cls="muted"),
               id=CONVERSATIONS_ID, cls="conversation-list", **attrs)


def ConversationBar(conversation: dict, *, preview: bool = False, **attrs):
    """The conversation's title and its actions (`preview`: it is shown, but Chip talks in another one)."""
    cid = conversation["id"]
    return Div(Span(conversation["title"], cls="title", title=conversation["title"]),
               Button("Continue this conversation", hx_post=f"/chat/{cid}/switch", hx_swap="none",
                      cls="continue") if preview else "",
               Button("New", hx_post="/chat/new", hx_swap="none", cls="outline"),
               "" if preview else Button("Rename", hx_post=f"/chat/{cid}/rename", hx_prompt="New title",
                                         hx_swap="none", cls="outline"),
               A("⇩ md", href=f"/chat/{cid}/export.md", download=True, title="Export as markdown"),
               A("⇩ json", href=f"/chat/{cid}/export.json", download=True, title="Export as JSON"),
               Button("Delete", hx_post=f"/chat/{cid}/delete", hx_swap="none", cls="outline secondary",
                      hx_confirm=f"Delete the conversation “{conversation['title']}”?"),
               id="conversation-bar", cls="conversation-bar", data_conversation=cid, **attrs)


def ChatLog(messages: list[dict], *, indexed: IndexedPaths | None = None, preview: int | None = None, **attrs):
    """The messages; a `preview` (the id of a conversation shown, not the current one) takes no live messages
    and keeps its conversation's bar (theseus.js), until a whole log replaces it."""
    return Div(*[ChatMessage(m, indexed=indexed) for m in messages]
               or [P("Say hello to Chip.", cls="chat-placeholder")],
               id=CHAT_LOG_ID, cls="chat-log", aria_live="polite", data_preview="true" if preview else None,
               data_conversation=preview, **attrs)


def context_url(location: Location) -> str:
    """The page showing what Chip would see for a message from a tab at `location`."""
    query = {"app": location.app} | ({"run": location.run} if location.run else {})
    return CONTEXT_URL + (f"?{urlencode(query)}" if location.app else "")


def FullSizeToggle():
    """Widens the chat to take the main area, and back (theseus.js; remembered per tab)."""
    return Button("⤢ Full size", type="button", cls="chat-toggle outline secondary", aria_pressed="false",
                  title=f"Full-size chat ({FULL_SIZE_KEYS})", aria_keyshortcuts=FULL_SIZE_KEYS)


def ChatPane(conversation: dict, messages: list[dict], conversations: list[dict], status, *, tab: str,
             streaming: bool = False, location: Location = NOWHERE, indexed: IndexedPaths | None = None,
             preview: bool = False):
    """The whole chat pane; its WebSocket carries messages up and streamed replies down. `preview`: the
    conversation shown is not the one Chip talks in (until "Continue this conversation")."""
    return Aside(Div(Div(ModelStatus(status), FullSizeToggle(), cls="chat-tools"),
                     A("What Chip sees", href=context_url(location), target="_blank",
                       cls="chip-context-link", title="Chip's context for the next message"),
                     A("Approvals", href=APPROVALS_URL, target="_blank", cls="chip-approvals-link",
                       title="What Chip asks you before doing (change it per operation)"),
                     ConversationBar(conversation, preview=preview), cls="chat-head"),
                 Details(Summary("Conversations"), ConversationList(conversations, conversation["id"]),
                         cls="chat-history"),
                 ChatLog(messages, indexed=indexed, preview=conversation["id"] if preview else None),
                 ChatForm(streaming),
                 id="chat", cls="chat-pane", hx_ext="ws", ws_connect=f"/chat/ws?tab={tab}")
