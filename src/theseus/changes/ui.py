"""The components of code changes: a diff, a change in the list, the list, a preview, and the card under Chip's
proposal in the chat."""

from __future__ import annotations

from fasthtml.common import H3, A, Button, Details, Div, Footer, Form, Input, Li, NotStr, P, Small, Strong, Summary, Ul

from ..highlight import code_block_html
from .diffs import Edit
from .service import Change

CHANGES_URL = "/changes"
LIST_ID = "changes-list"
PREVIEW_ID = "change-preview"


def change_id(number: int) -> str:
    return f"change-{number}"


def DiffView(edit: Edit):
    """One file of a change: its name, lines added and removed, and the diff (highlighted, escaped)."""
    added, removed = edit.counts()
    return Div(H3(edit.name, " ", Small(f"+{added} −{removed}" + (" (new file)" if edit.before is None else ""))),
               NotStr(code_block_html(edit.diff, "diff")), cls="change-file")


def Preview(edits: list[Edit], text: str, path: str):
    """What the change would do, and Apply (which sends the same text again: it is read anew then)."""
    return Div(*[DiffView(e) for e in edits],
               Form(Input(type="hidden", name="text", value=text), Input(type="hidden", name="path", value=path),
                    Button("Apply: check, restart, verify", cls="apply-change"), hx_post=f"{CHANGES_URL}/apply",
                    hx_target=f"#{PREVIEW_ID}"),
               id=PREVIEW_ID)


STATUS_WORDS = {"proposed": "proposed, not applied yet", "restarting": "restarting to verify…",
                "applied": "applied", "failed": "failed: the old code runs", "reverted": "reverted"}


def ChangeItem(change: Change):
    """One change in the list: what, who, its fate (the error of a failed one), and Revert for an applied one."""
    who = {"llm": "Chip", "user": "you", "agent": "an agent"}.get(change.actor, change.actor)
    revert = Button("Revert", hx_post=f"{CHANGES_URL}/{change.id}/revert", hx_target=f"#{PREVIEW_ID}",
                    cls="outline secondary") if change.status == "applied" else \
        ApplyButton(change.id, f"#{PREVIEW_ID}") if change.status == "proposed" else ""
    error = P(Small(change.error), cls="change-error") if change.error else ""
    files = Details(Summary(change.summary()), Div(cls="change-diff"), hx_get=f"{CHANGES_URL}/{change.id}/diff",
                    hx_trigger="toggle once", hx_target="find .change-diff")  # the diff is made when opened
    return Li(Strong(f"#{change.id} {change.title}"), " ", Small(f"{change.time[:16].replace('T', ' ')} · by {who}"),
              " ", Small(STATUS_WORDS.get(change.status, change.status), cls=f"change-status {change.status}"),
              error, files, revert, id=change_id(change.id), data_status=change.status)


def ApplyButton(number: int, into: str):
    """Apply a proposed change (Chip's): it goes through the same check, restart and verify."""
    return Button("Apply: check, restart, verify", hx_post=f"{CHANGES_URL}/{number}/apply", hx_target=into,
                  cls="apply-change")


def ChangeList(changes: list[Change], **attrs):
    """The recent changes, newest first; while one restarts, the list looks again every second."""
    waiting = any(c.status == "restarting" for c in changes)
    poll = {"hx_get": f"{CHANGES_URL}/list", "hx_trigger": "every 1s", "hx_swap": "outerHTML"} if waiting else {}
    body = Ul(*[ChangeItem(c) for c in changes]) if changes else P("No code change yet.", cls="muted")
    return Div(body, id=LIST_ID, **poll, **attrs)




def ChangeDiff(change: Change):
    return Div(*[DiffView(e) for e in change.edits])


def code_card_id(number: int) -> str:
    return f"code-card-{number}"


def CodeCard(change: Change):
    """Under Chip's proposal: Apply while it is proposed, else what became of it."""
    if change.status == "proposed":
        action = Button("Apply: check, restart, verify", hx_post=f"{CHANGES_URL}/{change.id}/apply",
                        hx_target=f"#{code_card_id(change.id)}", hx_swap="innerHTML", cls="confirm")
    else:
        action = Small(f"Change #{change.id}: {STATUS_WORDS.get(change.status, change.status)}"
                       + (f" ({change.error})" if change.error else ""))
    return Footer(action, " ", A("Changes", href="/apps/changes"), id=code_card_id(change.id),
                  cls="action-card code-card")


def LazyCodeCard(number: int):
    """The card as stored with a message: it asks for the change's state when shown."""
    return Footer(hx_get=f"{CHANGES_URL}/{number}/card", hx_trigger="load", hx_swap="outerHTML",
                  id=code_card_id(number), cls="action-card code-card")
