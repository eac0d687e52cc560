"""The per-process runtime: config, database, broadcaster, registry and loaded plugins.

It hangs off the web app (`app.state.runtime`); nothing lasting lives in module globals.
"""

from __future__ import annotations

from loguru import logger

from .actions import Registry
from .changes.service import CodeChanges
from .chat.service import Chat
from .config import Config
from .db import CORE_TABLES, Database
from .events import Broadcaster, append_event
from .knowledge import Knowledge
from .llm.spec import make_backend
from .plugins import BrokenPlugin, Plugin, builtin_modules, describe, discover, user_modules
from .tables import ensure_schema, schema_order
from .workflows.jobs import Jobs


class Runtime:
    """Everything one running Theseus shares between requests, the LLM and the CLI."""

    def __init__(self, config: Config, backend=None):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(config.db_path)
        self.broadcaster = Broadcaster()
        self.registry = Registry(self.db, self.broadcaster)
        self.knowledge = Knowledge(self.db, config)  # built and watched only when started (see app.py)
        self.plugins: dict[str, Plugin] = {}
        self.broken: list[BrokenPlugin] = []
        self.jobs = Jobs(self)  # background jobs of workflow steps
        self.load_plugins()
        self.ensure_profile()
        self.owns_backend = backend is None  # a backend handed in (tests, benchmarks) is its giver's to close
        self.backend = backend or make_backend(config)
        self.chat = Chat(self, self.backend)
        self.knowledge.index.busy = lambda: self.chat.streaming  # background indexing yields the cores to a turn
        self.chat.conversations.current()  # the first conversation exists before any page view: a GET writes nothing
        self.dev_status = None  # the dev loop's StatusFile when the server runs under `serve --watch`
        self.restart = None  # set by `serve` (not under the dev loop): restart the server on the code on disk
        self.changes = CodeChanges(self)

    def load_plugins(self) -> None:
        """Discover built-in and user plugins; register their operations; keep the broken apart."""
        sources = (builtin_modules("theseus.apps") + builtin_modules("theseus.workflows")
                   + user_modules(self.config.user_apps_dir)
                   + user_modules(self.config.user_workflows_dir, prefix="theseus_user_workflows"))
        classes, self.broken = discover(sources)
        plugins: list[Plugin] = []
        for cls in sorted(classes, key=lambda c: (c.order, c.name)):
            self.attempt(cls, lambda: plugins.append(cls(self)))
        for plugin in self.with_tables(plugins):
            self.attempt(type(plugin), lambda: self.add_plugin(plugin))
        logger.info(f"plugins: {', '.join(self.plugins)}"
                    + (f"; broken: {', '.join(b.name for b in self.broken)}" if self.broken else ""))

    def attempt(self, cls: type[Plugin], step) -> bool:
        """Run step() for one plugin (making it, its tables, registering it); a failure makes it a broken plugin."""
        try:
            step()
            return True
        except Exception as error:
            logger.opt(exception=error).error(f"plugin {cls.name} failed to start")
            module = cls.__module__
            self.broken.append(BrokenPlugin(module.rsplit(".", 1)[-1], module, describe(error)))
            return False

    def with_tables(self, plugins: list[Plugin]) -> list[Plugin]:
        """The plugins whose tables and migrations are in place (made now if needed; a plugin after those whose
        tables it references). A plugin whose name or table is taken (built-ins claim theirs first, the core's
        are never a plugin's), or whose declaration or migration fails, is broken and changes nothing."""
        declared, names, owners = {}, set(), {table: "the core" for table in CORE_TABLES}
        for plugin in sorted(plugins, key=lambda p: not type(p).__module__.startswith("theseus.")):
            self.attempt(type(plugin), lambda: declared.__setitem__(plugin, self.claim(plugin, names, owners)))
        ready = []
        for plugin in schema_order([p for p in plugins if p in declared], lambda p: declared[p]):
            if self.attempt(type(plugin), lambda: ensure_schema(self.db, plugin.name, declared[plugin],
                                                                  plugin.migrations)):
                ready.append(plugin)
        return [p for p in plugins if p in ready]

    @staticmethod
    def claim(plugin: Plugin, names: set[str], owners: dict[str, str]) -> list:
        """The plugin's declared tables, claimed for it; ValueError if its name or a table is taken."""
        if plugin.name in names:
            raise ValueError(f"an app called {plugin.name!r} is already loaded")
        tables = list(plugin.tables)
        for table in tables:
            if owners.get(table.name, plugin.name) != plugin.name:
                raise ValueError(f"table {table.name!r} belongs to {owners[table.name]}; declare a table of your own")
        names.add(plugin.name)
        owners.update({table.name: f"the {plugin.name} app" for table in tables})
        return tables

    def add_plugin(self, plugin: Plugin) -> None:
        if plugin.name in self.plugins:
            raise ValueError(f"an app called {plugin.name!r} is already loaded "
                             f"({type(self.plugins[plugin.name]).__module__})")
        self.registry.register(plugin)
        self.plugins[plugin.name] = plugin

    def ensure_profile(self) -> None:
        """Make sure a profile exists and the store points at one."""
        with self.db.transaction():
            profile_ids = [r["id"] for r in self.db.query("SELECT id FROM profiles ORDER BY priority, id")]
            if not profile_ids:
                home = self.db.table("profiles").insert({"name": "Home", "priority": 0})
                append_event(self.db, actor="system", operation="profiles.insert", args={"name": "Home"},
                             summary="Created the default profile 'Home'",
                             changes=[{"table": "profiles", "before": None, "after": home}])
                profile_ids = [home["id"]]
            if self.db.store.get("profile_id") not in profile_ids:
                self.db.store["profile_id"] = profile_ids[0]

    @property
    def profile_id(self) -> int:
        return self.db.store["profile_id"]

    def end_streams(self) -> None:
        """End every tab's live-sync stream and chat socket (shutdown)."""
        self.broadcaster.close()
        self.chat.sockets.close()

    def close(self) -> None:
        self.jobs.close()
        self.end_streams()
        self.knowledge.stop()
        self.db.close()
