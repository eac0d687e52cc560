"""Plugins declare their tables: created at the first start, given new columns later, migrated once, recorded."""

from __future__ import annotations

import textwrap

from tests.fakes import ScriptedBackend
from theseus.db import Database
from theseus.runtime import Runtime

BOOKS = '''
from theseus.actions import Result, Text, operation
from theseus.apps.crud import BaseApp

class Books(BaseApp):
    name = "books"
    display_name = "Books"
    table = "books"
    item = "book"
    columns = COLUMNS
    migrations = MIGRATIONS

    @operation(target="book", verb="add")
    def insert(self, ctx, name: str, author: str | None = None) -> Result:
        """Add a book."""
        return Result("Added", self.insert_item(ctx, name=name, author=author))
'''


def write_books(config, columns: str, migrations: str = "[]") -> None:
    source = BOOKS.replace("COLUMNS", columns).replace("MIGRATIONS", migrations)
    if "author" not in columns:
        source = source.replace(", author: str | None = None", "").replace(", author=author", "")
    write_plugin(config, "books.py", source)


def write_plugin(config, filename: str, source: str) -> None:
    config.user_apps_dir.mkdir(parents=True, exist_ok=True)
    (config.user_apps_dir / filename).write_text(textwrap.dedent(source))


def start(config) -> Runtime:
    return Runtime(config, ScriptedBackend())


def columns_of(runtime, table: str) -> list[str]:
    return [r["name"] for r in runtime.db.query(f"SELECT name FROM pragma_table_info('{table}')")]


def recorded(runtime, plugin: str) -> list[str]:
    return [r["name"] for r in runtime.db.query("SELECT name FROM plugin_migrations WHERE plugin = ? ORDER BY id",
                                                (plugin,))]


def test_a_declared_table_is_created_once_and_recorded(config):
    write_books(config, '{"name": str}')
    runtime = start(config)
    assert columns_of(runtime, "books") == ["id", "name", "priority"]
    assert recorded(runtime, "books") == ["create table books"]
    assert recorded(runtime, "tasks") == ["create table tasks"] and recorded(runtime, "profiles") == ["create table profiles"]
    runtime.close()
    again = start(config)
    assert recorded(again, "books") == ["create table books"]  # nothing new to do
    again.close()


def test_a_column_added_to_the_declaration_is_added_to_the_existing_table(config):
    write_books(config, '{"name": str}')
    runtime = start(config)
    runtime.registry.execute("books.insert", {"name": "Dune"})
    runtime.close()
    write_books(config, '{"name": str, "author": str}')
    runtime = start(config)
    assert runtime.broken == [] and "author" in columns_of(runtime, "books")
    assert recorded(runtime, "books") == ["create table books", "add column books.author"]
    runtime.registry.execute("books.insert", {"name": "Emma", "author": "Austen"})
    assert runtime.db.query("SELECT name, author FROM books ORDER BY id") == [
        {"name": "Dune", "author": None}, {"name": "Emma", "author": "Austen"}]
    runtime.close()


def test_a_plugins_migrations_run_once_each_in_order(config):
    write_books(config, '{"name": str}', '[("seed", "INSERT INTO books (name) VALUES (\'Ulysses\')"), '
                                         '("shout", "UPDATE books SET name = upper(name)")]')
    start(config).close()
    runtime = start(config)
    assert runtime.db.query("SELECT name FROM books") == [{"name": "ULYSSES"}]
    assert recorded(runtime, "books") == ["create table books", "seed", "shout"]
    runtime.close()


def test_a_failing_migration_breaks_only_its_plugin_and_changes_nothing(config):
    write_books(config, '{"name": str}', '[("oops", "UPDATE no_such_table SET x = 1")]')
    runtime = start(config)
    assert "books" not in runtime.plugins and [b.name for b in runtime.broken] == ["books"]
    assert "no_such_table" in runtime.broken[0].error
    assert "tasks" in runtime.plugins and recorded(runtime, "books") == []  # all or nothing
    assert columns_of(runtime, "books") == []
    runtime.close()


def test_a_table_of_another_plugin_or_of_the_core_or_an_odd_column_type_is_refused_clearly(config):
    write_plugin(config, "thief.py", '''
        from theseus.apps.crud import BaseApp
        class Thief(BaseApp):
            name = "thief"
            table = "tasks"
            item = "loot"
        ''')
    write_plugin(config, "odd.py", '''
        from theseus.apps.crud import BaseApp
        class Odd(BaseApp):
            name = "odd"
            table = "odd"
            columns = {"name": str, "when": list}
        ''')
    write_plugin(config, "auditor.py", '''
        from theseus.apps.crud import BaseApp
        class Auditor(BaseApp):
            name = "auditor"
            table = "events"
            order = 1
        ''')
    runtime = start(config)
    errors = {b.name: b.error for b in runtime.broken}
    assert "belongs to the tasks app" in errors["thief"]
    assert "belongs to the core" in errors["auditor"]
    assert "name" not in columns_of(runtime, "events")
    assert "unsupported column when" in errors["odd"]
    assert {"tasks", "profiles"} <= set(runtime.plugins)
    runtime.close()


OLD_SCHEMA = """
    CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE tasks (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)), priority INTEGER NOT NULL DEFAULT 0,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE);
    CREATE INDEX tasks_by_profile ON tasks (profile_id, priority, id);
    INSERT INTO profiles (name) VALUES ('Home');
    INSERT INTO tasks (name, profile_id) VALUES ('kept', 1);
"""


def test_a_database_whose_core_made_tasks_and_profiles_keeps_them_as_the_plugins_declare(config):
    db = Database(config.db_path)  # as the core made them before plugins declared their own tables
    with db.transaction():
        db.conn.execute(OLD_SCHEMA)
    db.close()
    runtime = start(config)
    assert recorded(runtime, "tasks") == [] and recorded(runtime, "profiles") == []
    assert runtime.db.query("SELECT name FROM tasks") == [{"name": "kept"}]
    runtime.registry.execute("tasks.insert", {"name": "new"})
    assert [r["name"] for r in runtime.plugins["tasks"].rows()] == ["kept", "new"]
    runtime.close()


def test_deleting_a_profile_deletes_every_table_s_rows_of_it_and_one_undo_brings_them_back(config):
    write_plugin(config, "books.py", '''
        from theseus.actions import Result, operation
        from theseus.apps.crud import BaseApp
        class Books(BaseApp):
            name = "books"
            table = "books"
            item = "book"
            per_profile = True
            @operation(target="book", verb="add")
            def insert(self, ctx, name: str) -> Result:
                """Add a book."""
                return Result("Added", self.insert_item(ctx, name=name))
        ''')
    runtime = start(config)
    execute = runtime.registry.execute
    work = execute("profiles.insert", {"name": "Work"}).value["id"]
    execute("profiles.switch", {"id": work})
    execute("books.insert", {"name": "Dune"})
    execute("tasks.insert", {"name": "read it"})
    execute("hello.start", {})
    deleted = execute("profiles.delete", {"id": work})
    assert deleted.message == "Deleted profile 'Work' (#2) and its 1 workflow run, 1 task, 1 book"
    counts = [runtime.db.value(f"SELECT COUNT(*) FROM {t} WHERE profile_id = ?", (work,))
              for t in ("books", "tasks", "pipelines")]
    assert counts == [0, 0, 0]
    execute("history.undo", {"event_id": deleted.event_id})
    counts = [runtime.db.value(f"SELECT COUNT(*) FROM {t} WHERE profile_id = ?", (work,))
              for t in ("books", "tasks", "pipelines")]
    assert counts == [1, 1, 1]
    runtime.close()
