"""The routes of code changes: preview, apply (a pasted change, or Chip's proposed one), revert, the list, a
change as JSON (for `theseus change`) and the card under Chip's proposal."""

from __future__ import annotations

import asyncio
import json

from fasthtml.common import Div, P, to_xml
from starlette.responses import HTMLResponse, JSONResponse

from ..actions import OperationError, parse_int
from ..ui import Toast
from .diffs import Edit
from .files import ChangeError
from .service import prepare
from .ui import CHANGES_URL, STATUS_WORDS, ChangeDiff, ChangeList, CodeCard, Preview


def add_change_routes(app, runtime) -> None:
    changes = runtime.changes

    @app.post(f"{CHANGES_URL}/preview")
    async def preview(request):
        text, path = await change_input(request)
        return Preview(await asyncio.to_thread(prepared, runtime.config, text, path), text, path)

    @app.post(f"{CHANGES_URL}/apply")
    async def apply_change(request):
        async def work():
            text, path = await change_input(request)
            edits = await asyncio.to_thread(prepared, runtime.config, text, path)
            return await changes.apply(edits, actor="user")
        return await answer(request, work())

    @app.post(CHANGES_URL + "/{number}/apply")
    async def apply_proposed(request, number: str):
        return await answer(request, changes.apply_proposed(parse_int(number, name="change", lo=1)))

    @app.post(CHANGES_URL + "/{number}/revert")
    async def revert(request, number: str):
        return await answer(request, changes.revert(parse_int(number, name="change", lo=1)))

    @app.get(f"{CHANGES_URL}/list")
    def change_list():
        return ChangeList(changes.recent())

    @app.get(CHANGES_URL + "/{number}.json")
    def change_json(number: str):
        return JSONResponse(changes.get(parse_int(number, name="change", lo=1)).to_json())

    @app.get(CHANGES_URL + "/{number}/diff")
    def change_diff(number: str):
        return ChangeDiff(changes.get(parse_int(number, name="change", lo=1)))

    @app.get(CHANGES_URL + "/{number}/card")
    def code_card(number: str):
        return CodeCard(changes.get(parse_int(number, name="change", lo=1)))


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
    return HTMLResponse(to_xml(Div(P(news), cls="change-news")) + to_xml(ChangeList([change] + [
        c for c in request.app.state.runtime.changes.recent() if c.id != change.id], hx_swap_oob="true"))
        + to_xml(Toast(news, kind="info")))
