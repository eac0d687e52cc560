"""Changes: the inbox for code changes. Paste a diff (or a whole file and its path), preview it, apply it; see each
change's fate (applied, failed and why, reverted) and revert one.

The work is done by `theseus.changes` (check, write, restart, verify, roll back); this app is its page and routes,
which the `theseus change` command also talks to.
"""

from __future__ import annotations

import json

from fasthtml.common import (H2, H3, Button, Details, Div, Form, Input, Label, Li, NotStr, P, Small, Strong, Summary,
                             Textarea, Ul, to_xml)
from starlette.responses import HTMLResponse, JSONResponse

from ..actions import OperationError, parse_int
from ..changes.diffs import Edit
from ..changes.files import ChangeError, roots
from ..changes.service import Change, prepare
from ..highlight import code_block_html
from ..plugins import Plugin
from ..ui import Toast

CHANGES_URL = "/changes"
LIST_ID = "changes-list"
PREVIEW_ID = "change-preview"
TEXT_LIMIT = 2_000_000  # characters of a pasted change


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


STATUS_WORDS = {"restarting": "restarting to verify…", "applied": "applied", "failed": "failed, rolled back",
                "reverted": "reverted"}


def ChangeItem(change: Change):
    """One change in the list: what, who, its fate (the error of a failed one), and Revert for an applied one."""
    who = {"llm": "Chip", "user": "you", "agent": "an agent"}.get(change.actor, change.actor)
    revert = Button("Revert", hx_post=f"{CHANGES_URL}/{change.id}/revert", hx_target=f"#{PREVIEW_ID}",
                    cls="outline secondary") if change.status == "applied" else ""
    error = P(Small(change.error), cls="change-error") if change.error else ""
    files = Details(Summary(change.summary()), *[DiffView(e) for e in change.edits])
    return Li(Strong(f"#{change.id} {change.title}"), " ", Small(f"{change.time[:16].replace('T', ' ')} · by {who}"),
              " ", Small(STATUS_WORDS.get(change.status, change.status), cls=f"change-status {change.status}"),
              error, files, revert, id=change_id(change.id), data_status=change.status)


def ChangeList(changes: list[Change], **attrs):
    """The recent changes, newest first; while one restarts, the list looks again every second."""
    waiting = any(c.status == "restarting" for c in changes)
    poll = {"hx_get": f"{CHANGES_URL}/list", "hx_trigger": "every 1s", "hx_swap": "outerHTML"} if waiting else {}
    body = Ul(*[ChangeItem(c) for c in changes]) if changes else P("No code change yet.", cls="muted")
    return Div(body, id=LIST_ID, **poll, **attrs)


class Changes(Plugin):
    name = "changes"
    display_name = "Changes"
    description = "Change Theseus's code or your plugins: preview, apply with automatic rollback, revert."
    order = 95

    def render(self, request):
        where = ", ".join(f"{name}/" for name in roots(self.runtime.config))
        form = Form(Label("A unified diff, or a whole file", Textarea(name="text", rows=12, required=True,
                                                                       placeholder="--- a/apps/notes.py\n+++ b/..."
                                                                                   "\n@@ ... @@")),
                    Label("Its path (only for a whole file)", Input(name="path", placeholder="workflows/hello.py")),
                    Button("Preview"), hx_post=f"{CHANGES_URL}/preview", hx_target=f"#{PREVIEW_ID}")
        return Div(H2("Changes"), P(Small(f"A change may write files under {where}. Applying checks that the code "
                                          "parses and imports, restarts Theseus on it and checks that every app "
                                          "still loads and renders; if not, the old files come back.")),
                   form, Div(id=PREVIEW_ID), H2("Recent changes"), ChangeList(self.runtime.changes.recent()),
                   cls="changes-app")

    def routes(self, app) -> None:
        changes = self.runtime.changes

        @app.post(f"{CHANGES_URL}/preview")
        async def preview(request):
            text, path = await change_input(request)
            return Preview(prepared(self.runtime.config, text, path), text, path)

        @app.post(f"{CHANGES_URL}/apply")
        async def apply_change(request):
            async def work():
                text, path = await change_input(request)
                return await changes.apply(prepared(self.runtime.config, text, path), actor="user")
            return await answer(request, work())

        @app.post(CHANGES_URL + "/{number}/revert")
        async def revert(request, number: str):
            return await answer(request, changes.revert(parse_int(number, name="change", lo=1)))

        @app.get(f"{CHANGES_URL}/list")
        def change_list():
            return ChangeList(changes.recent())

        @app.get(CHANGES_URL + "/{number}.json")
        def change_json(number: str):
            return JSONResponse(changes.get(parse_int(number, name="change", lo=1)).to_json())


async def change_input(request) -> tuple[str, str]:
    """(text, path) from a form or JSON body; OperationError (400) for anything else."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(await request.body() or b"{}")
        else:
            data = dict(await request.form())
    except Exception as error:
        raise OperationError(f"Could not read the request body ({type(error).__name__}).") from None
    text, path = (data.get("text", ""), data.get("path", "")) if isinstance(data, dict) else ("", "")
    if not isinstance(text, str) or not isinstance(path, str) or not text.strip():
        raise OperationError("Paste a change first: a unified diff, or a whole file and its path.")
    if len(text) > TEXT_LIMIT:
        raise OperationError(f"That change is {len(text):,} characters; the limit is {TEXT_LIMIT:,}.")
    return text, path.strip()


def prepared(config, text: str, path: str) -> list[Edit]:
    """The change's edits; OperationError (400) saying why there are none."""
    try:
        return prepare(config, text, path)
    except ChangeError as error:
        raise OperationError(str(error)) from None


async def answer(request, work):
    """Run an apply or a revert. JSON for the command line (an error as {"error": ...}, 400); else the page's news:
    what happens now, and the list."""
    page = bool(request.headers.get("hx-request"))
    try:
        change = await work
    except (ChangeError, OperationError) as error:
        if page:
            raise OperationError(str(error)) from None
        return JSONResponse({"error": str(error)}, status_code=400)
    if not page:
        return JSONResponse(change.to_json())
    news = "Checked and written; Theseus restarts on it and verifies it (the list shows how it went)." \
        if change.status == "restarting" else f"Change #{change.id}: {STATUS_WORDS[change.status]}."
    return HTMLResponse(to_xml(Div(P(news), id=PREVIEW_ID)) + to_xml(ChangeList([change] + [
        c for c in request.app.state.runtime.changes.recent() if c.id != change.id], hx_swap_oob="true"))
        + to_xml(Toast(news, kind="info")))
