"""Chip acts: slash commands, modes, and turning a decoded plan into changes, a confirm card, a question or talk.

Every change goes through `Registry.execute(..., actor="llm")`, so it is
validated, logged with its snapshot, undoable and live in every tab. The
commands of one message run as one plan: their events share a key, one card
lists each (done, or refused and why) and one Undo reverts them all. A plan
with an operation the user's approval policy asks about (destructive ones, by
default: chat/approval.py) waits, whole, for one click on a card that lists
what will happen. The card is bound to its rows as they were when Chip
proposed it (their values, and their place in the action log): a row changed,
deleted or made anew under the same id since is refused. Cards are stored with
their message, and open proposals in the database (chat/proposals.py), so both
survive a reload and a restart. A question back ("Which one: #3 or #7?") keeps
its choices: a short reply that picks one ("the second one", "#7") runs it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

from ..actions import OperationError, Outcome
from ..location import NOWHERE, Location
from ..markup import escape_markdown
from . import approval
from .commands import Command, Plan, act_on, decode_plan, operations
from .proposals import Proposal, Proposals

MODES = ("auto", "chat", "command")
RECENT_TURNS = 2  # the last exchange, given to the decoder when a message refers back ("delete it")
ANSWER_WORDS = 8  # a reply to a "which one?" question is at most this long; a longer message is a new request
ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
            "fifth": 4, "5th": 4, "last": -1}
YES = re.compile(r"^\s*(yes|yeah|yep|yup|sure|ok|okay|please do|do it|go ahead|add it)\b[\s!.,]*(please)?[\s!.]*$",
                 re.IGNORECASE)
SLASH_HELP = """Commands that need no model:
- `/VERB ARGUMENTS`: run one of the open app's operations by its verb (listed below); a row is named by
  its id first, several values are separated by commas
- `/undo`: undo Chip's last change
- `/chat MESSAGE`: just talk, no action (`/chat` alone: stay in chat-only mode)
- `/command MESSAGE`: always act (`/command` alone: stay in command mode)
- `/auto`: let Chip decide whether to act or talk (the default)
- `/help`: this list"""


@dataclass
class Step:
    """One command of a plan as it ran: its outcome, or why it was refused."""

    command: Command
    outcome: Outcome | None = None
    error: str = ""
    what: str = ""  # the command in words, for a refused one

    def line(self) -> str:
        return f"{self.outcome.message.rstrip('.')}." if self.outcome else f"Not done: {self.what}: {self.error}"


@dataclass
class Reply:
    """What Chip answers without generating text: a message, and optionally a card stored with it."""

    text: str
    card: dict | None = None  # {"kind": "done", "steps": [...], "undo": event id} or {"kind": "proposal", ...}
    proposal: Proposal | None = None


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
    """Decides, for one message, whether Chip acts or talks, and carries out the plan."""

    def __init__(self, runtime, backend):
        self.runtime, self.backend = runtime, backend
        self.proposals = Proposals(runtime.db)
        self.choices: dict[int, tuple[tuple[str, Command], ...]] = {}  # per conversation: the open question's
        self.decisions: dict[str, asyncio.Future] = {}  # per proposal token: a caller waiting for the click

    @property
    def mode(self) -> str:
        return self.runtime.db.store.get("chat_mode", "auto")

    def set_mode(self, mode: str) -> None:
        self.runtime.db.store["chat_mode"] = mode

    async def slash(self, word: str, rest: str, conversation_id: int, location: Location = NOWHERE) -> Reply:
        """Run a slash command (no model): `/VERB ARGUMENTS` on the open app's operation with that verb; one the
        approval policy asks about becomes a confirm card, as when Chip proposes it."""
        app = act_on(self.runtime, location)
        op = slash_operation(self.runtime, app, word[1:])
        if op is None:
            return Reply(slash_help(self.runtime, app))
        command = Command(op.name, op.validate(op.plugin.slash_args(op, rest, location)))
        if approval.needs_confirm(self.runtime.db, op, conversation_id):
            return self.propose([command], conversation_id, actor="user")
        steps = await asyncio.to_thread(self.run_plan, [command], "user")
        return self.done(steps)

    async def decide(self, text: str, recent: str, mode: str, location: Location = NOWHERE,
                     on_progress=None) -> Plan:
        """The plan a message from a tab at `location` asks for (talk in chat mode or when it asks for nothing)."""
        if mode == "chat":
            return Plan()
        return await decode_plan(self.runtime, self.backend, text, recent=recent, must_act=mode == "command",
                                 location=location, on_progress=on_progress)

    def answer(self, text: str, conversation_id: int) -> Plan | None:
        """A reply to Chip's open question: the choice it picks ("the bill one", "#7", "the second"), or Yes to
        the card under Chip's last reply (one that needs no confirm click); None if it is a new request. A
        question is open for one message only."""
        choices = self.choices.pop(conversation_id, ())
        if YES.match(text):
            offered = self.proposals.newest(conversation_id)
            last = self.runtime.db.value("SELECT MAX(id) FROM messages WHERE conversation_id = ? "
                                         "AND role = 'assistant'", (conversation_id,))
            if offered is not None and offered.message_id == last and offered.actor != "agent" \
                    and not any(self.needs_confirm(c, conversation_id) for c in offered.commands):
                self.proposals.take(offered.token)
                return Plan(tuple(offered.commands))
        if not choices or len(text.split()) > ANSWER_WORDS:
            return None
        picked = pick_choice(choices, text)
        return Plan((picked,)) if picked else None

    async def act(self, plan: Plan, conversation_id: int) -> Reply:
        """Carry out a plan, or ask: a plan the approval policy asks about waits for a click; a question back
        is asked (with a one-click card when it offers something)."""
        if plan.ask:
            self.choices[conversation_id] = plan.choices
            return self.propose(list(plan.offer), conversation_id, question=plan.ask) if plan.offer \
                else Reply(plan.ask)
        try:
            for command in plan.commands:
                self.runtime.registry.get(command.operation).validate(command.args)
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        if any(self.needs_confirm(c, conversation_id) for c in plan.commands):
            return self.propose(list(plan.commands), conversation_id)
        steps = await asyncio.to_thread(self.run_plan, list(plan.commands), "llm")
        return self.done(steps)

    def needs_confirm(self, command: Command, conversation_id: int) -> bool:
        return approval.needs_confirm(self.runtime.db, self.runtime.registry.get(command.operation), conversation_id)

    def run_plan(self, commands: list[Command], actor: str, tab: str | None = None) -> list[Step]:
        """Run each command in order as one plan (one key in the action log, so one Undo reverts them all); a
        refused one is reported, the others still run."""
        plan = secrets.token_hex(6) if len(commands) > 1 else None
        steps = []
        for command in commands:
            try:
                steps.append(Step(command, self.runtime.registry.execute(command.operation, command.args, actor, tab,
                                                                         plan=plan)))
            except OperationError as error:
                steps.append(Step(command, error=error.message, what=self.describe(command)))
        return steps

    def done(self, steps: list[Step]) -> Reply:
        """The reply to a plan that ran: what each command did (a list app's rows, for a listing), and a card
        with an Undo for the whole plan."""
        ran = [s for s in steps if s.outcome]
        if len(steps) == 1 and ran and listing(self.runtime.registry.get(ran[0].command.operation), ran[0].outcome):
            return Reply(reply_text(self.runtime.registry.get(ran[0].command.operation), ran[0].outcome))
        text = steps[0].line() if len(steps) == 1 else "Done:\n" + "\n".join(f"- {s.line()}" for s in steps)
        if not ran and len(steps) == 1:
            text = f"I couldn't do that: {steps[0].error}"
        undo = next((s.outcome.event_id for s in ran if s.outcome.changes), None)
        card = {"kind": "done", "steps": [{"text": s.line(), "ok": bool(s.outcome)} for s in steps], "undo": undo}
        return Reply(text, card if undo else None)

    def propose(self, commands: list[Command], conversation_id: int, *, question: str = "",
                actor: str = "llm") -> Reply:
        """A card for a plan that waits for the user's click, bound to its rows as they are now."""
        try:
            targets = [self.target(c) for c in commands]
        except OperationError as error:
            return Reply(f"I couldn't do that: {error.message}")
        lines = [self.describe(c) for c in commands]
        label = lines[0] if len(lines) == 1 else f"make these {len(lines)} changes"
        proposal = self.proposals.create(conversation_id, commands, label, lines if len(lines) > 1 else [],
                                         targets, newest_event_id(self.runtime.db), actor)
        text = question or f"Shall I {label}? Please confirm." + "".join(f"\n- {line}" for line in proposal.lines)
        remember = actor != "agent" and any(self.needs_confirm(c, conversation_id) for c in commands)
        return Reply(text, {"kind": "proposal", "token": proposal.token, "label": label, "lines": proposal.lines,
                            "remember": remember}, proposal)

    def target(self, command: Command):
        op = self.runtime.registry.get(command.operation)
        return op.plugin.target_row(op.validate(command.args))

    def describe(self, command: Command) -> str:
        """What a command does, in words: 'delete task 'buy milk' (#3)', 'add task: buy milk'."""
        op = self.runtime.registry.get(command.operation)
        try:
            target = op.plugin.target_row(command.args)
        except OperationError:
            target = None
        return describe(op, target, command.args)

    def expect(self, token: str) -> asyncio.Future:
        """A future the user's click on this proposal's card settles: ("done", steps), ("refused", why) or
        ("cancelled", label). The caller waits on it (and removes it from `decisions` when it stops waiting)."""
        future = asyncio.get_running_loop().create_future()
        self.decisions[token] = future
        return future

    def decided(self, token: str, result: tuple[str, object]) -> None:
        """Tell the caller waiting on this proposal what became of it (from any thread: a sync route runs in a
        worker)."""
        future = self.decisions.pop(token, None)
        if future is not None:
            future.get_loop().call_soon_threadsafe(settle, future, result)

    async def confirm(self, token: str, tab: str | None = None, remember: bool = False) -> tuple[Proposal, list[Step]]:
        """Run a proposal the user confirmed (as the actor that proposed it); OperationError if gone, expired,
        or any of its rows changed since. `remember`: don't ask again for these operations in this
        conversation. A caller waiting for the decision learns it."""
        try:
            proposal, steps = await self.run_confirmed(token, tab, remember)
        except OperationError as error:
            self.decided(token, ("refused", error.message))
            raise
        self.decided(token, ("done", steps))
        return proposal, steps

    async def run_confirmed(self, token: str, tab: str | None, remember: bool) -> tuple[Proposal, list[Step]]:
        proposal = self.proposals.take(token)
        if proposal is None:
            raise OperationError("This proposal is no longer open (used or cancelled); nothing was changed. "
                                 "Ask Chip again.", 410)
        if proposal.expired:
            raise OperationError("This proposal expired; nothing was changed. Ask Chip again.", 410)
        steps = await asyncio.to_thread(self.run_if_unchanged, proposal, tab)
        if remember:
            for command in proposal.commands:
                approval.allow_here(self.runtime.db, proposal.conversation_id, command.operation)
        return proposal, steps

    def run_if_unchanged(self, proposal: Proposal, tab: str | None) -> list[Step]:
        """Run the proposal's plan if its rows are as they were when proposed (checked and run under the db
        lock)."""
        with self.runtime.db.lock:
            if self.changed_since_proposed(proposal):
                raise OperationError(f"Not done: since Chip proposed to {proposal.label}, it was changed or deleted "
                                     "(or made anew under the same id); nothing was changed. Ask Chip again if you "
                                     "still want it.", 409)
            return self.run_plan(proposal.commands, proposal.actor, tab)

    def changed_since_proposed(self, proposal: Proposal) -> bool:
        for command, target in zip(proposal.commands, proposal.targets):
            if target is None:
                continue
            table, row = target
            try:
                now = self.target(command)
            except OperationError:
                return True
            if now is None or list(now) != [table, row] or row_changed_since(self.runtime.db, table, row["id"],
                                                                             proposal.since):
                return True
        return False

    def cancel(self, token: str) -> Proposal:
        proposal = self.proposals.take(token)
        if proposal is None:
            raise OperationError("This proposal is no longer open; nothing was changed.", 410)
        self.decided(token, ("cancelled", proposal.label))
        return proposal


def settle(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)


def pick_choice(choices: tuple[tuple[str, Command], ...], text: str) -> Command | None:
    """The choice a short reply picks: by position ("the second one"), by id ("#7", "7"), or by words of its
    label that the others' labels lack ("the bill one"); None if it picks none, or several."""
    said = text.lower()
    for word, index in ORDINALS.items():
        if re.search(rf"\b{word}\b", said):
            return choices[index][1] if -len(choices) <= index < len(choices) else None
    numbers = {int(n) for n in re.findall(r"\b[0-9]{1,9}\b", said)}
    by_id = [c for _, c in choices if c.args.get("id") in numbers]
    if by_id:
        return by_id[0] if len(by_id) == 1 else None
    words = set(re.findall(r"[^\W_]{3,}", said))
    labels = [set(re.findall(r"[^\W_]{3,}", label.lower())) for label, _ in choices]
    picked = [command for label, (_, command) in zip(labels, choices)
              if words & (label - set().union(*(other for other in labels if other is not label)))]
    return picked[0] if len(picked) == 1 else None


def describe(op, target: tuple[str, dict] | None, args: dict | None = None) -> str:
    """'delete task 'buy milk' (#3)': what a command would do, in words (a new row by its values)."""
    label = getattr(op.plugin, "label", None)
    verb = op.verb or op.name.split(".")[-1]
    if target and label:
        return f"{verb} {label(target[1])}"
    values = ", ".join(str(v) for k, v in (args or {}).items() if v not in (None, "") and k not in ("id", "ids"))
    return f"{verb} {op.target}" + (f" “{values}”" if values else "")


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
