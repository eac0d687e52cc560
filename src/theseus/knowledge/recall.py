"""When Chip looks something up for a message, what it searches, and how the finds read in its context.

A cheap, visible rule decides, not a model call: a how-to, where or why
question, a request to explain, or a word about code or docs searches the
docs and the source (a bare "?" does not: "what can you do?" is answered from
the crash course Chip always has, and each looked-up token costs the turn
~12 ms to read); a question about past activity ("what did
I do on Monday?") searches the action log, limited to the day or week it
names. Small talk ("thanks!", "add milk") searches nothing, so it costs no
tokens and cannot distract a small model. The rule is shown on Chip's context
page, so a user can see why something was or was not looked up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from loguru import logger

from .search import Hit

CHUNK_CHARS = 600  # at most this much of one chunk enters the context: each token costs the turn ~12 ms to read
MODE_WORD = re.compile(r"^/(chat|auto|command)\b\s*", re.IGNORECASE)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ACTIVITY = re.compile(r"\b(did i|have i|i did|i've done|was i|yesterday|today|this morning|last (week|night|time)"
                      r"|this week|recently|earlier|history|activity|happened|my (actions|changes)|"
                      + "|".join(DAYS) + r")\b")
QUESTION = re.compile(r"^\s*(how|where|why|explain|describe|list the (docs|operations))\b|\b(how (do|can|to|does|is)|"
                      r"what does|where (is|are|do)|explain|source|code|function|class|module|file|docs?|"
                      r"documentation|workflows?|steps?|operations?|plugins?|routes?|implemented|defined)\b")


@dataclass
class Lookup:
    """What a message asks to look up: the words, the kinds of source, a time range, and why."""

    query: str
    kinds: tuple[str, ...]
    reason: str
    since: str | None = None
    until: str | None = None
    limit: int = 4


@dataclass
class Recall:
    """The outcome for one message: the lookup (or why none), its hits and notes."""

    lookup: Lookup | None
    reason: str
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def day_range(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    """The local-time range a message names (today, yesterday, a weekday, this or last week), if any."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if "yesterday" in text:
        return midnight - timedelta(days=1), midnight
    if "today" in text or "this morning" in text:
        return midnight, midnight + timedelta(days=1)
    if "last week" in text:
        return midnight - timedelta(days=7 + midnight.weekday()), midnight - timedelta(days=midnight.weekday())
    if "this week" in text:
        return midnight - timedelta(days=midnight.weekday()), midnight + timedelta(days=1)
    for number, day in enumerate(DAYS):
        if re.search(rf"\b{day}\b", text):
            start = midnight - timedelta(days=(midnight.weekday() - number) % 7)
            return start, start + timedelta(days=1)
    return None


def plan(message: str, now: datetime | None = None) -> tuple[Lookup | None, str]:
    """The lookup a message calls for, or None, with the reason either way."""
    message = MODE_WORD.sub("", " ".join((message or "").split()))  # "/chat how do I ..." asks "how do I ..."
    text = message.lower()
    if not text or text.startswith("/"):
        return None, "a slash command or no message: nothing to look up"
    if ACTIVITY.search(text):
        lookup = Lookup(message, ("event",), f"it asks about past activity ({ACTIVITY.search(text).group(0)!r})",
                        limit=8)
        now = now or datetime.now().astimezone()
        found = day_range(text, now)
        if found:
            lookup.since, lookup.until = (t.astimezone(timezone.utc).isoformat(timespec="milliseconds") for t in found)
        return lookup, lookup.reason
    match = QUESTION.search(text)
    if match:
        lookup = Lookup(message, ("doc", "code"), f"it asks a question or about the app ({match.group(0).strip()!r})")
        return lookup, lookup.reason
    return None, "it reads as small talk or a command, not a question"


def recall(knowledge, message: str) -> Recall:
    """Search what the message calls for; a failing search is logged and costs Chip nothing."""
    lookup, reason = plan(message)
    if lookup is None:
        return Recall(None, reason)
    try:
        results = knowledge.search(lookup.query, kinds=lookup.kinds, since=lookup.since, until=lookup.until,
                                   limit=lookup.limit)
    except Exception as error:
        logger.exception("knowledge: the search for Chip's context failed")
        return Recall(lookup, lookup.reason, notes=[f"the search failed: {error}"])
    return Recall(lookup, lookup.reason, results.hits, results.notes)


def excerpt(hit: Hit) -> str:
    """One chunk as Chip reads it: its label, title, and (the start of) its text."""
    text = hit.text if len(hit.text) <= CHUNK_CHARS else hit.text[:CHUNK_CHARS] + "\n[…]"
    return f"[{hit.cite}] {hit.title}\n{text}"


def knowledge_note(excerpts: list[str]) -> dict:
    """The system message that carries the excerpts into the context."""
    return {"role": "system", "content": (
        "Excerpts for this question (docs, code or the action log; best first). Answer from them and name the "
        "[label] you used; if they do not answer it, say so rather than guess.\n\n" + "\n\n".join(excerpts))}


def source_of(hit: Hit) -> dict:
    """What a reply stores about a source it was given: enough to link it."""
    return {"path": hit.path, "line": hit.line_start, "end": hit.line_end, "title": hit.title,
            "kind": hit.kind, "event_id": hit.event_id}


def store_sources(db, message: dict, sources: list[dict]) -> dict:
    """Keep the sources a reply was given with the stored message (they show under it after a reload)."""
    text = json.dumps(sources, ensure_ascii=False)
    with db.transaction():
        db.conn.execute("UPDATE messages SET sources = ? WHERE id = ?", (text, message["id"]))
    return message | {"sources": text}


def stored_sources(message: dict) -> list[dict]:
    """The sources stored with a message ([] for none, or for anything unreadable)."""
    try:
        sources = json.loads(message.get("sources") or "[]")
    except (TypeError, ValueError):
        return []
    return [s for s in sources if isinstance(s, dict) and isinstance(s.get("path"), str)] if isinstance(sources, list) else []
