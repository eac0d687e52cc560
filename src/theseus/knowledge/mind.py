"""A window into Chip's mind: exactly what Chip would see for the next message, part by part.

The page (/chip/context) and `theseus context` both build the real context
(the same `build_context` a chat turn uses) for the current conversation plus
an optional message that is not sent, and show: the token count of each part
against the budget, what was looked up and why, the retrieved excerpts with
their scores (and which did not fit), the prefix, the transcript (messages,
action and state notes, excerpts; what the next turn adds is marked new), and
what was dropped.
"""

from __future__ import annotations

from fasthtml.common import (A, H1, H2, Body, Button, Details, Form, Head, Html, Li, Main, P, Pre, Small,
                             Summary, Table, Tbody, Td, Textarea, Th, Thead, Title, Tr, Ul)

from ..chat.context import Context, ContextTooLarge, build_context
from ..chat.ui import CONTEXT_URL, MESSAGE_LIMIT
from ..location import NOWHERE, Location, LocationFields
from ..ui import Headers
from .viewer import source_url


def next_context(runtime, message: str = "", location: Location = NOWHERE) -> Context:
    """The context Chip would get if `message` were sent now, from a tab at `location`, in the current
    conversation."""
    conversation = runtime.chat.conversations.current()
    return build_context(runtime, runtime.backend, conversation["id"], pending=message[:MESSAGE_LIMIT].strip(),
                         location=location)


def hit_rows(context: Context) -> list[tuple]:
    """(hit, whether it entered) for every hit of the lookup, best first."""
    entered = {hit.id for hit in context.knowledge}
    return [(hit, hit.id in entered) for hit in (context.recall.hits if context.recall else [])]


def lookup_line(context: Context) -> str:
    recall = context.recall
    if recall is None:
        return "Nothing was looked up: there is no new message to answer."
    if recall.lookup is None:
        return f"Nothing was looked up: {recall.reason}."
    where = ", ".join(recall.lookup.kinds) + (f", from {recall.lookup.since[:16]} to {recall.lookup.until[:16]} UTC"
                                              if recall.lookup.since else "")
    notes = f" ({'; '.join(recall.notes)})" if recall.notes else ""
    return f"Looked up ({where}) because {recall.reason}: {len(recall.hits)} found{notes}."


def TokenTable(context: Context):
    rows = [Tr(Td(part), Td(f"{tokens:,}")) for part, tokens in context.tokens.items()]
    return Table(Thead(Tr(Th("part"), Th("tokens"))),
                 Tbody(*rows, Tr(Td("total"), Td(f"{context.total:,} of {context.budget:,}"), cls="total")),
                 id="context-tokens")


def HitTable(context: Context):
    rows = [Tr(Td(A(hit.cite, href=source_url(hit.path, hit.line_start, hit.line_end), target="_blank")
                  if hit.kind != "event" else hit.cite),
               Td(hit.title), Td(f"{hit.score:.4f}"), Td(hit.fts_rank or "–"), Td(hit.vec_rank or "–"),
               Td(f"{hit.distance:.3f}" if hit.distance is not None else "–"),
               Td("in the context" if entered else "dropped: no room"), cls="hit" if entered else "hit dropped")
            for hit, entered in hit_rows(context)]
    head = Thead(Tr(*[Th(h) for h in ("source", "title", "score", "text rank", "vector rank", "distance", "")]))
    return Table(head, Tbody(*rows), id="context-hits") if rows else P("No excerpts.", id="context-hits")


def MessageList(context: Context):
    """Every message after the prefix, in order, each with its kind, role and size; what this turn adds last."""
    return Ul(*[Li(Details(Summary(f"{e['kind']} · {e['role']} · {len(e['content']):,} characters"
                                   + ("" if "id" in e else " · new")), Pre(e["content"])))
                for e in context.entries], id="context-messages")


def ContextPage(context: Context | None, message: str = "", error: str = "", location: Location = NOWHERE):
    """The page: a message box (previewed from the tab's `location`), then every part of the context."""
    form = Form(Textarea(message, name="message", rows=2, maxlength=MESSAGE_LIMIT, aria_label="Next message",
                         placeholder="A message to preview (it is not sent)"),
                LocationFields(location), Button("Show what Chip would see", type="submit"),
                method="get", action=CONTEXT_URL)
    parts = [P(error, cls="error", role="alert")] if error else [
        H2("Token budget"), TokenTable(context),
        H2("Looked up"), P(lookup_line(context), id="context-lookup"), HitTable(context),
        H2("Prefix (the same every turn, so the model keeps it read)"),
        Pre(context.messages[0]["content"], id="context-system"),
        H2("Transcript: messages, actions, state and excerpts, in the order Chip read them"), MessageList(context),
        H2("Dropped"), Ul(*[Li(d) for d in context.dropped], id="context-dropped") if context.dropped
        else P("Nothing was dropped.", id="context-dropped")]
    return Html(Head(Title("Chip's context · Theseus"), *Headers()),
                Body(Main(H1("What Chip will see"), P(Small("For the next message in the current conversation. ",
                                                            A("Back to Theseus", href="/"))),
                          form, *parts, cls="container chip-context")))


def context_page(runtime, message: str = "", location: Location = NOWHERE):
    """The page for a (preview) message from a tab at `location`; a message too long for the model is said so,
    not a 500."""
    try:
        return ContextPage(next_context(runtime, message, location), message, location=location)
    except ContextTooLarge as error:
        return ContextPage(None, message, str(error), location)


def context_text(context: Context) -> str:
    """The same account as plain text, for `theseus context`."""
    out = ["== tokens"] + [f"  {part:13} {tokens:>7,}" for part, tokens in context.tokens.items()]
    out += [f"  {'total':13} {context.total:>7,} of {context.budget:,}", "", "== looked up", "  " + lookup_line(context)]
    out += [f"  {'in ' if entered else 'out'} {hit.score:.4f}  text {hit.fts_rank or '-':>3} vec {hit.vec_rank or '-':>3}"
            f"  {hit.cite}  {hit.title}" for hit, entered in hit_rows(context)]
    for message in context.messages:
        out += ["", f"== {message['role']} ({len(message['content']):,} characters)", message["content"]]
    out += ["", "== dropped"] + ([f"  {d}" for d in context.dropped] or ["  nothing"])
    return "\n".join(out)

