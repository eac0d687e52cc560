"""Chip acts: slash commands, modes, and turning a decoded command into a change, a confirm card or talk.

Every change goes through `Registry.execute(..., actor="llm")`, so it is
validated, logged with its snapshot, undoable and live in every tab. A
destructive command only becomes a confirm card; nothing is deleted until the
user clicks. A command identical to Chip's previous one, moments ago, is refused.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass

from ..actions import OperationError, Outcome
from .commands import Command, act_on, decode_command, validate

MODES = ("auto", "chat", "command")
REPEAT_WINDOW = 120.0  # seconds in which Chip refuses to repeat its own identical command
RECENT_TURNS = 4  # conversation turns given to the decoder, so "delete it" finds "it"
SLASH_HELP = """Commands that need no model:
- `/add NAME`: add a task
- `/done ID`: mark task ID done (or not done again)
- `/list`: list the tasks
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

    async def slash(self, word: str, rest: str, conversation_id: int) -> Reply:
        """Run a slash command (no model)."""
        run = self.run_user
        if word == "/add" and rest:
            return Reply((await run("tasks.insert", {"name": rest})).message)
        if word == "/done" and rest:
            return Reply((await run("tasks.toggle", {"id": rest.lstrip("#")})).message)
        if word == "/list":
            return Reply(list_text(self.runtime, (await run("tasks.list", {})).value))
        if word == "/undo":
            return Reply((await run("history.undo", {})).message)
        return Reply(SLASH_HELP)

    async def run_user(self, name: str, args: dict) -> Outcome:
        return await asyncio.to_thread(self.runtime.registry.execute, name, args, "user")

    async def decide(self, text: str, recent: str, mode: str) -> Command:
        """The command a message asks for ("none" in chat mode or when it asks for nothing)."""
        if mode == "chat":
            return Command("none")
        return await decode_command(self.runtime, self.backend, text, recent=recent, must_act=mode == "command")

    async def act(self, command: Command, conversation_id: int) -> Reply:
        """Carry out a decoded command, or say why not; destructive ones wait for a click."""
        try:
            args = validate(self.runtime, command)
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        key = json.dumps([command.operation, args], sort_keys=True)
        if self.last_command and self.last_command[0] == key and time.monotonic() - self.last_command[1] < REPEAT_WINDOW:
            return Reply("I just did exactly that. If you really want it twice, say so with a slash "
                         "command, e.g. `/add NAME`.")
        op = self.runtime.registry.get(command.operation)
        if op.destructive:
            proposal = Proposal(secrets.token_urlsafe(8), Command(op.name, args), self.describe(op, args),
                                conversation_id)
            self.proposals[proposal.token] = proposal
            return Reply(f"Shall I {proposal.label}? Please confirm.", proposal=proposal)
        try:
            outcome = await asyncio.to_thread(self.runtime.registry.execute, op.name, args, "llm")
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        self.last_command = (key, time.monotonic())
        if op.name.endswith(".list"):
            return Reply(list_text(self.runtime, outcome.value))
        return Reply(f"{outcome.message}.", event_id=outcome.event_id)

    def describe(self, op, args: dict) -> str:
        """'delete task 'buy milk' (#3)': what a destructive command would do, in words."""
        app = op.plugin
        row = app.db.query(f"SELECT * FROM {app.table} WHERE id = ?", (args.get("id"),)) if hasattr(app, "table") \
            else []
        target = app.label(row[0]) if row else op.target
        return f"{op.name.split('.')[-1]} {target}"

    async def confirm(self, token: str, tab: str | None = None) -> tuple[Proposal, Outcome]:
        """Execute a proposal the user confirmed (as Chip's action); OperationError if gone or refused."""
        proposal = self.proposals.pop(token, None)
        if proposal is None:
            raise OperationError("That proposal has expired; ask Chip again.", 410)
        outcome = await asyncio.to_thread(self.runtime.registry.execute, proposal.command.operation,
                                          proposal.command.args, "llm", tab)
        return proposal, outcome

    def cancel(self, token: str) -> Proposal:
        proposal = self.proposals.pop(token, None)
        if proposal is None:
            raise OperationError("That proposal has expired.", 410)
        return proposal


def recent_turns(messages: list[dict]) -> str:
    """The last few turns before the newest message, as lines for the decoder."""
    turns = messages[-RECENT_TURNS - 1:-1]
    return "\n".join(f"{'User' if m['role'] == 'user' else 'Chip'}: {m['content'][:300]}" for m in turns)


def list_text(runtime, rows: list[dict]) -> str:
    """A list operation's rows as a markdown list (names escaped as plain data)."""
    app = act_on(runtime)
    if not rows:
        return f"There are no {app.item}s yet."
    lines = [f"- #{r['id']} {escape_markdown(r['name'])}{' ✓' if r.get('done') else ''}" for r in rows]
    return f"Your {app.item}s:\n" + "\n".join(lines)


def escape_markdown(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!<>|~" else c for c in text)
