"""The tables plugins declare, created and migrated for them: `Table(name, {column: type}, pk="id")`.

In the spirit of FastHTML's MiniDataAPI, a plugin says what its table holds
(a dict of column names to Python types, plus the primary key) and Theseus
makes it so (`ensure_tables`): a missing table is created, a declared column
the table lacks is added (an existing database keeps its rows), and the
plugin's own `migrations` (name, SQL), e.g. a data fix, run once each, in
order. Every change is recorded in `plugin_migrations`, per plugin, in the
order it was made. Columns are never dropped or retyped: a column a plugin no
longer declares stays, unused, with its data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loguru import logger

from .db import Database, utc_now

TYPES = (int, str, bool, float, bytes)


@dataclass(frozen=True)
class Table:
    """A declared table: columns (name -> int | str | bool | float | bytes), primary key, and what
    MiniDataAPI's `create` also takes: NOT NULL columns, defaults, foreign keys (column, other table),
    and named indexes (name -> columns)."""

    name: str
    columns: dict[str, type]
    pk: str = "id"
    not_null: tuple[str, ...] = ()
    defaults: dict = field(default_factory=dict)
    foreign_keys: tuple[tuple[str, str], ...] = ()
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"table name {self.name!r} must be a plain identifier")
        odd = [f"{c}: {t!r}" for c, t in self.columns.items() if t not in TYPES or not c.isidentifier()]
        if odd:
            raise ValueError(f"table {self.name}: unsupported column {odd[0]} (types: int, str, bool, float, bytes)")
        if self.pk not in self.columns:
            raise ValueError(f"table {self.name}: the primary key {self.pk!r} is not one of its columns")

    @property
    def references(self) -> set[str]:
        return {other for _, other in self.foreign_keys if other != self.name}


def schema_order(owners: list, tables_of) -> list:
    """The owners (plugins) ordered so that each comes after those whose tables its tables reference."""
    made: dict[str, object] = {table.name: owner for owner in owners for table in tables_of(owner)}
    done, ordered, pending = set(), [], list(owners)
    while pending:
        def waits(owner) -> bool:
            wanted = {name for table in tables_of(owner) for name in table.references if name in made}
            return any(made[name] is not owner and made[name] not in done for name in wanted)
        ready = [owner for owner in pending if not waits(owner)] or pending[:1]  # a cycle: in the given order
        for owner in ready:
            ordered.append(owner)
            done.add(owner)
            pending.remove(owner)
    return ordered


def exists(db: Database, name: str) -> bool:
    return bool(db.value("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def record(db: Database, plugin: str, name: str) -> None:
    db.conn.execute("INSERT INTO plugin_migrations (plugin, name, applied) VALUES (?, ?, ?)",
                    (plugin, name, utc_now()))
    logger.info(f"schema: {plugin}: {name}")


def ensure_table(db: Database, plugin: str, table: Table) -> None:
    """Create the table, or add the declared columns it lacks; then its indexes."""
    handle = db.table(table.name)
    if not exists(db, table.name):
        handle.create(table.columns, pk=table.pk, not_null=set(table.not_null), defaults=table.defaults,
                      foreign_keys=[(column, other, "id") for column, other in table.foreign_keys])
        record(db, plugin, f"create table {table.name}")
    else:
        present = set(handle.columns_dict)
        for column, kind in table.columns.items():
            if column not in present:
                handle.add_column(column, kind, not_null_default=table.defaults.get(column))
                record(db, plugin, f"add column {table.name}.{column}")
    for index, columns in table.indexes.items():
        db.conn.execute(f"CREATE INDEX IF NOT EXISTS [{index}] ON [{table.name}] "
                        f"({', '.join(f'[{c}]' for c in columns)})")


def run_migrations(db: Database, plugin: str, migrations: list[tuple[str, str]]) -> None:
    """The plugin's own migrations (name, SQL) not applied yet, in order."""
    done = {r["name"] for r in db.query("SELECT name FROM plugin_migrations WHERE plugin = ?", (plugin,))}
    for name, sql in migrations:
        if name not in done:
            db.conn.execute(sql)
            record(db, plugin, name)


def ensure_schema(db: Database, plugin: str, tables: list[Table], migrations: list[tuple[str, str]]) -> None:
    """One plugin's tables and migrations, in one transaction (all or nothing)."""
    with db.transaction():
        for table in tables:
            ensure_table(db, plugin, table)
        run_migrations(db, plugin, migrations)
