"""The operation registry: every operation is declared once and run through one `execute`.

A plugin marks a method with `@operation(target=..., destructive=...)`. Its
typed signature is the argument schema, its docstring the description. The
registry derives from that one declaration the HTTP route, the JSON schema the
LLM decodes against and the line that documents it in Chip's prompt.

`Registry.execute(name, args, actor)` is the only way anything changes state:
it validates the arguments, runs the operation in a transaction, appends an
event with a before/after snapshot of every changed row, renders the plugin's
HTML fragments and broadcasts them to every open tab.
"""

from __future__ import annotations

import inspect
import re
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

from fasthtml.common import to_xml
from loguru import logger

from .db import Database, storage_problem
from .events import Broadcaster, Message, append_event
from .logs import log_safe

MISSING = inspect.Parameter.empty
ID_MAX = 2**63 - 1  # SQLite's largest integer, so the largest id a request may name
WHOLE_NUMBER = re.compile(r"[-+]?[0-9]{1,19}")  # ASCII digits only: int() would also take '٣', and '²' passes isdigit()
TRUE_WORDS = {"1", "true", "on", "yes", "y"}
FALSE_WORDS = {"0", "false", "off", "no", "n", ""}


class OperationError(Exception):
    """A clear, user-facing reason an operation did not run; nothing was changed."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


class NotFound(OperationError):
    def __init__(self, message: str):
        super().__init__(message, status=404)


@dataclass(frozen=True)
class Text:
    """Constraints for a text argument: `Annotated[str, Text(min_len=1, max_len=500)]`."""

    min_len: int = 0
    max_len: int = 10_000
    strip: bool = True
    pattern: str = ""  # a regular expression the whole text must match (also a constraint on Chip's decoding)
    looks_like: str = ""  # what a matching text looks like, for the error message: "an email address"

    def __post_init__(self):
        if self.pattern:
            re.compile(self.pattern)  # a bad pattern breaks its plugin when it loads, not a request later


@dataclass(frozen=True)
class Param:
    """One typed argument of an operation."""

    name: str
    kind: str  # "int" | "str" | "bool" | "int_list"
    required: bool
    default: Any = None
    text: Text | None = None

    def coerce(self, value, op_name: str):
        """The value converted to this parameter's type, or an OperationError saying why not."""
        try:
            return COERCERS[self.kind](value, self)
        except (TypeError, ValueError) as error:
            raise OperationError(f"{op_name}: '{self.name}' {error}") from None
        except OperationError as error:
            raise OperationError(f"{op_name}: {error.message}") from None

    def schema(self) -> dict:
        if self.kind == "str":
            text = self.text or Text()
            schema = {"type": "string", "minLength": text.min_len, "maxLength": text.max_len}
            return schema | ({"pattern": f"^{text.pattern}$"} if text.pattern else {})
        if self.kind == "int_list":
            return {"type": "array", "items": {"type": "integer"}}
        return {"type": {"int": "integer", "bool": "boolean"}[self.kind]}


def parse_int(value, *, name: str, lo: int = -ID_MAX, hi: int = ID_MAX) -> int:
    """A whole number from a request (text of ASCII digits, or a JSON integer) within lo..hi.

    Every integer a request carries (a path part, a query parameter, an operation argument) goes through
    here, once; anything else is an OperationError (400) that names the parameter.
    """
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        shown = value[:40] if isinstance(value, str) else value
        raise OperationError(f"'{name}' must be a whole number, not {shown!r}")
    if not lo <= value <= hi:
        raise OperationError(f"'{name}' is out of range ({lo:,} to {hi:,})")
    return value


def _to_int(value, param: Param) -> int:
    return parse_int(value, name=param.name)


def _to_bool(value, param: Param) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"must be true or false (or 1 or 0), not {value!r}")


def _to_str(value, param: Param) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be text, not {type(value).__name__}")
    text = param.text or Text()
    if text.strip:
        value = value.strip()
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if len(value) < text.min_len:
        raise ValueError("can't be empty" if text.min_len == 1
                         else f"needs at least {text.min_len} characters")
    if len(value) > text.max_len:
        raise ValueError(f"is too long: {len(value):,} characters, the limit is {text.max_len:,}")
    if text.pattern and value and not re.fullmatch(text.pattern, value):
        raise ValueError(f"must be {text.looks_like or f'text matching {text.pattern}'}, not {value[:40]!r}")
    return value


def _to_int_list(value, param: Param) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [_to_int(v, param) for v in values]


COERCERS = {"int": _to_int, "bool": _to_bool, "str": _to_str, "int_list": _to_int_list}


def _param_from(parameter: inspect.Parameter, hint) -> Param:
    """A parameter from its annotation: int, str, bool or list[int], maybe `Annotated[..., Text(...)]`, and
    optional with `| None` (outside or inside the Annotated)."""
    text, optional = None, False
    for _ in range(2):
        if typing.get_origin(hint) is Annotated:
            hint, *extras = typing.get_args(hint)
            text = text or next((e for e in extras if isinstance(e, Text)), None)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(members) != 1:
                raise TypeError(f"operation argument {parameter.name!r}: unsupported type {hint!r}")
            optional, hint = optional or len(members) < len(typing.get_args(hint)), members[0]
    kinds = {int: "int", str: "str", bool: "bool", list[int]: "int_list"}
    if hint not in kinds:
        raise TypeError(f"operation argument {parameter.name!r}: unsupported type {hint!r}")
    required = parameter.default is MISSING and not optional
    default = None if parameter.default is MISSING else parameter.default
    return Param(parameter.name, kinds[hint], required, default, text)


@dataclass
class Change:
    """One changed row: `before` is None for an insert, `after` is None for a delete."""

    table: str
    before: dict | None
    after: dict | None

    @property
    def row_id(self) -> int:
        return (self.after or self.before)["id"]

    def to_json(self) -> dict:
        return {"table": self.table, "before": self.before, "after": self.after}


class OpContext:
    """What an operation works with: the database, the store, who acts, and a change recorder."""

    def __init__(self, db: Database, actor: str):
        self.db, self.store, self.actor = db, db.store, actor
        self.changes: list[Change] = []

    @property
    def profile_id(self) -> int | None:
        return self.store.get("profile_id")

    def get(self, table: str, row_id: int) -> dict | None:
        rows = self.db.query(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def insert(self, table: str, row: dict) -> dict:
        after = self.db.table(table).insert(row)
        self.changes.append(Change(table, None, after))
        return after

    def update(self, table: str, row_id: int, **fields) -> dict:
        before = self.get(table, row_id)
        after = self.db.table(table).update({**fields, "id": row_id})
        self.changes.append(Change(table, before, after))
        return after

    def delete(self, table: str, row_id: int) -> dict:
        before = self.get(table, row_id)
        self.db.table(table).delete(row_id)
        self.changes.append(Change(table, before, None))
        return before


@dataclass
class Result:
    """What an operation returns: a plain-words summary, a value, and client signals."""

    message: str
    value: Any = None
    signals: tuple[str, ...] = ()  # client-side events to fire in every tab, e.g. "profile"


@dataclass
class Outcome:
    """The result of one executed operation, as every caller (route, LLM, CLI) sees it."""

    operation: str
    actor: str
    args: dict
    message: str
    value: Any
    changes: list[Change]
    event_id: int
    fragments: list = field(default_factory=list)  # FT components with hx-swap-oob set
    signals: tuple[str, ...] = ()

    @property
    def html(self) -> str:
        return "".join(to_xml(f) for f in self.fragments)


def operation(*, target: str, destructive: bool = False, name: str | None = None, verb: str | None = None,
              internal: bool = False, anywhere: bool = False, read_only: bool = False):
    """Mark a plugin method as an operation; the registry picks it up when the plugin loads.

    `verb` is the plain word a person would use for it ("add", "done"); Chip's decoder offers it.
    An `internal` operation is run by the app itself (e.g. a finished background job): it has no
    HTTP route and Chip is not offered it, but it is validated, logged and broadcast like any other. An
    `anywhere` operation is offered to Chip whichever app is open (undo). A `read_only` one changes nothing
    (a listing): outside agents are told so.
    """
    def mark(func: Callable) -> Callable:
        func.__operation__ = {"target": target, "destructive": destructive, "internal": internal,
                              "name": name or func.__name__, "verb": verb or name or func.__name__,
                              "anywhere": anywhere, "read_only": read_only}
        return func
    return mark


@dataclass(frozen=True)
class Operation:
    """One registered operation: its name, typed parameters, description and handler."""

    name: str
    description: str
    target: str
    destructive: bool
    params: tuple[Param, ...]
    handler: Callable
    plugin: Any
    verb: str = ""
    internal: bool = False
    anywhere: bool = False
    read_only: bool = False

    def validate(self, args: dict) -> dict:
        """Arguments checked and converted to their types; OperationError names what is wrong."""
        if not isinstance(args, dict):
            raise OperationError(f"{self.name}: arguments must be an object, not {type(args).__name__}")
        known = {p.name for p in self.params}
        unknown = sorted(set(args) - known)
        if unknown:
            expected = ", ".join(sorted(known)) or "no arguments"
            raise OperationError(f"{self.name}: unknown argument {unknown[0]!r} (expected {expected})")
        values = {}
        for param in self.params:
            value = args.get(param.name)
            if value is None or (value == "" and param.kind != "str"):
                if param.required:
                    raise OperationError(f"{self.name} needs '{param.name}'")
                values[param.name] = param.default
            else:
                values[param.name] = param.coerce(value, self.name)
        return values

    def schema(self) -> dict:
        """The JSON schema of this operation's arguments."""
        return {"type": "object",
                "properties": {p.name: p.schema() for p in self.params},
                "required": [p.name for p in self.params if p.required],
                "additionalProperties": False}


def operations_of(plugin) -> list[Operation]:
    """The operations a plugin object declares with @operation."""
    found = []
    for attr in sorted(dir(type(plugin))):
        meta = getattr(getattr(type(plugin), attr, None), "__operation__", None)
        if meta is None:
            continue
        handler = getattr(plugin, attr)
        hints = typing.get_type_hints(handler, include_extras=True)
        parameters = list(inspect.signature(handler).parameters.values())[1:]  # skip ctx
        params = tuple(_param_from(p, hints.get(p.name, str)) for p in parameters)
        item = getattr(plugin, "item", "") or "item"
        description = (inspect.getdoc(handler) or "").strip().splitlines() or [""]
        description = description[0].replace("{items}", f"{item}s").replace("{item}", item)
        found.append(Operation(f"{plugin.name}.{meta['name']}", description, meta["target"] or item,
                               meta["destructive"], params, handler, plugin, meta["verb"], meta["internal"],
                               meta["anywhere"], meta["read_only"]))
    return found


class Registry:
    """All operations of all loaded plugins, and the one function that executes them."""

    def __init__(self, db: Database, broadcaster: Broadcaster):
        self.db, self.broadcaster = db, broadcaster
        self.operations: dict[str, Operation] = {}
        self.plugins: list = []  # every registered plugin is asked for fragments after each operation

    def register(self, plugin) -> list[Operation]:
        """Add a plugin's operations; a name already taken is an error."""
        ops = operations_of(plugin)
        taken = [op.name for op in ops if op.name in self.operations]
        if taken:
            raise ValueError(f"operation {taken[0]} is already registered")
        self.operations.update({op.name: op for op in ops})
        self.plugins.append(plugin)
        return ops

    def fragments(self, outcome: Outcome) -> list:
        """Every plugin's out-of-band swaps for this outcome."""
        return [fragment for plugin in self.plugins for fragment in plugin.fragments(outcome)]

    def get(self, name: str) -> Operation:
        if name not in self.operations:
            raise NotFound(f"There is no operation called {name!r}.")
        return self.operations[name]

    def execute(self, name: str, args: dict | None = None, actor: str = "user",
                tab: str | None = None, plan: str | None = None) -> Outcome:
        """Validate, run in a transaction, log the event (as part of `plan`, if given: one Undo reverts every
        event of a plan), render and broadcast. Raises OperationError."""
        started = time.perf_counter()
        try:
            op = self.get(name)
            values = op.validate(args or {})
            with self.db.lock:  # publish in commit order, so tabs never go back in time
                outcome = self._run(op, values, actor, plan)
                self._publish(outcome, tab)
        except OperationError as error:
            logger.info(f"op {log_safe(name, 100)} by {actor}: refused: {log_safe(error.message, 300)}")
            raise
        except Exception as error:
            if reason := storage_problem(error):
                logger.error(f"op {log_safe(name, 100)} by {actor}: not saved: {reason}")
                raise OperationError(f"Not saved: {reason}. Nothing was changed; free some space "
                                     "and try again.", 507) from error
            logger.exception(f"op {log_safe(name, 100)} by {actor}: failed")
            raise OperationError(f"{name} failed unexpectedly ({type(error).__name__}); "
                                 "nothing was changed. Details are in server.log.", 500) from error
        logger.info(f"op {name} by {actor}: {log_safe(outcome.message, 300)} "
                    f"({(time.perf_counter() - started) * 1000:.1f} ms)")
        return outcome

    def _run(self, op: Operation, values: dict, actor: str, plan: str | None = None) -> Outcome:
        """Run, log and render in one transaction: if any step fails, nothing is kept."""
        ctx = OpContext(self.db, actor)
        with self.db.transaction():
            result = op.handler(ctx, **values)
            event_id = append_event(self.db, actor=actor, operation=op.name, args=values,
                                    summary=result.message, profile_id=ctx.profile_id,
                                    changes=[c.to_json() for c in ctx.changes], plan=plan)
            outcome = Outcome(op.name, actor, values, result.message, result.value, ctx.changes,
                              event_id, signals=result.signals)
            outcome.fragments = self.fragments(outcome)
        return outcome

    def _publish(self, outcome: Outcome, tab: str | None) -> None:
        if outcome.fragments:
            self.broadcaster.publish(Message("sync", outcome.html, outcome.event_id), exclude_tab=tab)
        for signal in outcome.signals:
            self.broadcaster.publish(Message(signal), exclude_tab=tab)
