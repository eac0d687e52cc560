"""The one SQLite file: connection, ordered migrations, transactions and the key/value store.

One `Database` object owns the connection. Every write goes through
`transaction()`, which serialises callers from any thread with one lock, so a
read on this connection never sees another caller's half-done transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import apsw
import sqlite_vec
from fastlite import database

# Ordered migrations of the core's own tables: (version, name, SQL). Never change what an applied one does to a
# database; append. (Versions 1 and 2 once also created the Tasks and Profiles tables: a database made then keeps
# them, with the same columns as those plugins declare now and a CHECK on `done` that new ones lack.)
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial schema", """
        CREATE TABLE store (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL CHECK (actor IN ('user', 'llm', 'system')),
            operation TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '',
            changes TEXT NOT NULL DEFAULT '[]',
            profile_id INTEGER
        );
    """),
    (2, "an index for the recent action log", """
        CREATE INDEX events_by_time ON events (time);
    """),
    (3, "persistent chat: conversations and messages", """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'done' CHECK (status IN ('done', 'stopped')),
            tokens INTEGER,
            time TEXT NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
    """),
    (4, "undo: mark events that were undone", """
        ALTER TABLE events ADD COLUMN undone INTEGER NOT NULL DEFAULT 0;
    """),
    (5, "workflow runs: one pipeline row per run, its state a JSON blob", """
        CREATE TABLE pipelines (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            app TEXT NOT NULL,
            profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
            data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE INDEX pipelines_by_app ON pipelines (app, profile_id, updated);
    """),
    (6, "knowledge: indexed files, chunks with full-text and vector indexes; sources of replies", """
        CREATE TABLE knowledge_files (
            path TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('doc', 'code')),
            hash TEXT NOT NULL,
            mtime REAL NOT NULL,
            size INTEGER NOT NULL,
            chunks INTEGER NOT NULL DEFAULT 0,
            indexed TEXT NOT NULL
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('doc', 'code', 'event')),
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            hash TEXT NOT NULL,
            time TEXT NOT NULL,
            event_id INTEGER UNIQUE
        );
        CREATE INDEX chunks_by_path ON chunks (path, line_start);
        CREATE INDEX chunks_by_kind_time ON chunks (kind, time);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, content='', contentless_delete=1,
                                                   tokenize='porter unicode61');
        CREATE VIRTUAL TABLE chunk_vectors USING vec0(embedding float[384] distance_metric=cosine,
                                                      kind text, time text);
        ALTER TABLE messages ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
    """),
    (7, "Chip's transcript: everything it read in a conversation, in order, append-only", """
        CREATE TABLE transcript (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            mark TEXT,
            message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE
        );
        CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id);
        INSERT INTO transcript (conversation_id, kind, role, content, message_id)
            SELECT conversation_id, 'message', role, content, id FROM messages ORDER BY id;
        ALTER TABLE conversations ADD COLUMN context_start INTEGER NOT NULL DEFAULT 0;
    """),
    (8, "plugins' own tables: what was created or migrated for which plugin, in order", """
        CREATE TABLE plugin_migrations (
            id INTEGER PRIMARY KEY,
            plugin TEXT NOT NULL,
            name TEXT NOT NULL,
            applied TEXT NOT NULL,
            UNIQUE (plugin, name)
        );
    """),
    (9, "plans: the events of one plan share its key; action cards and proposals are stored", """
        ALTER TABLE events ADD COLUMN plan TEXT;
        CREATE INDEX events_by_plan ON events (plan) WHERE plan IS NOT NULL;
        ALTER TABLE messages ADD COLUMN card TEXT;
        CREATE TABLE proposals (
            token TEXT PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
            commands TEXT NOT NULL,
            label TEXT NOT NULL,
            lines TEXT NOT NULL,
            targets TEXT NOT NULL,
            since INTEGER NOT NULL,
            expires REAL NOT NULL,
            actor TEXT NOT NULL DEFAULT 'llm'
        );
    """),
    (10, "outside agents (MCP clients) act as actor 'agent'", """
        CREATE TABLE events_new (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL CHECK (actor IN ('user', 'llm', 'agent', 'system')),
            operation TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '',
            changes TEXT NOT NULL DEFAULT '[]',
            profile_id INTEGER,
            undone INTEGER NOT NULL DEFAULT 0,
            plan TEXT
        );
        INSERT INTO events_new (id, time, actor, operation, args, summary, changes, profile_id, undone, plan)
            SELECT id, time, actor, operation, args, summary, changes, profile_id, undone, plan FROM events;
        DROP TABLE events;
        ALTER TABLE events_new RENAME TO events;
        CREATE INDEX events_by_time ON events (time);
        CREATE INDEX events_by_plan ON events (plan) WHERE plan IS NOT NULL;
    """),
    (11, "code changes: each file before and after, and how the change went (check, restart, verify)", """
        CREATE TABLE code_changes (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            title TEXT NOT NULL,
            files TEXT NOT NULL CHECK (json_valid(files)),
            status TEXT NOT NULL CHECK (status IN ('proposed', 'restarting', 'applied', 'failed', 'reverted')),
            error TEXT NOT NULL DEFAULT '',
            plugins TEXT NOT NULL DEFAULT '[]',
            broken TEXT NOT NULL DEFAULT '[]',
            reverts INTEGER REFERENCES code_changes(id),
            event_id INTEGER,
            updated TEXT NOT NULL
        );
    """),
]


CORE_TABLES = frozenset({"store", "events", "conversations", "messages", "pipelines", "knowledge_files", "chunks",
                         "chunks_fts", "chunk_vectors", "transcript", "migrations", "plugin_migrations",
                         "proposals", "code_changes"})
# ^ the tables the migrations above make (a plugin may not declare one of these names)


def storage_problem(error: BaseException) -> str | None:
    """In plain words, why a write failed if the disk or the database file is at fault; else None."""
    if isinstance(error, apsw.FullError):
        return "the disk (or the database's size limit) is full"
    if isinstance(error, (apsw.IOError, apsw.ReadOnlyError, apsw.CantOpenError)):
        return f"the database file could not be written ({error})"
    if isinstance(error, apsw.BusyError):
        return "the database is busy (another program holds it); try again"
    return None


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, the format stored in every table."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Database:
    """Owns the SQLite file: schema, migrations, transactions, tables and `store`."""

    def __init__(self, path: Path | str, *, migrate_to: int | None = None):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = database(str(self.path))
        self.conn = self.db.conn
        self.lock = threading.RLock()
        self.conn.setbusytimeout(5000)
        self.conn.enableloadextension(True)  # sqlite-vec: the vector index of the knowledge base
        self.conn.loadextension(sqlite_vec.loadable_path())
        self.conn.enableloadextension(False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "mmap_size=268435456"):
            self.conn.execute(f"PRAGMA {pragma}")
        migrate(self, migrate_to)
        self.store = Store(self)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction (nested blocks become savepoints)."""
        with self.lock, self.conn:
            yield

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[dict]:
        """Rows of a read-only query as dicts."""
        with self.lock:
            cursor = self.conn.execute(sql, params)
            try:
                names = [d[0] for d in cursor.getdescription()]
            except Exception:  # apsw raises when the statement returns no columns
                return []
            return [dict(zip(names, row)) for row in cursor]

    def value(self, sql: str, params: tuple | list | dict = ()):
        """The first column of the first row, or None."""
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def table(self, name: str):
        """fastlite's MiniDataAPI table (insert, update, delete, [id], (where=...))."""
        return self.db.t[name]

    @property
    def schema_version(self) -> int:
        return self.value("SELECT COALESCE(MAX(version), 0) FROM migrations") or 0

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def migrate(database: Database, up_to: int | None = None) -> list[int]:
    """Apply every migration newer than the file's schema, each in its own transaction."""
    conn = database.conn
    conn.execute("CREATE TABLE IF NOT EXISTS migrations "
                 "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done or (up_to is not None and version > up_to):
            continue
        with database.lock, conn:
            conn.execute(sql)
            conn.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, utc_now()))
        applied.append(version)
    return applied


class Store(MutableMapping):
    """A tiny dict-like key/value store for server-side state (DictLikeDB); values are JSON."""

    def __init__(self, database: Database):
        self.database = database

    def __getitem__(self, key: str):
        raw = self.database.value("SELECT value FROM store WHERE key = ?", (key,))
        if raw is None:
            raise KeyError(key)
        return json.loads(raw)

    def __setitem__(self, key: str, value) -> None:
        with self.database.transaction():
            self.database.conn.execute(
                "INSERT INTO store (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)))

    def __delitem__(self, key: str) -> None:
        with self.database.transaction():
            if self.database.conn.execute("DELETE FROM store WHERE key = ? RETURNING key",
                                          (key,)).fetchone() is None:
                raise KeyError(key)

    def __iter__(self):
        return iter([row["key"] for row in self.database.query("SELECT key FROM store ORDER BY key")])

    def __len__(self) -> int:
        return self.database.value("SELECT COUNT(*) FROM store")
