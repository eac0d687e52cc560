"""Chip acts: slash commands, modes, and turning a decoded command into a change, a confirm card or talk.

Every change goes through `Registry.execute(..., actor="llm")`, so it is
validated, logged with its snapshot, undoable and live in every tab. A
destructive command only becomes a confirm card; nothing is deleted until the
user clicks. The card is bound to its row as it was when Chip proposed it (its
values, and its place in the action log) and expires: a row changed, deleted or
made anew under the same id since, or a card older than PROPOSAL_TTL, is refused.
A command identical to Chip's previous one, moments ago, is refused.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass

from ..actions import OperationError, Outcome
from ..location import NOWHERE, Location
from .commands import Command, act_on, decode_command, operations, validate

MODES = ("auto", "chat", "command")
REPEAT_WINDOW = 120.0  # seconds in which Chip refuses to repeat its own identical command
PROPOSAL_TTL = 600.0  # seconds a confirm card can be used
RECENT_TURNS = 2  # the last exchange, given to the decoder when a message refers back ("delete it")
SLASH_HELP = """Commands that need no model:
- `/VERB ARGUMENTS`: run one of the open app's operations by its verb (listed below); a row is named by
  its id first, several values are separated by commas
- `/undo`: undo Chip's last change
- `/chat MESSAGE`: just talk, no action (`/chat` alone: stay in chat-only mode)
- `/command MESSAGE`: always act (`/command` alone: stay in command mode)
- `/auto`: let Chip decide whether to act or talk (the default)
- `/help`: this list"""


@dataclass
class Proposal:
    """A destructive command Chip proposed, waiting for the user's click."""

    token: str
    command: Command
    label: str
    conversation_id: int
    target: tuple[str, dict] | None = None  # (table, row) as the row was when proposed; None: no row
    since: int = 0  # the action log's newest event id when proposed
    expires: float = 0.0  # time.monotonic() after which the card is refused


@dataclass
class Reply:
    """What Chip answers without generating text: a message, and optionally a card."""

    text: str
    event_id: int | None = None      # an executed change: the card gets an Undo button
    proposal: Proposal | None = None  # a destructive command: the card asks for confirmation


def parse(text: str, sticky_mode: str) -> tuple[str, str]:
    """(mode or slash word, rest): '/chat hi' -> ('chat', 'hi'); '/add milk' -> ('/add', 'milk')."""
    if not text.startswith("/"):
        return sticky_mode, text
    word, _, rest = text.partition(" ")
    word, rest = word.lower(), rest.strip()
    if word[1:] in MODES:
        return word[1:], rest
    return word, rest


class Agent:
    """Decides, for one message, whether Chip acts or talks, and carries out the action."""

    def __init__(self, runtime, backend):
        self.runtime, self.backend = runtime, backend
        self.proposals: dict[str, Proposal] = {}
        self.last_command: tuple[str, float] | None = None

    @property
    def mode(self) -> str:
        return self.runtime.db.store.get("chat_mode", "auto")

    def set_mode(self, mode: str) -> None:
        self.runtime.db.store["chat_mode"] = mode

    async def slash(self, word: str, rest: str, conversation_id: int, location: Location = NOWHERE) -> Reply:
        """Run a slash command (no model): `/VERB ARGUMENTS` on the open app's operation with that verb; a
        destructive one becomes a confirm card, as when Chip proposes it."""
        app = act_on(self.runtime, location)
        op = slash_operation(self.runtime, app, word[1:])
        if op is None:
            return Reply(slash_help(self.runtime, app))
        args = op.plugin.slash_args(op, rest, location)
        if op.destructive:
            proposal = self.propose(op, op.validate(args), conversation_id)
            return Reply(f"Shall I {proposal.label}? Please confirm.", proposal=proposal)
        outcome = await self.run_user(op.name, args)
        return Reply(reply_text(op, outcome))

    async def run_user(self, name: str, args: dict) -> Outcome:
        return await asyncio.to_thread(self.runtime.registry.execute, name, args, "user")

    async def decide(self, text: str, recent: str, mode: str, location: Location = NOWHERE,
                     on_progress=None) -> Command:
        """The command a message from a tab at `location` asks for ("none" in chat mode or when it asks for
        nothing)."""
        if mode == "chat":
            return Command("none")
        return await decode_command(self.runtime, self.backend, text, recent=recent, must_act=mode == "command",
                                    location=location, on_progress=on_progress)

    async def act(self, command: Command, conversation_id: int) -> Reply:
        """Carry out a decoded command, or say why not; destructive ones wait for a click; a question back is
        asked."""
        if command.ask:
            return Reply(command.ask)
        try:
            args = validate(self.runtime, command)
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        key = json.dumps([command.operation, args], sort_keys=True)
        if self.last_command and self.last_command[0] == key and time.monotonic() - self.last_command[1] < REPEAT_WINDOW:
            return Reply("I just did exactly that. If you really want it twice, say so with a slash "
                         "command (`/help` lists them).")
        op = self.runtime.registry.get(command.operation)
        if op.destructive:
            try:
                proposal = self.propose(op, args, conversation_id)
            except OperationError as error:
                return Reply(f"I couldn't do that: {error.message}")
            return Reply(f"Shall I {proposal.label}? Please confirm.", proposal=proposal)
        try:
            outcome = await asyncio.to_thread(self.runtime.registry.execute, op.name, args, "llm")
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        self.last_command = (key, time.monotonic())
        return Reply(reply_text(op, outcome), event_id=None if listing(op, outcome) else outcome.event_id)

    def propose(self, op, args: dict, conversation_id: int) -> Proposal:
        """A confirm card for a destructive command, bound to its row as it is now (NotFound if it is gone)."""
        self.proposals = {t: p for t, p in self.proposals.items() if p.expires > time.monotonic()}
        target = op.plugin.target_row(args)
        proposal = Proposal(secrets.token_urlsafe(8), Command(op.name, args), describe(op, target), conversation_id,
                            target, newest_event_id(self.runtime.db), time.monotonic() + PROPOSAL_TTL)
        self.proposals[proposal.token] = proposal
        return proposal

    async def confirm(self, token: str, tab: str | None = None) -> tuple[Proposal, Outcome]:
        """Execute a proposal the user confirmed (as Chip's action); OperationError if gone, expired, its row
        changed since, or the operation refused."""
        proposal = self.proposals.pop(token, None)
        if proposal is None:
            raise OperationError("This proposal is no longer open (used, cancelled, or the server restarted); "
                                 "nothing was changed. Ask Chip again.", 410)
        if time.monotonic() > proposal.expires:
            raise OperationError(f"This proposal expired after {PROPOSAL_TTL / 60:.0f} minutes; nothing was changed. "
                                 "Ask Chip again.", 410)
        outcome = await asyncio.to_thread(self.run_if_unchanged, proposal, tab)
        return proposal, outcome

    def run_if_unchanged(self, proposal: Proposal, tab: str | None) -> Outcome:
        """Run the proposal's command if its row is as it was when proposed (checked and run under the db lock)."""
        with self.runtime.db.lock:
            if self.changed_since_proposed(proposal):
                raise OperationError(f"Not done: since Chip proposed to {proposal.label}, it was changed or deleted "
                                     "(or made anew under the same id); nothing was changed. Ask Chip again if you "
                                     "still want it.", 409)
            return self.runtime.registry.execute(proposal.command.operation, proposal.command.args, "llm", tab)

    def changed_since_proposed(self, proposal: Proposal) -> bool:
        if proposal.target is None:
            return False
        table, row = proposal.target
        try:
            now = self.runtime.registry.get(proposal.command.operation).plugin.target_row(proposal.command.args)
        except OperationError:
            return True
        return now != proposal.target or row_changed_since(self.runtime.db, table, row["id"], proposal.since)

    def cancel(self, token: str) -> Proposal:
        proposal = self.proposals.pop(token, None)
        if proposal is None:
            raise OperationError("This proposal is no longer open; nothing was changed.", 410)
        return proposal


def describe(op, target: tuple[str, dict] | None) -> str:
    """'delete task 'buy milk' (#3)': what a destructive command would do, in words."""
    label = getattr(op.plugin, "label", None)
    return f"{op.name.split('.')[-1]} {label(target[1]) if target and label else op.target}"


def newest_event_id(db) -> int:
    return db.value("SELECT COALESCE(MAX(id), 0) FROM events")


def row_changed_since(db, table: str, row_id: int, event_id: int) -> bool:
    """Whether an event after `event_id` changed this row (even back to the same values, or anew under its id)."""
    return bool(db.value(
        "SELECT 1 FROM events e, json_each(e.changes) c WHERE e.id > ? AND json_extract(c.value, '$.table') = ? "
        "AND ? IN (json_extract(c.value, '$.before.id'), json_extract(c.value, '$.after.id')) LIMIT 1",
        (event_id, table, row_id)))


def recent_turns(messages: list[dict]) -> str:
    """The last few turns before the newest message, as lines for the decoder."""
    turns = messages[-RECENT_TURNS - 1:-1]
    return "\n".join(f"{'User' if m['role'] == 'user' else 'Chip'}: {m['content'][:200]}" for m in turns)


def listing(op, outcome: Outcome) -> bool:
    """Whether an outcome is a list app's rows (its `list` operation), shown as a list."""
    return op.name.endswith(".list") and hasattr(op.plugin, "describe_row") and isinstance(outcome.value, list)


def reply_text(op, outcome: Outcome) -> str:
    return list_text(op.plugin, outcome.value) if listing(op, outcome) else f"{outcome.message.rstrip('.')}."


def list_text(app, rows: list[dict]) -> str:
    """A list app's rows as a markdown list (values escaped as plain data)."""
    if not rows:
        return f"There are no {app.item}s yet."
    return f"Your {app.item}s:\n" + "\n".join(f"- {list_line(app, r)}" for r in rows)


def list_line(app, row: dict) -> str:
    """'#4 Ada Lovelace · email: ada@example.com' (a true yes/no field as ✓ and its name; values escaped)."""
    parts = [f"#{row['id']} {escape_markdown(str(row[app.label_field]))}"]
    for field in app.fields:
        value = row.get(field)
        if field == app.label_field or value in (None, "") or app.columns[field] is bool and not value:
            continue
        parts.append(f"✓ {field}" if app.columns[field] is bool else f"{field}: {escape_markdown(str(value))}")
    return " · ".join(parts)


def slash_operation(runtime, app, verb: str):
    """The operation `/verb` means: the app's own with that verb (or name), else the one app-wide, if unique
    (`/undo`); `app` None: a tab whose app Chip cannot drive."""
    ops = [op for op in runtime.registry.operations.values() if not op.internal]
    own = [op for op in ops if op.plugin is app and verb in (op.verb, op.name.rpartition(".")[2])]
    anywhere = [op for op in ops if verb in (op.verb, op.name.rpartition(".")[2])]
    return (own or (anywhere if len(anywhere) == 1 else [None]))[0]


def slash_help(runtime, app) -> str:
    """The slash commands, with the open app's verbs and what each takes."""
    if app is None:
        return f"{SLASH_HELP}\n\nThis app has no commands of its own."
    lines = [f"- `{app.slash_usage(op)}`: {op.description}" for op in operations(runtime, app).values()]
    return f"{SLASH_HELP}\n\nIn {app.display_name}:\n" + "\n".join(lines)


def escape_markdown(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!<>|~" else c for c in text)
