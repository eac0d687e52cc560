"""What Chip sees: a stable prefix, then the conversation's transcript, append-only, so the model's cache holds.

On a laptop CPU reading the prompt is what a turn costs (~12 ms a token
here), and a model only skips what starts exactly as its last prompt did. So:

- the **prefix** (persona, crash course, the operations of every app) depends
  only on the code, never on the state, and comes first;
- everything else is the conversation's **transcript** (conversations.py), in
  the order it happened, never rewritten: before each turn, the app events
  since Chip last looked and, when the profile, the open app or its run
  changed, a state note (with the open app's rows) are appended
  (`catch_up`); then the user's message; then, if it asks something, the
  excerpts looked up for it; then Chip's reply;
- when the transcript fills `FULL` of the window, its oldest part is set aside
  at once, down to `KEEP` (one full re-read, announced), never a little every
  turn. Between two such drops, turn N's messages are a prefix of turn N+1's.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

from loguru import logger

from ..events import ACTOR_NAMES
from ..knowledge.recall import Recall, excerpt, knowledge_note, recall, source_of
from ..location import NOWHERE, Location
from ..package_docs import doc_text
from .conversations import Conversations

PERSONA = ("You are Chip, the assistant that lives inside Theseus, a local-first app. "
           "You see what the user does in the app and help them with it.")
EVENT_LINES = 40  # at most this many actions in one note (the newest)
FIRST_EVENTS = 8  # a conversation's first note: the latest actions before it began, for a start
REPLY_TOKENS = 512
KNOWLEDGE_TOKENS = 260  # the excerpts for one message: each token costs the turn ~10 ms to read
FULL, KEEP = 0.9, 0.3  # past FULL of the room before a turn, the oldest entries go, down to KEEP: one re-read of
                       # KEEP buys (FULL - KEEP) of the room for the turns that follow


class ContextTooLarge(Exception):
    """The newest message alone does not fit the model's context."""


@dataclass
class Context:
    """The messages for the model, and an account of how they were fitted."""

    messages: list[dict]
    budget: int
    tokens: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    recall: Recall | None = None  # what was looked up for the newest message, and why (or why not)
    knowledge: list = field(default_factory=list)  # the hits whose excerpts entered the context
    sources: list[dict] = field(default_factory=list)  # the same, as the reply stores them
    entries: list[dict] = field(default_factory=list)  # the messages after the prefix, as transcript entries
    unstored: list[dict] = field(default_factory=list)  # those of them not in the transcript yet
    start: int | None = None  # the first transcript entry kept, when the window forced more out

    @property
    def total(self) -> int:
        return sum(self.tokens.values())


def crash_course() -> str:
    """Chip's crash course (the package's docs/crash-course.md)."""
    return doc_text("crash-course.md")


def operation_list(runtime) -> str:
    """What Chip can do in each app: the operations offered to it, by app (from the code only)."""
    verbs: dict[str, list[str]] = {}
    for op in runtime.registry.operations.values():
        if not op.internal:
            verbs.setdefault(op.plugin.display_name, []).append(op.verb)
    lines = [f"- {app}: {', '.join(names)}" for app, names in verbs.items()]
    return "## What you can do in each app (the user asks; the app runs it)\n" + "\n".join(lines)


def prefix(runtime) -> dict:
    """The first message: it depends on the code only, so the model's cache of it lasts."""
    parts = [PERSONA, crash_course(), operation_list(runtime),
             "Notes on what happens in the app (actions, the state, excerpts) arrive as system messages "
             "in the conversation, in the order they happen; the latest one is the current truth."]
    return {"role": "system", "content": "\n\n".join(p.strip() for p in parts if p.strip())}


def state_heading(runtime, location: Location = NOWHERE) -> str:
    """Where the user is: profile, open app, and that app's own notes (a workflow's run and step)."""
    profile = runtime.db.value("SELECT name FROM profiles WHERE id = ?", (runtime.profile_id,))
    app = runtime.plugins.get(location.app)
    lines = [f"Current profile: {profile!r} (id {runtime.profile_id}). "
             f"Open app: {app.display_name if app else 'none'}."]
    notes = app.prompt_notes(location) if app else ""
    return "\n".join(lines + ([notes.strip()] if notes.strip() else []))


def state_note(runtime, location: Location = NOWHERE) -> str:
    """The heading, each app's one-line summary, and the open app's data (quoted as data)."""
    lines = ["The state now:", state_heading(runtime, location)]
    lines += [f"{p.display_name}: {p.summary()}." for p in runtime.plugins.values() if p.summary()]
    app = runtime.plugins.get(location.app)
    data = app.data_note(location) if app else ""
    return "\n".join(lines + ([data] if data else []))


def event_note(events: list[dict], more: int = 0) -> str:
    lines = [f"- {e['time'][11:16]} {ACTOR_NAMES.get(e['actor'], e['actor'])}: {e['summary'] or e['operation']}"
             for e in events]
    earlier = f"({more} earlier actions not shown)\n" if more else ""
    return "Actions in the app since the last message (oldest first):\n" + earlier + "\n".join(lines)


def heading_mark(heading: str) -> str:
    return hashlib.sha256(heading.encode()).hexdigest()[:16]


def news(runtime, conversation_id: int, location: Location, entries: list[dict]) -> list[dict]:
    """What Chip has not read yet (not stored): the events since the last note, and the state if it moved."""
    found = []
    seen = runtime.db.value("SELECT MAX(CAST(mark AS INTEGER)) FROM transcript WHERE conversation_id = ? "
                            "AND kind = 'events'", (conversation_id,))
    newest = runtime.db.value("SELECT COALESCE(MAX(id), 0) FROM events")
    lines = EVENT_LINES if seen is not None else FIRST_EVENTS
    events = runtime.db.query("SELECT * FROM events WHERE id > ? AND actor != 'system' ORDER BY id DESC LIMIT ?",
                              (seen or 0, lines))[::-1]
    if events:
        more = runtime.db.value("SELECT COUNT(*) FROM events WHERE id > ? AND actor != 'system'", (seen or 0,))
        found.append({"kind": "events", "role": "system", "mark": str(newest),
                      "content": event_note(events, max(0, more - lines) if seen is not None else 0)})
    mark = heading_mark(state_heading(runtime, location))
    last = next((e for e in reversed(entries) if e["kind"] == "state"), None)
    if last is None or last["mark"] != mark:
        found.append({"kind": "state", "role": "system", "mark": mark, "content": state_note(runtime, location)})
    return found


def set_aside(entries: list[dict], count, room: int, full: float = FULL, keep: float = KEEP) -> int | None:
    """The id of the first entry to keep, if the entries pass `full` of `room`; None while they fit."""
    costs = [count(e["content"]) + 4 for e in entries]  # + role markers
    if sum(costs) <= full * room:
        return None
    kept = 0
    for i in range(len(entries) - 1, -1, -1):
        if kept + costs[i] > keep * room:
            return entries[min(i + 1, len(entries) - 1)]["id"]  # the newest entry stays, whatever its size
        kept += costs[i]
    return None


def catch_up(runtime, backend, conversation_id: int, location: Location = NOWHERE,
             window: int | None = None) -> int:
    """Before a turn: set the oldest part aside if the transcript is full, then append the news.
    Returns how many entries were set aside (0: the model's cache of the conversation stays valid)."""
    conversations = Conversations(runtime.db)
    entries = conversations.transcript(conversation_id)
    budget = (window or getattr(backend, "n_ctx", None) or 4096) - REPLY_TOKENS
    room = budget - backend.count_tokens(prefix(runtime)["content"])
    start = set_aside(entries, backend.count_tokens, room)
    left = 0
    if start is not None:
        conversations.set_context_start(conversation_id, start)
        left = sum(1 for e in entries if e["id"] < start)
        logger.info(f"context: the transcript filled {FULL:.0%} of the window; set aside its oldest {left} entries")
        entries = conversations.transcript(conversation_id)
    for entry in news(runtime, conversation_id, location, entries):
        conversations.note(conversation_id, entry["kind"], entry["content"], mark=entry["mark"])
    return left


def knowledge_entry(context: Context, count, room: int) -> dict | None:
    """The note of the best excerpts that fit `room` tokens; the rest are listed as dropped."""
    excerpts = []
    for hit in context.recall.hits if context.recall else []:
        if count(knowledge_note(excerpts + [excerpt(hit)])["content"]) > room:
            context.dropped.append(f"knowledge: {hit.cite} (no room)")
            continue
        excerpts.append(excerpt(hit))
        context.knowledge.append(hit)
    context.sources = [source_of(hit) for hit in context.knowledge]
    if not excerpts:
        return None
    return {"kind": "knowledge", "role": "system", "mark": None, "content": knowledge_note(excerpts)["content"]}


QUESTION = re.compile(r"\?|^\s*(what|who|whom|whose|when|where|which|how|is|are|do|does|did|has|have|can)\b",
                      re.IGNORECASE)


def data_entry(runtime, location: Location, request: str, entries: list[dict]) -> dict | None:
    """For a question, the open app's data it is about, as it is now, unless Chip has just read exactly that."""
    app = runtime.plugins.get(location.app)
    note = app.data_note(location, request) if app and QUESTION.search(request) else ""
    latest = [e["content"] for e in entries if e["kind"] in ("state", "data")][-1:]
    if not note or any(note in content for content in latest):
        return None
    return {"kind": "data", "role": "system", "mark": None, "content": note}


def build_context(runtime, backend, conversation_id: int, *, instruction: str = "",
                  window: int | None = None, reply_tokens: int = REPLY_TOKENS, pending: str = "",
                  location: Location = NOWHERE, look_up: bool = True) -> Context:
    """The prefix and the transcript, plus what this turn adds and the transcript does not hold yet: the
    excerpts looked up for the newest user message and the `instruction` (a Poke).

    `pending` is a message not sent yet (Chip's context page previews the next turn with it, and the news
    it would bring); `location` is where the tab the message comes from is (its app and run); `look_up`
    False leaves the knowledge index alone (reading ahead).
    """
    window = window or getattr(backend, "n_ctx", None) or 4096
    count = functools.lru_cache(maxsize=None)(backend.count_tokens)  # each entry is counted several times below
    system = prefix(runtime)
    context = Context([], window - reply_tokens, {"system": count(system["content"])})
    entries = Conversations(runtime.db).transcript(conversation_id)
    entries += news(runtime, conversation_id, location, entries)  # none in a turn: catch_up stored them
    if pending:
        entries.append({"kind": "message", "role": "user", "content": pending, "mark": None})
    newest = entries[-1] if entries else None
    asks = look_up and newest is not None and newest["role"] == "user" and newest["kind"] == "message" \
        and not instruction
    context.recall = recall(runtime.knowledge, newest["content"]) if asks else None
    used = context.tokens["system"] + sum(count(e["content"]) + 4 for e in entries)
    room = min(KNOWLEDGE_TOKENS, context.budget - used - count(instruction))
    added = [data_entry(runtime, location, newest["content"], entries)] if asks else []
    added += [knowledge_entry(context, count, room - sum(count(e["content"]) for e in added if e))] if asks else []
    added += [{"kind": "poke", "role": "user", "content": instruction, "mark": None}] if instruction else []
    added = [e for e in added if e]
    context.unstored = [e for e in entries if "id" not in e] + added
    entries = fit(context, entries, count, context.budget - sum(count(e["content"]) + 4 for e in added))
    context.entries = entries + added
    context.messages = [system] + [{"role": e["role"], "content": e["content"]} for e in context.entries]
    for kind, label in (("message", "conversation"), ("events", "events"), ("state", "state"), ("data", "data"),
                        ("knowledge", "knowledge"), ("poke", "instruction")):
        tokens = sum(count(e["content"]) for e in entries + added if e["kind"] == kind)
        if tokens:
            context.tokens[label] = tokens
    logger.info(f"context: {context.total}/{context.budget} tokens {context.tokens}"
                + (f"; left out {len(context.dropped)} item(s)" if context.dropped else ""))
    return context


def fit(context: Context, entries: list[dict], count, room: int) -> list[dict]:
    """The newest entries that fit `room` with the prefix (whole entries; the newest message must fit)."""
    used, kept = context.tokens["system"], []
    newest_message = max((i for i, e in enumerate(entries) if e["kind"] == "message" and e["role"] == "user"),
                         default=-1)
    for position in range(len(entries) - 1, -1, -1):
        cost = count(entries[position]["content"]) + 4
        if used + cost > room:
            if position >= newest_message >= 0:
                raise ContextTooLarge("That message is too long for the model's context; please shorten it.")
            context.dropped += [f"{e['role']}: {e['content'][:40]!r}" for e in entries[:position + 1]]
            context.start = next((e["id"] for e in entries[position + 1:] if "id" in e), None)
            break
        kept.insert(0, entries[position])
        used += cost
    return kept
