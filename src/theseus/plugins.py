"""Plugins: the base class every app derives from, and their discovery.

Built-in apps (Tasks, Profiles) are plugins exactly like a user's: a module in
`theseus.apps` or a `.py` file in `$THESEUS_DATA/apps/` that defines a
subclass of `Plugin` with a `name`. A file that fails to import, or a class
that fails to start, becomes a `BrokenPlugin` shown in the UI with its error;
it never takes the server down.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from loguru import logger

from .tables import Table


class Ask(Exception):
    """Chip needs something the message did not give (e.g. a required field, or which row it means): `question`
    goes back to the user, and nothing is done. `offer`: what a one-click Yes under the question would do, as
    [(operation name, args)] (e.g. add the row that does not exist yet); `choices`: what the question asks
    between, as [(label, args)], for the same operation: a reply that picks one ("the second one", "#7", words
    of its label) runs the operation with its args."""

    def __init__(self, question: str, *, offer: list[tuple[str, dict]] = (),
                 choices: list[tuple[str, dict]] = ()):
        super().__init__(question)
        self.question, self.offer, self.choices = question, list(offer), list(choices)


class Plugin:
    """An app in the Apps menu. Subclasses set `name` and `display_name` and render a view.

    The hooks below have defaults; a plugin overrides what it needs. Those under "Chip" say how Chip sees
    and drives the app: `BaseApp` (apps/crud.py) answers them from its table, `Workflow` from its runs.
    """

    name: str = ""
    display_name: str = ""
    description: str = ""
    order: int = 100  # position in the Apps menu
    item: str = "item"  # what one thing in the app is called: "task", "contact", "step"
    tables: list[Table] = []  # the plugin's own tables: created, and given new columns, when it loads
    migrations: list[tuple[str, str]] = []  # (name, SQL): run once each, in order, after its tables exist
    drivable: bool = False  # Chip turns messages into this app's operations (the chip_* hooks below)

    def __init__(self, runtime):
        self.runtime = runtime

    @property
    def db(self):
        return self.runtime.db

    @property
    def store(self):
        return self.runtime.db.store

    def routes(self, app) -> None:
        """Add the plugin's own routes (beyond the operation routes) to the FastHTML app."""

    def render(self, request):
        """The app's main view (FT)."""
        raise NotImplementedError

    def fragments(self, outcome) -> list:
        """HTML fragments (with hx-swap-oob) that bring every tab up to date after an operation."""
        return []

    def summary(self) -> str:
        """One line about the app's current state, for Chip's context."""
        return ""

    def snapshot(self, limit: int) -> dict:
        """The app's current state as plain data (JSON), at most `limit` rows of it: outside agents read it
        (the MCP resource theseus://apps/NAME)."""
        return {"summary": self.summary()}

    def target_row(self, args: dict) -> tuple[str, dict] | None:
        """The row an operation with these arguments acts on, as (table, row); None if it acts on no row.
        Raises NotFound if the row it names does not exist (a confirm card is bound to this row)."""
        return None

    def prompt_notes(self, location) -> str:
        """Extra system-prompt text while this app is open in the tab a message came from (`location`: that
        tab's app and run; e.g. a workflow step's domain notes)."""
        return ""

    # ---- Chip: what it reads, and how a message becomes one of the app's operations ----
    def data_note(self, location, request: str = "") -> str:
        """The app's data as Chip reads it while the app is open (values quoted as data, not instructions);
        with a `request`, the data that message is about."""
        return ""

    def chip_state(self, location) -> str:
        """What the command decoder reads before a message: the state the message acts on."""
        return self.data_note(location)

    def chip_mentions(self, request: str, location) -> str:
        """The things the message names, when it names some (e.g. row labels), shown under it to the decoder."""
        return ""

    def chip_verbs(self, location) -> set[str] | None:
        """The verbs (of `@operation(verb=...)`) that make sense right now; None: all of them."""
        return None

    def chip_choices(self, op, request: str, location) -> dict:
        """What the model fills for `op`, as a JSON schema object ({"properties": ..., "required": [...]})."""
        return {"properties": {}, "required": []}

    def chip_args(self, op, answer: dict, request: str, location) -> dict | list[dict]:
        """The operation's arguments from the model's answer (a list: the operation once for each, e.g. for
        "every task"); raise Ask when the message lacks something or names no row clearly."""
        return answer

    def slash_args(self, op, rest: str, location) -> dict:
        """The arguments of `/VERB REST` for `op` (no model): a row's id first (#7 or 7), then values separated
        by commas, each to the first free text argument whose pattern it matches, else the first without one."""
        args, names = {}, {p.name for p in op.params}
        if "ids" in names:
            return {"ids": re.findall(r"[0-9]{1,19}", rest)}
        if "id" in names and rest.strip():
            first, _, rest = rest.strip().partition(" ")
            args["id"] = first.rstrip(",").lstrip("#")  # not a number: the registry says so
        texts = [p for p in op.params if p.kind == "str"]
        for part in [part.strip() for part in (rest.split(",") if len(texts) > 1 else [rest]) if part.strip()]:
            free = [p for p in texts if p.name not in args]
            matched = [p for p in free if p.text and p.text.pattern and re.fullmatch(p.text.pattern, part)]
            fits = matched + [p for p in free if not (p.text and p.text.pattern)]
            if fits:
                args[fits[0].name] = part
        return args

    def slash_usage(self, op) -> str:
        """'/add NAME [EMAIL]': the verb, then what `slash_args` reads (optional arguments in brackets)."""
        return " ".join([f"/{op.verb}", *(p.name.upper() if p.required else f"[{p.name.upper()}]"
                                          for p in op.params)])

    def chip_examples(self) -> list[tuple[str, str, dict]]:
        """(message, verb, answer) examples for the decoder's prompt, on `chip_example_state()`."""
        return []

    def chip_example_state(self) -> str:
        """The state the examples speak of (the same for every real state, so the model's cache of it lasts)."""
        return ""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, with the reason."""

    name: str
    source: str
    error: str


def plugin_classes(module: ModuleType) -> list[type[Plugin]]:
    """The concrete Plugin subclasses a module itself defines."""
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Plugin) and obj.__module__ == module.__name__ and obj.name]


def builtin_modules(package: str = "theseus.apps") -> list[tuple[str, str]]:
    """(module name, source) of the built-in plugin modules."""
    root = importlib.import_module(package)
    return [(f"{package}.{info.name}", f"{package}.{info.name}")
            for info in pkgutil.iter_modules(root.__path__) if not info.name.startswith("_")]


def user_modules(folder: Path, prefix: str = "theseus_user_apps") -> list[tuple[str, Path]]:
    """(module name, path) of the user's plugin files in a folder."""
    if not folder.is_dir():
        return []
    return [(f"{prefix}.{path.stem}", path) for path in sorted(folder.glob("*.py"))
            if not path.name.startswith("_")]


def import_file(module_name: str, path: Path) -> ModuleType:
    """Import a plugin file by path under a unique module name (re-imported fresh every time)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit):
        sys.modules.pop(module_name, None)
        raise
    return module


def load_module(module_name: str, source) -> ModuleType:
    if isinstance(source, Path):
        return import_file(module_name, source)
    return importlib.import_module(module_name)


def describe(error: BaseException) -> str:
    """A one-line description of an import error: type, message and where it happened."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, SyntaxError):
        where = f" ({Path(error.filename or '?').name}:{error.lineno})"
    return f"{type(error).__name__}: {error}{where}"


def discover(sources: list[tuple[str, object]]) -> tuple[list[type[Plugin]], list[BrokenPlugin]]:
    """Import each source; return the Plugin classes found and the sources that broke."""
    classes, broken = [], []
    for module_name, source in sources:
        try:
            module = load_module(module_name, source)
        except (Exception, SystemExit) as error:  # a plugin's sys.exit() must not stop the server
            logger.opt(exception=error).error(f"plugin {source} failed to import")
            broken.append(BrokenPlugin(module_name.rsplit(".", 1)[-1], str(source), describe(error)))
            continue
        classes.extend(plugin_classes(module))
    return classes, broken
