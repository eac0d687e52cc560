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
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from loguru import logger


class Plugin:
    """An app in the Apps menu. Subclasses set `name` and `display_name` and render a view."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    order: int = 100  # position in the Apps menu

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

    def target_row(self, args: dict) -> tuple[str, dict] | None:
        """The row an operation with these arguments acts on, as (table, row); None if it acts on no row.
        Raises NotFound if the row it names does not exist (a confirm card is bound to this row)."""
        return None

    def prompt_notes(self, location) -> str:
        """Extra system-prompt text while this app is open in the tab a message came from (`location`: that
        tab's app and run; e.g. a workflow step's domain notes)."""
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
