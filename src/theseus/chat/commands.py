"""Turning a chat message into one command, decoded in one pass under a JSON schema generated from the registry.

The chat core names no app: the app open in the tab the message came from
says what Chip reads and may do (the `chip_*` hooks of the plugin contract,
plugins.py; `BaseApp` answers them from its table, apps/guide.py, and
`Workflow` from its runs, workflows/chip.py). The decoder has its own model
context (llm/embedded.py), laid out so that what stays the same from message
to message comes first and stays cached: the instructions, the app's
operations and its examples (on the app's own sample rows, so none depends on
the real ones); then the last user message, which starts with the current
state (cached while it is unchanged), then the message. One schema holds
every choice at once: an `anyOf` of one object per verb, each with what that
operation takes (optional arguments stay optional), narrowed to the current
state. Nothing is scraped out of free prose.
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
CHAT = "chat"  # "none" is offered to the model as two words it reads well: just talk,
HELP = "help"  # or a question about how the app works
TALK = (CHAT, HELP)
WHEN_NONE = ("the message asks no change: greetings, thanks, small talk, questions about the data or about "
             "anything else, or things the app cannot do")
WHEN_HELP = "a question about how to use the app or what it is (explain; change nothing)"
REFERS_BACK = re.compile(r"\b(it|them|those|these|that one|this one|the same)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """A decoded command: a full operation name (or "none") and its arguments; or a question back (`ask`)."""

    operation: str
    args: dict = field(default_factory=dict)
    ask: str = ""

    @property
    def is_none(self) -> bool:
        return self.operation == NONE


def act_on(runtime, location: Location = NOWHERE):
    """The app Chip's commands act on: the tab's app if Chip can drive it (None if it cannot: then Chip only
    talks); with no app (the chat page, the CLI), the first app in the menu that Chip can drive."""
    app = runtime.plugins.get(location.app)
    if app is not None:
        return app if app.drivable else None
    return next((p for p in sorted(runtime.plugins.values(), key=lambda p: p.order) if p.drivable), None)


def operations(runtime, app) -> dict[str, Operation]:
    """The app's operations by the verb a person would use ("add", "done", ...)."""
    return {op.verb: op for op in runtime.registry.operations.values() if op.plugin is app and not op.internal}


def operation_guide(ops: dict[str, Operation]) -> str:
    lines = [f"- {verb}: {op.description}" for verb, op in ops.items()]
    return "\n".join(lines + [f"- {CHAT}: {WHEN_NONE}.", f"- {HELP}: {WHEN_HELP}."])


def instructions(app, ops: dict[str, Operation]) -> dict:
    return {"role": "system", "content": f"You turn the user's message into one command for the {app.display_name} "
            f'app, as JSON: {{"command": ...}} plus what that command needs, and only what the message gives.'
            f"\nCommands:\n{operation_guide(ops)}"}


def request_text(request: str, state: str, recent: str = "", hint: str = "") -> str:
    """The decoder's last message: the state first (cached while it is unchanged), then the message, with the
    rows it mentions (`hint`, if any) under it, and the last exchange when it seems to refer back to it."""
    earlier = f"Just before:\n{recent}\n" if recent and REFERS_BACK.search(request) else ""
    return f"{state}\n{earlier}Message: {request}" + (f"\n(It mentions: {hint})" if hint else "")


def few_shot(shots: list[tuple[str, str, dict]], state: str) -> list[dict]:
    messages = []
    for request, verb, answer in shots:
        messages += [{"role": "user", "content": request_text(request, state)},
                     {"role": "assistant", "content": json.dumps({"command": verb, **answer}, ensure_ascii=False)}]
    return messages


def command_schema(alternatives: dict[str, dict]) -> dict:
    """One schema for every choice: per verb, {"command": verb} and that verb's own properties."""
    return {"anyOf": [{"type": "object", "properties": {"command": {"const": verb}, **choice["properties"]},
                       "required": ["command", *choice["required"]]} for verb, choice in alternatives.items()]}


async def decode(backend: Backend, messages: list[dict], alternatives: dict[str, dict],
                 on_progress=None) -> tuple[str, dict]:
    """(verb, the rest of the answer) decoded under `command_schema(alternatives)`."""
    text = await backend.complete_json(messages, command_schema(alternatives), max_tokens=160,
                                       on_progress=on_progress)
    try:
        answer = json.loads(text)
        verb = answer.pop("command")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackendError(f"The model's answer did not fit the command schema: {text[:100]!r}") from None
    if verb not in alternatives:
        raise BackendError(f"The model chose {verb!r}, which is not one of {list(alternatives)}")
    return verb, answer


def decoder_prefix(app, ops: dict[str, Operation]) -> list[dict]:
    """The decoder's prompt before the message: instructions, operations, examples (the same for every state)."""
    shots = [s for s in app.chip_examples() if s[1] in ops or s[1] in TALK]
    return [instructions(app, ops), *few_shot(shots, app.chip_example_state())]


def decoder_lead(runtime, location: Location = NOWHERE) -> list[dict]:
    """What the decoder's next prompt will start with for a tab at `location`: its prefix and the state
    (read ahead while the user types, so a message costs only itself)."""
    app = act_on(runtime, location)
    if app is None:
        return []
    return [*decoder_prefix(app, operations(runtime, app)), {"role": "user", "content": f"{app.chip_state(location)}\n"}]


async def decode_command(runtime, backend: Backend, request: str, *, recent: str = "",
                         must_act: bool = False, location: Location = NOWHERE, on_progress=None) -> Command:
    """Decode the command a message from a tab at `location` asks for (possibly "none", or a question back);
    BackendError if the model fails."""
    app = act_on(runtime, location)
    if app is None:
        return Command(NONE)
    ops = operations(runtime, app)
    sensible = app.chip_verbs(location)
    prompt = [*decoder_prefix(app, ops), {"role": "user", "content": request_text(
        request, app.chip_state(location), recent, app.chip_mentions(request, location))}]
    alternatives = {verb: app.chip_choices(op, request, location) for verb, op in ops.items()
                    if sensible is None or verb in sensible}
    alternatives |= {} if must_act else {verb: {"properties": {}, "required": []} for verb in TALK}
    verb, answer = await decode(backend, prompt, alternatives, on_progress)
    if verb in TALK:
        return Command(NONE)
    try:
        return Command(ops[verb].name, app.chip_args(ops[verb], answer, request, location))
    except Ask as question:
        return Command(ops[verb].name, ask=question.question)
    except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
        raise BackendError(f"The model's arguments did not fit the schema: {answer!r:.100}") from None


def validate(runtime, command: Command) -> dict:
    """The command's arguments checked by the registry (OperationError says what is wrong)."""
    if command.is_none:
        return {}
    return runtime.registry.get(command.operation).validate(command.args)

