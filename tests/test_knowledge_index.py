"""Knowledge indexing: chunking by structure, incremental re-indexing, bad files, transactions, the watcher."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from theseus.config import Config
from theseus.db import Database
from theseus.events import append_event
from theseus.knowledge import Knowledge, default_sources
from theseus.knowledge.chunking import chunk_file
from theseus.knowledge.embedders import E5Embedder
from theseus.knowledge.index import MAX_FILE_BYTES, Report, Source
from tests.waits import wait_until

GUIDE = """# Guide

Intro line.

## Brewing

To make coffee, grind the beans.

```
# not a heading inside a fence
```

### Milk

Warm it first.

## Cleaning

Rinse the pot.
"""

CODE = '''"""A module."""

import os

LIMIT = 3


def helper(x):
    """Help."""
    return x + 1


@staticmethod
def decorated():
    pass


class Small:
    def one(self):
        return 1


class Big:
    """A big class."""

''' + "\n".join(f"    def method_{i}(self):\n        return {i}\n" for i in range(25))


@pytest.fixture(scope="module")
def e5():
    return E5Embedder()


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    (root / "docs" / "more").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "docs" / "guide.md").write_text(GUIDE)
    (root / "docs" / "more" / "faq.md").write_text("# FAQ\n\nQuestions and answers about the pot.\n")
    (root / "src" / "mod.py").write_text("def brew():\n    return 'coffee'\n")
    return root


@pytest.fixture
def knowledge(tmp_path, corpus, e5):
    db = Database(tmp_path / "k.db")
    knowledge = Knowledge(db, Config(data_dir=tmp_path / "data"),
                          sources=[Source(corpus, "docs/*.md", "doc"), Source(corpus, "src/*.py", "code")],
                          embedder=e5)
    yield knowledge
    knowledge.stop()
    db.close()


def rows(knowledge, sql="SELECT path, line_start, line_end, title FROM chunks ORDER BY path, line_start"):
    return knowledge.db.query(sql)


def consistent(knowledge) -> bool:
    """Every chunk has exactly one full-text row and one vector, and nothing else has any."""
    db = knowledge.db
    chunks = db.value("SELECT COUNT(*) FROM chunks")
    vectors = db.value("SELECT COUNT(*) FROM chunk_vectors")
    orphans = db.value("SELECT COUNT(*) FROM chunk_vectors WHERE rowid NOT IN (SELECT id FROM chunks)")
    found = db.value("SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH 'the OR coffee OR pot OR brew'")
    return chunks == vectors and orphans == 0 and found <= chunks


def test_markdown_is_cut_at_headings_with_their_trail_and_lines():
    chunks = chunk_file("docs/guide.md", "doc", GUIDE)
    assert [(c.title, c.line_start, c.line_end) for c in chunks] == [
        ("Guide", 1, 4), ("Guide › Brewing", 5, 12), ("Guide › Brewing › Milk", 13, 16),
        ("Guide › Cleaning", 17, 19)]
    assert "# not a heading inside a fence" in chunks[1].text  # a fenced '#' line is not a heading
    assert chunks[0].cite == "docs/guide.md:1"


def test_python_is_cut_at_definitions_and_a_big_class_at_its_methods():
    chunks = chunk_file("src/mod.py", "code", CODE)
    titles = [c.title for c in chunks]
    assert titles[:4] == ["module", "def helper", "def decorated", "class Small"]
    assert chunks[2].text.startswith("@staticmethod")  # decorators belong to their definition
    assert titles[4] == "class Big" and titles[5:] == [f"def Big.method_{i}" for i in range(25)]
    helper = chunks[1]
    assert CODE.splitlines()[helper.line_start - 1] == "def helper(x):" and helper.line_end == helper.line_start + 2


@pytest.mark.parametrize("text, titles", [
    ("def broken(:\n    pass\n", ["module (not parsable Python)"]),
    ("", []),
    ("\n\n   \n", []),
])
def test_odd_python_still_chunks(text, titles):
    assert [c.title for c in chunk_file("x.py", "code", text)] == titles


def test_a_long_section_is_cut_into_windows_of_whole_lines():
    text = "# Long\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(200))
    chunks = chunk_file("docs/long.md", "doc", text)
    assert len(chunks) > 3 and all(len(c.text) <= 2400 for c in chunks)
    assert [c.line_start for c in chunks[1:]] == [c.line_end + 1 for c in chunks[:-1]]


def test_refresh_indexes_every_source_and_only_changes_get_embedded(knowledge, corpus):
    first = knowledge.refresh()
    assert sorted(first.indexed) == ["docs/guide.md", "docs/more/faq.md", "src/mod.py"]
    assert first.embedded == len(rows(knowledge)) and consistent(knowledge)
    again = knowledge.refresh()
    assert again.indexed == [] and again.unchanged == 3 and again.embedded == 0
    (corpus / "docs" / "guide.md").write_text(GUIDE.replace("Rinse the pot.", "Rinse the pot twice."))
    edited = knowledge.refresh()
    assert edited.indexed == ["docs/guide.md"] and edited.embedded == 1 and edited.reused == 3  # one section changed
    assert "twice" in knowledge.db.value("SELECT text FROM chunks WHERE title = 'Guide › Cleaning'")
    (corpus / "docs" / "more" / "faq.md").unlink()
    gone = knowledge.refresh()
    assert gone.removed == ["docs/more/faq.md"] and not rows(knowledge, "SELECT * FROM chunks WHERE path LIKE '%faq%'")
    assert consistent(knowledge)


@pytest.mark.parametrize("name, content, reason", [
    ("logo.md", b"\x89PNG\r\n\x1a\n\0\0\0IHDR", "binary"),
    ("latin.md", "# Café\n\nCrème brûlée".encode("latin-1"), "not UTF-8"),
    ("huge.md", b"# Huge\n" + b"a" * (MAX_FILE_BYTES + 1), "too large"),
])
def test_bad_files_are_skipped_with_a_reason_and_forgotten(knowledge, corpus, name, content, reason):
    (corpus / "docs" / name).write_text("# Fine at first\n")
    knowledge.refresh()
    (corpus / "docs" / name).write_bytes(content)
    report = knowledge.refresh()
    assert [(path, reason in why) for path, why in report.skipped] == [(f"docs/{name}", True)]
    assert f"docs/{name}" in report.removed  # its old chunks went with it
    assert not rows(knowledge, f"SELECT * FROM chunks WHERE path = 'docs/{name}'")
    assert "docs/guide.md" in {r["path"] for r in rows(knowledge)} and consistent(knowledge)


def test_a_file_that_vanishes_mid_index_is_skipped(knowledge, corpus):
    knowledge.refresh()
    ghost = corpus / "docs" / "ghost.md"  # listed by the scan, gone when read
    report = Report()
    knowledge.index.index_file(knowledge.sources[0], ghost, "docs/ghost.md", report)
    assert report.skipped == [("docs/ghost.md", "vanished while being indexed")]
    assert knowledge.index.update([ghost]).indexed == [] and consistent(knowledge)


def test_a_failing_embedder_leaves_no_half_indexed_file(tmp_path, corpus, e5):
    class Failing(E5Embedder):
        def passages(self, texts):
            if any("towel" in t for t in texts):
                raise RuntimeError("embedder crashed")
            return super().passages(texts)

    db = Database(tmp_path / "f.db")
    knowledge = Knowledge(db, Config(data_dir=tmp_path), sources=[Source(corpus, "docs/*.md", "doc")],
                          embedder=Failing())
    knowledge.refresh()
    (corpus / "docs" / "guide.md").write_text(GUIDE + "\n## Drying\n\nDry with a towel.\n")
    with pytest.raises(RuntimeError):
        knowledge.refresh()
    titles = {r["title"] for r in db.query("SELECT title FROM chunks WHERE path = 'docs/guide.md'")}
    assert "Guide › Drying" not in titles and "Guide › Cleaning" in titles  # the old version, whole
    assert consistent(knowledge)
    db.close()


def test_events_are_indexed_as_chunks(knowledge):
    with knowledge.db.transaction():
        append_event(knowledge.db, actor="user", operation="tasks.insert", args={"name": "buy milk"},
                     summary="Added task 'buy milk' (#1)")
        append_event(knowledge.db, actor="system", operation="profiles.insert", summary="bootstrapping")
    assert knowledge.index.sync_events() == 1 and knowledge.index.sync_events() == 0
    chunk = rows(knowledge, "SELECT * FROM chunks WHERE kind = 'event'")[0]
    assert chunk["path"] == "events" and "the user: Added task 'buy milk' (#1)" in chunk["text"]
    hits = knowledge.search("when did I add milk", kinds=("event",)).hits
    assert hits[0].cite == f"event #{chunk['event_id']}"


def test_the_watcher_reindexes_an_edited_doc_while_running(knowledge, corpus):
    knowledge.start(watch=True)
    wait_until(lambda: knowledge.watcher is not None, f"the watcher to start ({knowledge.index.state})")
    (corpus / "docs" / "more" / "faq.md").write_text("# FAQ\n\nThe kettle whistles when the water boils.\n")
    (corpus / "docs" / "new.md").write_text("# New page\n\nAbout teapots.\n")
    wait_until(lambda: all(text in " ".join(r["text"] for r in rows(knowledge, "SELECT text FROM chunks"))
                           for text in ("kettle whistles", "teapots")), "both edits in the index", every=0.1)
    hit = knowledge.search("kettle whistles").hits[0]
    assert hit.path == "docs/more/faq.md"
    assert "teapots" in " ".join(r["text"] for r in rows(knowledge, "SELECT text FROM chunks"))


class CountingEmbedder:
    """The real embedder, counting the calls that embed passages."""

    def __init__(self, embedder):
        self.embedder, self.calls = embedder, 0

    def __getattr__(self, name):
        return getattr(self.embedder, name)

    def passages(self, texts):
        self.calls += 1
        return self.embedder.passages(texts)


def test_indexing_waits_while_the_model_works_on_a_turn(tmp_path, corpus, e5):
    """On two cores, embedding beside a turn halves the model's speed: the indexer pauses until the turn is over."""
    db, counting, turn = Database(tmp_path / "k.db"), CountingEmbedder(e5), threading.Event()
    knowledge = Knowledge(db, Config(data_dir=tmp_path / "data"), sources=[Source(corpus, "docs/*.md", "doc")],
                          embedder=counting)
    knowledge.index.busy = turn.is_set
    turn.set()  # Chip is answering
    refresh = threading.Thread(target=knowledge.refresh)
    refresh.start()
    try:
        wait_until(lambda: knowledge.index.state == "paused while Chip answers", "the indexer to pause")
        assert counting.calls == 0 and knowledge.search("pot", kinds=("doc",)).hits == []
        turn.clear()  # the turn is over
        refresh.join(60)
        assert not refresh.is_alive() and counting.calls > 0
        assert knowledge.search("pot", kinds=("doc",)).hits
    finally:
        knowledge.index.stopping.set()
        refresh.join(60)
        db.close()


def test_the_default_sources_are_the_packages_docs_and_source_and_the_users_plugins_with_their_notes(tmp_path):
    user = {"workflows/trip.py": "code", "workflows/trip.md": "doc", "apps/notes.py": "code", "apps/notes.md": "doc"}
    for name in user:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("# Trip\n")
    kinds = {file.relative_to(source.root).as_posix(): source.kind
             for source in default_sources(Config(data_dir=tmp_path)) for file in source.files()}
    assert {name: kinds.get(name) for name in user} == user
    assert kinds["src/theseus/docs/crash-course.md"] == kinds["src/theseus/docs/workflows/hello.md"] == "doc"
    assert kinds["src/theseus/workflows/chip.py"] == "code"
