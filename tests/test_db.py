"""The SQLite file: migrations, WAL, transactions and the key/value store."""

from __future__ import annotations

import pytest

from theseus.db import CORE_TABLES, MIGRATIONS, Database


def test_a_new_file_gets_every_migration_and_wal(tmp_path):
    db = Database(tmp_path / "t.db")
    assert db.schema_version == MIGRATIONS[-1][0]
    assert db.value("PRAGMA journal_mode") == "wal"
    assert db.value("PRAGMA foreign_keys") == 1
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"store", "events", "pipelines", "plugin_migrations", "migrations"} <= tables
    assert not {"profiles", "tasks"} & tables  # the plugins declare their own
    assert {t for t in tables if not t.startswith(("chunks_fts_", "chunk_vectors_", "sqlite_"))} == set(CORE_TABLES)


def test_opening_again_is_idempotent(tmp_path):
    Database(tmp_path / "t.db").close()
    db = Database(tmp_path / "t.db")
    assert db.value("SELECT COUNT(*) FROM migrations") == len(MIGRATIONS)


def test_an_older_file_migrates_and_keeps_its_rows(tmp_path):
    old = Database(tmp_path / "t.db", migrate_to=1)
    assert old.schema_version == 1
    old.conn.execute("INSERT INTO events (time, actor, operation) VALUES ('2026-01-01', 'user', 'x.y')")
    old.close()
    db = Database(tmp_path / "t.db")
    assert db.schema_version == MIGRATIONS[-1][0]
    assert db.query("SELECT operation FROM events") == [{"operation": "x.y"}]
    indexes = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "events_by_time" in indexes


def test_a_file_from_before_outside_agents_keeps_its_events_and_takes_agent_events(tmp_path):
    old = Database(tmp_path / "t.db", migrate_to=9)
    old.conn.execute("INSERT INTO events (time, actor, operation, plan, undone) VALUES ('2026-01-01', 'llm', 'x.y', "
                     "'p1', 1)")
    with pytest.raises(Exception):
        old.conn.execute("INSERT INTO events (time, actor, operation) VALUES ('2026-01-02', 'agent', 'x.z')")
    old.close()
    db = Database(tmp_path / "t.db")
    assert db.query("SELECT actor, operation, plan, undone FROM events") == [
        {"actor": "llm", "operation": "x.y", "plan": "p1", "undone": 1}]
    db.conn.execute("INSERT INTO events (time, actor, operation) VALUES ('2026-01-02', 'agent', 'x.z')")
    with pytest.raises(Exception):
        db.conn.execute("INSERT INTO events (time, actor, operation) VALUES ('2026-01-02', 'nobody', 'x.z')")
    indexes = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"events_by_time", "events_by_plan"} <= indexes


def test_a_failed_transaction_leaves_nothing(tmp_path):
    db = Database(tmp_path / "t.db")
    with pytest.raises(RuntimeError):
        with db.transaction():
            db.conn.execute("INSERT INTO store (key, value) VALUES ('half', '1')")
            raise RuntimeError("boom")
    assert db.value("SELECT COUNT(*) FROM store") == 0


def test_store_is_a_persistent_dict(tmp_path):
    db = Database(tmp_path / "t.db")
    store = db.store
    store["profile_id"] = 3
    store["prefs"] = {"theme": "dark", "chat": [1, 2]}
    assert store["profile_id"] == 3 and store.get("missing", "x") == "x"
    assert "prefs" in store and sorted(store) == ["prefs", "profile_id"] and len(store) == 2
    del store["profile_id"]
    with pytest.raises(KeyError):
        del store["profile_id"]
    db.close()
    assert Database(tmp_path / "t.db").store["prefs"] == {"theme": "dark", "chat": [1, 2]}
