"""Approvals: which of Chip's operations wait for the user's click, chosen per operation.

Each operation has a policy: ASK (Chip proposes it as a confirm card) or NEVER
(Chip runs it; Undo still works). Until the user chooses, destructive operations
ask and the others don't. In one conversation the user may also say "don't ask
again" for an operation: that allowance lasts as long as the conversation.

Outside agents (MCP clients, mcp_server/) follow the same per-operation policy,
unless the user lets their calls run without asking ("approval_agents": NEVER).

Everything is in the store: "approval" maps operation names to the user's
choices; f"approval:{conversation_id}" holds that conversation's allowances with
its `created` stamp, so a new conversation that reuses a deleted one's id does
not inherit them. The page /chip/approvals shows and changes both.
"""

from __future__ import annotations

import asyncio

from fasthtml.common import (A, H1, H2, Body, Button, Code, Div, Fieldset, Form, Head, Html, Input, Label, Li,
                             Main, Mark, P, Small, Table, Tbody, Td, Title, Tr, Ul, to_xml)
from loguru import logger
from starlette.responses import HTMLResponse

from ..actions import NotFound, Operation, OperationError, parse_int
from ..db import Database
from ..logs import log_safe
from ..ui import TOAST_ID, Headers

ASK, NEVER = "ask", "never"
LABELS = {ASK: "Always ask", NEVER: "Don't ask"}
CHOICES_KEY = "approval"
ALLOWANCE_PREFIX = "approval:"
APPROVALS_URL = "/chip/approvals"
ALLOWANCES_ID = "approval-allowances"
AGENTS_KEY = "approval_agents"
AGENTS_URL = f"{APPROVALS_URL}/agents"
AGENTS_ID = "approval-agents"
AGENT_LABELS = {ASK: "Ask me, as for Chip", NEVER: "Don't ask: run their calls (Undo still works)"}


# ---- the policy ----

def choices(db: Database) -> dict:
    """The user's stored choices, operation name -> ASK or NEVER."""
    stored = db.store.get(CHOICES_KEY, {})
    return stored if isinstance(stored, dict) else {}


def default_policy(op: Operation) -> str:
    return ASK if op.destructive else NEVER


def policy(db: Database, op: Operation) -> str:
    """The user's choice for this operation, else ASK if it is destructive and NEVER if not."""
    stored = choices(db).get(op.name)
    return stored if stored in LABELS else default_policy(op)


def set_policy(db: Database, op_name: str, value: str) -> None:
    """Store the user's choice for an operation; an OperationError (400) for anything but ASK or NEVER."""
    checked(value)
    with db.transaction():
        db.store[CHOICES_KEY] = {**choices(db), op_name: value}
    logger.info(f"approval: {log_safe(op_name, 100)} -> {value}")


def checked(value) -> str:
    """ASK or NEVER, else an OperationError (400)."""
    if value not in LABELS:
        shown = value[:40] if isinstance(value, str) else value
        raise OperationError(f"An approval is {ASK!r} or {NEVER!r}, not {shown!r}; nothing was changed.")
    return value


# ---- outside agents ----

def agents_policy(db: Database) -> str:
    """ASK: an agent's call of an operation whose policy is ASK waits for the user's click (the default);
    NEVER: it runs."""
    stored = db.store.get(AGENTS_KEY)
    return stored if stored in LABELS else ASK


def set_agents_policy(db: Database, value: str) -> None:
    db.store[AGENTS_KEY] = checked(value)
    logger.info(f"approval: outside agents -> {value}")


def agent_needs_confirm(db: Database, op: Operation) -> bool:
    """Whether an outside agent's call of this operation waits for the user's click."""
    return policy(db, op) == ASK and agents_policy(db) == ASK


# ---- "don't ask again in this conversation" ----

def allowance_key(conversation_id: int) -> str:
    return f"{ALLOWANCE_PREFIX}{conversation_id}"


def conversation_row(db: Database, conversation_id: int) -> dict | None:
    rows = db.query("SELECT id, title, created FROM conversations WHERE id = ?", (conversation_id,))
    return rows[0] if rows else None


def allowed_here(db: Database, conversation_id: int) -> list[str]:
    """The operations the user said not to ask about again in this conversation."""
    entry = db.store.get(allowance_key(conversation_id))
    conversation = conversation_row(db, conversation_id)
    if not isinstance(entry, dict) or conversation is None or entry.get("created") != conversation["created"]:
        return []  # none, or left by a deleted conversation whose id was reused
    return [name for name in entry.get("operations", []) if isinstance(name, str)]


def allow_here(db: Database, conversation_id: int, op_name: str) -> None:
    """Don't ask again about this operation in this conversation (NotFound for an unknown conversation)."""
    with db.transaction():
        conversation = conversation_row(db, conversation_id)
        if conversation is None:
            raise NotFound(f"There is no conversation #{conversation_id}.")
        names = allowed_here(db, conversation_id)
        if op_name not in names:
            db.store[allowance_key(conversation_id)] = {"created": conversation["created"],
                                                        "operations": sorted([*names, op_name])}


def forget_here(db: Database, conversation_id: int) -> None:
    """Ask again, as the policy says, about everything allowed in this conversation."""
    with db.transaction():
        db.store.pop(allowance_key(conversation_id), None)


def needs_confirm(db: Database, op: Operation, conversation_id: int | None) -> bool:
    """Whether Chip must propose this operation for a click: its policy is ASK and this conversation did not
    say "don't ask again" for it."""
    if policy(db, op) != ASK:
        return False
    return conversation_id is None or op.name not in allowed_here(db, conversation_id)


def allowances(db: Database) -> list[tuple[dict, list[str]]]:
    """(conversation, allowed operation names) for every existing conversation that has any, oldest first."""
    numbers = sorted(int(key[len(ALLOWANCE_PREFIX):]) for key in db.store
                     if key.startswith(ALLOWANCE_PREFIX) and key[len(ALLOWANCE_PREFIX):].isdigit())
    found = [(conversation_row(db, number), allowed_here(db, number)) for number in numbers]
    return [(conversation, names) for conversation, names in found if conversation and names]


# ---- the page ----

def offered_by_app(operations: dict[str, Operation]) -> list[tuple[object, list[Operation]]]:
    """(plugin, its offered operations by name) for every plugin that offers any, in Apps-menu order."""
    groups: dict[str, tuple[object, list[Operation]]] = {}
    for op in operations.values():
        if not op.internal:
            groups.setdefault(op.plugin.name, (op.plugin, []))[1].append(op)
    ordered = sorted(groups.values(), key=lambda group: (group[0].order, group[0].name))
    return [(plugin, sorted(ops, key=lambda op: op.name)) for plugin, ops in ordered]


def approval_row_id(op_name: str) -> str:
    """The id of an operation's row on the page (dots would need escaping in a selector)."""
    return "approval-" + "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in op_name)


def forget_url(conversation_id: int) -> str:
    return f"{APPROVALS_URL}/forget/{conversation_id}"


def PolicyChoice(op: Operation, current: str):
    """Always ask / Don't ask for one operation; a change posts at once and the row is swapped back."""
    options = [Label(Input(type="radio", name="policy", value=value, checked=value == current), label)
               for value, label in LABELS.items()]
    return Form(Input(type="hidden", name="operation", value=op.name), Fieldset(*options, cls="approval-choice"),
                hx_post=APPROVALS_URL, hx_trigger="change", hx_swap="none", aria_label=f"Approval for {op.name}")


def ApprovalRow(op: Operation, current: str, **attrs):
    marked = [" ", Mark("destructive", cls="destructive")] if op.destructive else []
    return Tr(Td(Code(op.name), *marked), Td(op.description), Td(PolicyChoice(op, current)),
              id=approval_row_id(op.name), data_policy=current, **attrs)


def AppApprovals(db: Database, plugin, ops: list[Operation]):
    return Div(H2(plugin.display_name or plugin.name),
               Table(Tbody(*[ApprovalRow(op, policy(db, op)) for op in ops])), cls="app-approvals")


def Allowances(db: Database, **attrs):
    """Each conversation's "don't ask again" operations, with a button to forget them."""
    found = allowances(db)
    items = [Li(A(conversation["title"], href=f"/chat/{conversation['id']}"), ": ", ", ".join(names), " ",
                Button("Forget", hx_post=forget_url(conversation["id"]), hx_swap="none", cls="outline secondary"))
             for conversation, names in found]
    body = Ul(*items) if items else P("No conversation has any.", cls="muted")
    return Div(H2("Don't ask again, per conversation"), body, id=ALLOWANCES_ID, **attrs)


def AgentsChoice(db: Database, **attrs):
    """Whether outside agents (MCP clients) are asked about, like Chip, or run their calls."""
    current = agents_policy(db)
    options = [Label(Input(type="radio", name="policy", value=value, checked=value == current), label)
               for value, label in AGENT_LABELS.items()]
    return Div(H2("Outside agents (MCP)"),
               P(Small("Programs that drive Theseus over MCP (see docs/mcp.md): when one calls an operation set to "
                       "Always ask, a card in the chat pane waits for your click.")),
               Form(Fieldset(*options, cls="approval-choice"), hx_post=AGENTS_URL, hx_trigger="change",
                    hx_swap="none", aria_label="Approval for outside agents"),
               id=AGENTS_ID, data_policy=current, **attrs)


def ApprovalsPage(db: Database, operations: dict[str, Operation]):
    """Every offered operation by app with its approval, outside agents, then the conversations' allowances."""
    intro = P(Small("Always ask: Chip proposes the operation and waits for your click. Don't ask: Chip runs it "
                    "(Undo still works). Until you choose, destructive operations ask and the others don't. ",
                    A("Back to Theseus", href="/")))
    apps = [AppApprovals(db, plugin, ops) for plugin, ops in offered_by_app(operations)]
    return Html(Head(Title("Chip's approvals · Theseus"), *Headers()),
                Body(Main(H1("Chip's approvals"), intro, *apps, AgentsChoice(db), Allowances(db),
                          Div(id=TOAST_ID, cls="toast", role="status"), cls="container chip-approvals")))


# ---- routes ----

def offered_operation(runtime, name: str) -> Operation:
    """The offered (not internal) operation of that name, else NotFound (404)."""
    op = runtime.registry.operations.get(name)
    if op is None or op.internal:
        raise NotFound(f"There is no operation called {name[:100]!r}; nothing was changed.")
    return op


async def form_text(request, *names: str) -> list[str]:
    """The named form fields as text ('' when missing); a body that can't be read is a 400."""
    try:
        form = await request.form()
    except Exception as error:
        raise OperationError(f"Could not read the request body ({type(error).__name__}).") from None
    return [value if isinstance(value := form.get(name, ""), str) else "" for name in names]


def fragment(component) -> HTMLResponse:
    return HTMLResponse(to_xml(component))


def chosen_row(db: Database, op: Operation, value: str):
    """Store the choice; the operation's row as it now is, as an out-of-band swap."""
    set_policy(db, op.name, value)
    return ApprovalRow(op, policy(db, op), hx_swap_oob="true")


def add_approval_routes(app, runtime) -> None:
    """GET the approvals page; POST a choice for one operation, or for outside agents; POST to forget a
    conversation's allowances."""
    db = runtime.db

    @app.get(APPROVALS_URL)
    def approvals_page():
        return fragment(ApprovalsPage(db, runtime.registry.operations))

    @app.post(APPROVALS_URL)
    async def choose(request):
        name, value = await form_text(request, "operation", "policy")
        op = offered_operation(runtime, name)
        return fragment(await asyncio.to_thread(chosen_row, db, op, value))  # the write may wait for the db lock

    @app.post(AGENTS_URL)
    async def choose_for_agents(request):
        value, = await form_text(request, "policy")
        await asyncio.to_thread(set_agents_policy, db, value)
        return fragment(AgentsChoice(db, hx_swap_oob="true"))

    @app.post(APPROVALS_URL + "/forget/{conversation_id}")
    def forget(conversation_id: str):
        forget_here(db, parse_int(conversation_id, name="conversation_id", lo=1))
        return fragment(Allowances(db, hx_swap_oob="true"))
