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
CHAT = "chat"  # "none" is offered to the model as two words it reads well: just talk,
HELP = "help"  # or a question about how the app works;
LOG = "log"    # a question about what happened is answered from the action log (question_kind, not the model)
TALK = (CHAT, HELP, LOG)
WHEN_NONE = ("the message asks no change: greetings, thanks, small talk, questions about the data, about you, "
             "about what was done or about anything else, or things the app cannot do")
WHEN_HELP = "a question about how to use the app or what it is (explain; change nothing)"
REFERS_BACK = re.compile(r"\b(it|them|those|these|that one|this one|the same)\b", re.IGNORECASE)
LEAD_IN = re.compile(r"^\s*(?:(?:and|also|oh|ok|okay|so|plus|then|now|fine|good|great|right|alright|well|cool)"
                     r"\b[\s,.!]*)+", re.IGNORECASE)
PLAN_LIMIT = 20  # commands one message may run (a longer plan is refused, and Chip says so)
ASKS_LOG = re.compile(r"^\W*(?:(?:and|so|ok|okay|hey|chip|hi)\W+)*(?:(?:what|which\s+\w+)\s+(?:did|have|has|had)\s+"
                      r"(?:i|you|we|chip)\b|what(?:'s| has)?\s+changed\b|what\s+(?:just\s+)?happened\b)", re.IGNORECASE)
ASKS_HOW = re.compile(r"^\W*(?:(?:and|so|ok|okay|hey|chip|hi)\W+)*how\s+(?:do|can|could|should|would)\s+"
                      r"(?:i|you|we|one)\b|^\W*how\s+to\b", re.IGNORECASE)
STARTS_NEW = re.compile(r"^\W*(?:todo|to-do|to do|new \w+|remind me to|remember to|don't let me forget)\b",
                        re.IGNORECASE)  # a message that can only mean adding something
SEVERAL = re.compile(r",|;|\s[&+]\s|\b(?:and|then|also|plus|both|as well)\b", re.IGNORECASE)  # a list of things
ITEM = re.compile(r'\{"command":\s*"[^"]*"(?:[^{}"]|"(?:[^"\\]|\\.)*")*\}')  # one complete command of a plan


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
    return "\n".join(lines + [f"- {CHAT}: {WHEN_NONE}.", f"- {HELP}: {WHEN_HELP}."])


def instructions(app, ops: dict[str, Operation]) -> dict:
    return {"role": "system", "content": f"You turn the user's message into commands for the {app.display_name} "
            f'app, as JSON: {{"command": ...}} plus what that command needs, and only what the message gives; '
            f"several only when it asks for several things.\nCommands:\n{operation_guide(ops)}"}


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


def repeats(text: str) -> bool:
    """Whether a plan being generated has written one command twice (a small model may loop: stop there)."""
    items = ITEM.findall(text)
    return len(items) != len(set(items))


def plan_items(text: str) -> list[dict]:
    """The commands of a decoded plan; of one cut short at a repeat, its complete commands."""
    try:
        answer = json.loads(text)
    except ValueError:
        return [json.loads(item) for item in ITEM.findall(text)]
    return answer["commands"] if "commands" in answer else [answer]  # a scripted model may give one command


async def decode(backend: Backend, messages: list[dict], alternatives: dict[str, dict],
                 on_progress=None) -> list[tuple[str, dict]]:
    """[(verb, the rest of the answer)] decoded under `plan_schema(alternatives)`, without repeats."""
    text = await backend.complete_json(messages, plan_schema(alternatives), max_tokens=40 + 24 * (PLAN_LIMIT + 1),
                                       on_progress=on_progress, stop_when=repeats)
    try:
        steps = [(item.pop("command"), item) for item in plan_items(text)]
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
             if all(verb in ops or verb in TALK for verb in example_verbs(s))]
    return [instructions(app, ops), *few_shot(shots, app.chip_example_state())]


def example_verbs(example: tuple) -> list[str]:
    """The verbs an example shows: its one verb, or those of its plan."""
    return [verb for verb, _ in example[1]] if isinstance(example[1], list) else [example[1]]


def decoder_lead(runtime, location: Location = NOWHERE) -> list[dict]:
    """What the decoder's next prompt will start with for a tab at `location`: its prefix and the state
    (read ahead while the user types, so a message costs only itself)."""
    app = act_on(runtime, location)
    if app is None:
        return []
    state = {"role": "user", "content": f"{app.chip_state(location)}\n"}
    return [*decoder_prefix(app, operations(runtime, app)), state]


async def decode_plan(runtime, backend: Backend, request: str, *, recent: str = "", must_act: bool = False,
                      location: Location = NOWHERE, on_progress=None) -> Plan:
    """Decode what a message from a tab at `location` asks for: commands, talk, or a question back;
    BackendError if the model fails."""
    app = act_on(runtime, location)
    if app is None:
        return Plan()
    request = LEAD_IN.sub("", request) or request  # "and remind me to ...": the rest is the request
    if not must_act and (talk := question_kind(request)):
        return Plan(talk=talk)
    ops = operations(runtime, app)
    sensible = app.chip_verbs(location)
    prompt = [*decoder_prefix(app, ops), {"role": "user", "content": request_text(
        request, app.chip_state(location), recent, app.chip_mentions(request, location))}]
    alternatives = {verb: op.plugin.chip_choices(op, request, location) for verb, op in ops.items()
                    if (op.plugin is app and (sensible is None or verb in sensible))
                    or (op.plugin is not app and uses_words_of(request, op))}
    alternatives |= {} if must_act or STARTS_NEW.search(request) else \
        {verb: {"properties": {}, "required": []} for verb in (CHAT, HELP)}  # LOG: question_kind's, not the model's
    if leading := leading_verbs(request, ops):
        alternatives = {verb: choice for verb, choice in alternatives.items() if verb in leading | set(TALK)}
    steps = await decode(backend, prompt, alternatives, on_progress)
    steps = steps[:len(SEVERAL.findall(request)) + 1]  # no more commands than the message lists things
    acts = [(verb, answer) for verb, answer in steps if verb not in TALK]
    if not acts:
        return Plan(talk=steps[0][0])
    commands, question = [], None
    for verb, answer in acts:
        op = ops[verb]
        try:
            args = op.plugin.chip_args(op, answer, request, location)
        except Ask as asked:
            if len(acts) > 1 and asked.offer and asked.offer[0][0] == op.name:
                continue  # a plan's add of a name that exists already: the model copied a row, not the message
            question = question or (asked, op)
            continue
        except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
            raise BackendError(f"The model's arguments did not fit the schema: {answer!r:.100}") from None
        commands += [Command(op.name, a) for a in (args if isinstance(args, list) else [args])]
    if question and (not commands or question[0].offer or question[0].choices):  # a plan's odd extra is dropped
        return asked_back(*question, request)
    commands = list({json.dumps([c.operation, c.args], sort_keys=True): c for c in commands}.values())
    if len(commands) > PLAN_LIMIT:
        return Plan(ask=f"That would be {len(commands)} changes; I make at most {PLAN_LIMIT} at once, so I did "
                        "nothing. Ask for fewer at a time.")
    if not commands:
        return Plan(ask="There is nothing to change: every row it names is already that way.")
    return Plan(tuple(commands))


def asked_back(question: Ask, op: Operation, request: str) -> Plan:
    """A question back; talk instead when the message itself is a question, or a word or two without the
    operation's verb, that names nothing here ("how are the Lakers doing?", "lol")."""
    said = re.findall(r"[^\W_]+", request.lower())
    if question.offer and (request.rstrip().endswith("?") or len(said) <= 2 and op.verb not in said):
        return Plan()
    return Plan(ask=question.question, offer=tuple(Command(*o) for o in question.offer),
                choices=tuple((label, Command(op.name, args)) for label, args in question.choices))


def leading_verbs(request: str, ops: dict[str, Operation]) -> set[str]:
    """The verbs a message can only mean by how it starts: an operation's verb as its first word ("add ...",
    "rename ..."), or one that changes a row's values ("add Ada's phone ..."); "todo:", "new task:", "remind
    me to" for the operation that adds a row."""
    first = (re.findall(r"[^\W_]+", request.lower()) or [""])[0]
    if first in ops:
        return {first} | {verb for verb, op in ops.items() if "id" in {p.name for p in op.params}
                          and any(p.kind == "str" for p in op.params)}
    if STARTS_NEW.search(request):
        return {verb for verb, op in ops.items() if not {"id", "ids"} & {p.name for p in op.params}
                and any(p.required and p.kind == "str" for p in op.params)}
    return set()


def question_kind(request: str) -> str:
    """A question that is talk whatever the app: about what happened (LOG) or how to do something (HELP)."""
    return LOG if ASKS_LOG.search(request) else HELP if ASKS_HOW.search(request) else ""


def uses_words_of(request: str, op: Operation) -> bool:
    """Whether a message uses the words of an operation offered in every app (its verb, or a word of how its
    examples say it): "undo that", "take that back"; only then is it offered."""
    said = set(re.findall(r"[^\W_]{3,}", request.lower()))
    examples = [message for message, verb, _ in op.plugin.chip_examples() if verb == op.verb]
    offered = set(re.findall(r"[^\W_]{3,}", " ".join([op.verb, *examples]).lower())) - {"that", "this", "the"}
    return bool(said & offered)


def validate(runtime, command: Command) -> dict:
    """The command's arguments checked by the registry (OperationError says what is wrong)."""
    return runtime.registry.get(command.operation).validate(command.args)

