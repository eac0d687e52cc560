"""Turning a chat message into a plan (commands, talk, or a question back), decoded in one pass under a JSON schema
generated from the registry.

The chat core names no app: the app open in the tab the message came from
says what Chip reads and may do (the `chip_*` hooks of the plugin contract,
plugins.py; `BaseApp` answers them from its table, apps/guide.py, and
`Workflow` from its runs, workflows/chip.py). The decoder has its own model
context (llm/embedded.py), laid out so that what stays the same from message
to message comes first and stays cached: the instructions, the app's
operations and its examples (on the app's own sample rows, so none depends on
the real ones); then the last user message, which starts with the current
state (cached while it is unchanged), then the message. One schema holds
every choice at once: a list of commands ("add a, b and c" is three), each an
`anyOf` of one object per verb with what that operation takes (optional
arguments stay optional), narrowed to the current state. Operations marked
`anywhere` (undo) are offered in every app. Nothing is scraped out of free
prose. The app turns each command into arguments (`chip_args`: one command
may stand for several rows, "every task"), or asks back (`Ask`) when the
message names no row clearly; a plan longer than PLAN_LIMIT is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..actions import Operation
from ..llm.base import Backend, BackendError
from ..location import NOWHERE, Location
from ..plugins import Ask

NONE = "none"
CHAT = "chat"  # "none" is offered to the model as three words it reads well: just talk,
HELP = "help"  # a question about how the app works,
LOG = "log"    # or one about what happened (answered from the action log)
TALK = (CHAT, HELP, LOG)
WHEN_NONE = ("the message asks no change: greetings, thanks, small talk, questions about the data, about you or "
             "about anything else, or things the app cannot do")
WHEN_HELP = "a question about how to use the app or what it is (explain; change nothing)"
WHEN_LOG = "a question about what was done or changed so far, by the user or by you (change nothing)"
REFERS_BACK = re.compile(r"\b(it|them|those|these|that one|this one|the same)\b", re.IGNORECASE)
LEAD_IN = re.compile(r"^\s*(?:(?:and|also|oh|ok|okay|so|plus|then|now)\b[\s,.!]*)+", re.IGNORECASE)
PLAN_LIMIT = 20  # commands one message may run (a longer plan is refused, and Chip says so)


@dataclass(frozen=True)
class Command:
    """A decoded command: a full operation name and its arguments."""

    operation: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a message asks for: commands to run in order, or talk (`talk`: chat, help or log), or a question back
    (`ask`, with what a one-click Yes would do, `offer`, and the choices a reply may pick, `choices`)."""

    commands: tuple[Command, ...] = ()
    talk: str = CHAT
    ask: str = ""
    offer: tuple[Command, ...] = ()
    choices: tuple[tuple[str, Command], ...] = ()

    @property
    def is_none(self) -> bool:
        return not self.commands and not self.ask


def act_on(runtime, location: Location = NOWHERE):
    """The app Chip's commands act on: the tab's app if Chip can drive it (None if it cannot: then Chip only
    talks); with no app (the chat page, the CLI), the first app in the menu that Chip can drive."""
    app = runtime.plugins.get(location.app)
    if app is not None:
        return app if app.drivable else None
    return next((p for p in sorted(runtime.plugins.values(), key=lambda p: p.order) if p.drivable), None)


def operations(runtime, app) -> dict[str, Operation]:
    """The app's operations by the verb a person would use ("add", "done", ...), and those offered everywhere
    (`anywhere`, e.g. undo) whose verb the app does not use itself."""
    offered = [op for op in runtime.registry.operations.values() if not op.internal]
    own = {op.verb: op for op in offered if op.plugin is app}
    return own | {op.verb: op for op in offered if op.anywhere and op.verb not in own}


def operation_guide(ops: dict[str, Operation]) -> str:
    lines = [f"- {verb}: {op.description}" for verb, op in ops.items()]
    return "\n".join(lines + [f"- {CHAT}: {WHEN_NONE}.", f"- {HELP}: {WHEN_HELP}.", f"- {LOG}: {WHEN_LOG}."])


def instructions(app, ops: dict[str, Operation]) -> dict:
    return {"role": "system", "content": f"You turn the user's message into commands for the {app.display_name} "
            f'app, as JSON: {{"commands": [...]}}, each {{"command": ...}} plus what it needs, and only what the '
            f"message gives; one command unless the message asks for several things.\nCommands:\n{operation_guide(ops)}"}


def request_text(request: str, state: str, recent: str = "", hint: str = "") -> str:
    """The decoder's last message: the state first (cached while it is unchanged), then the message, with the
    rows it mentions (`hint`, if any) under it, and the last exchange when it seems to refer back to it."""
    earlier = f"Just before:\n{recent}\n" if recent and REFERS_BACK.search(request) else ""
    return f"{state}\n{earlier}Message: {request}" + (f"\n(It mentions: {hint})" if hint else "")


def few_shot(shots: list[tuple[str, str | list, dict]], state: str) -> list[dict]:
    """Example exchanges; an example's verb may be a list of (verb, answer) pairs: a plan of several commands."""
    messages = []
    for request, verb, answer in shots:
        steps = verb if isinstance(verb, list) else [(verb, answer)]
        plan = {"commands": [{"command": v, **a} for v, a in steps]}
        messages += [{"role": "user", "content": request_text(request, state)},
                     {"role": "assistant", "content": json.dumps(plan, ensure_ascii=False)}]
    return messages


def command_schema(alternatives: dict[str, dict]) -> dict:
    """One schema for every choice: per verb, {"command": verb} and that verb's own properties."""
    return {"anyOf": [{"type": "object", "properties": {"command": {"const": verb}, **choice["properties"]},
                       "required": ["command", *choice["required"]]} for verb, choice in alternatives.items()]}


def plan_schema(alternatives: dict[str, dict]) -> dict:
    """{"commands": [one to PLAN_LIMIT + 1 commands]} (one more than a plan may have, so that Chip can say so)."""
    return {"type": "object", "properties": {"commands": {
        "type": "array", "items": command_schema(alternatives), "minItems": 1, "maxItems": PLAN_LIMIT + 1}},
        "required": ["commands"]}


async def decode(backend: Backend, messages: list[dict], alternatives: dict[str, dict],
                 on_progress=None) -> list[tuple[str, dict]]:
    """[(verb, the rest of the answer)] decoded under `plan_schema(alternatives)`, without repeats."""
    text = await backend.complete_json(messages, plan_schema(alternatives), max_tokens=40 + 24 * (PLAN_LIMIT + 1),
                                       on_progress=on_progress)
    try:
        answer = json.loads(text)
        items = answer["commands"] if "commands" in answer else [answer]  # a scripted model may give one command
        steps = [(item.pop("command"), item) for item in items]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackendError(f"The model's answer did not fit the command schema: {text[:100]!r}") from None
    for verb, _ in steps:
        if verb not in alternatives:
            raise BackendError(f"The model chose {verb!r}, which is not one of {list(alternatives)}")
    unique = []
    for step in steps:
        if step not in unique:
            unique.append(step)
    return unique


def decoder_prefix(app, ops: dict[str, Operation]) -> list[dict]:
    """The decoder's prompt before the message: instructions, operations, examples (the same for every state)."""
    elsewhere = {op.plugin for op in ops.values() if op.plugin is not app}  # the apps of `anywhere` operations
    shots = [s for s in [*app.chip_examples(), *(e for p in elsewhere for e in p.chip_examples())]
             if all(verb in ops or verb in TALK for verb in ([v for v, _ in s[1]] if isinstance(s[1], list) else [s[1]]))]
    return [instructions(app, ops), *few_shot(shots, app.chip_example_state())]


def decoder_lead(runtime, location: Location = NOWHERE) -> list[dict]:
    """What the decoder's next prompt will start with for a tab at `location`: its prefix and the state
    (read ahead while the user types, so a message costs only itself)."""
    app = act_on(runtime, location)
    if app is None:
        return []
    return [*decoder_prefix(app, operations(runtime, app)), {"role": "user", "content": f"{app.chip_state(location)}\n"}]


async def decode_plan(runtime, backend: Backend, request: str, *, recent: str = "", must_act: bool = False,
                      location: Location = NOWHERE, on_progress=None) -> Plan:
    """Decode what a message from a tab at `location` asks for: commands, talk, or a question back;
    BackendError if the model fails."""
    app = act_on(runtime, location)
    if app is None:
        return Plan()
    request = LEAD_IN.sub("", request) or request  # "and remind me to ...": the rest is the request
    ops = operations(runtime, app)
    sensible = app.chip_verbs(location)
    prompt = [*decoder_prefix(app, ops), {"role": "user", "content": request_text(
        request, app.chip_state(location), recent, app.chip_mentions(request, location))}]
    alternatives = {verb: op.plugin.chip_choices(op, request, location) for verb, op in ops.items()
                    if sensible is None or verb in sensible or op.plugin is not app}
    alternatives |= {} if must_act else {verb: {"properties": {}, "required": []} for verb in TALK}
    steps = await decode(backend, prompt, alternatives, on_progress)
    acts = [(verb, answer) for verb, answer in steps if verb not in TALK]
    if not acts:
        return Plan(talk=steps[0][0])
    commands = []
    for verb, answer in acts:
        op = ops[verb]
        try:
            args = op.plugin.chip_args(op, answer, request, location)
        except Ask as question:
            return Plan(ask=question.question, offer=tuple(Command(*o) for o in question.offer),
                        choices=tuple((label, Command(op.name, a)) for label, a in question.choices))
        except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
            raise BackendError(f"The model's arguments did not fit the schema: {answer!r:.100}") from None
        commands += [Command(op.name, a) for a in (args if isinstance(args, list) else [args])]
    commands = list({json.dumps([c.operation, c.args], sort_keys=True): c for c in commands}.values())
    if len(commands) > PLAN_LIMIT:
        return Plan(ask=f"That would be {len(commands)} changes; I make at most {PLAN_LIMIT} at once, so I did "
                        "nothing. Ask for fewer at a time.")
    if not commands:
        return Plan(ask="There is nothing to change: every row it names is already that way.")
    return Plan(tuple(commands))


def validate(runtime, command: Command) -> dict:
    """The command's arguments checked by the registry (OperationError says what is wrong)."""
    return runtime.registry.get(command.operation).validate(command.args)

