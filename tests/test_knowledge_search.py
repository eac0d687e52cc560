"""Hybrid search on a small corpus: both halves find what only they can, SQL filters, odd queries."""

from __future__ import annotations

import pytest

from theseus.config import Config
from theseus.db import Database
from theseus.knowledge import Knowledge
from theseus.knowledge.embedders import E5Embedder
from theseus.knowledge.index import Source
from theseus.knowledge.recall import day_range, plan
from theseus.knowledge.search import QUERY_LIMIT

DOCS = {
    "coffee.md": "# Coffee\n\nTo make coffee, grind the beans and pour hot water over them slowly.\n",
    "garden.md": "# Garden\n\nWater the tomatoes every evening and pull the weeds on Saturdays.\n",
    "bikes.md": "# Bicycles\n\nPump the tyres to four bar and oil the chain after rain.\n",
    "taxes.md": "# Taxes\n\nKeep every receipt in one folder; the return is due in spring.\n",
}
CODE = '''def xq7_flux_capacitor(level):
    """Return the setting for a level."""
    return level * 2


def render_invoice(order):
    """Format an order as an invoice."""
    return f"Invoice {order}"
'''


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "docs").mkdir()
    (root / "src").mkdir()
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text)
    (root / "src" / "tools.py").write_text(CODE)
    db = Database(root / "k.db")
    knowledge = Knowledge(db, Config(data_dir=root / "data"), embedder=E5Embedder(),
                          sources=[Source(root, "docs/*.md", "doc"), Source(root, "src/*.py", "code")])
    knowledge.refresh()
    yield knowledge
    db.close()


def test_a_keyword_only_query_is_found_by_the_full_text_half(knowledge):
    top = knowledge.search("xq7_flux_capacitor").hits[0]
    assert (top.path, top.title, top.fts_rank) == ("src/tools.py", "def xq7_flux_capacitor", 1)


def test_a_paraphrase_with_no_shared_word_is_found_by_the_vector_half(knowledge):
    results = knowledge.search("how should I prepare an espresso drink")  # no word of the coffee chunk
    top = results.hits[0]
    assert top.path == "docs/coffee.md" and top.fts_rank is None and top.vec_rank == 1


def test_both_halves_agreeing_rank_first(knowledge):
    top = knowledge.search("tomatoes weeds garden").hits[0]
    assert top.path == "docs/garden.md" and top.fts_rank == 1 and top.vec_rank == 1
    assert top.score == pytest.approx(2 / 61)


@pytest.mark.parametrize("kinds, expected", [(("code",), {"code"}), (("doc",), {"doc"})])
def test_the_kind_filter_applies_to_both_halves(knowledge, kinds, expected):
    hits = knowledge.search("invoice coffee receipt", kinds=kinds, limit=10).hits
    assert hits and {h.kind for h in hits} == expected


def test_time_filters_are_plain_sql_beside_the_vector_search(knowledge):
    db = knowledge.db
    with db.transaction():
        for number, day in enumerate(["2024-05-06", "2024-05-07", "2024-05-08"], 1):
            db.conn.execute("INSERT INTO events (time, actor, operation, args, summary) VALUES (?, 'user', "
                            "'tasks.insert', '{}', ?)", (f"{day}T10:00:00.000+00:00", f"Added task 'errand {number}'"))
    hits = knowledge.search("added an errand task", kinds=("event",), since="2024-05-07T00:00", until="2024-05-08T00:00",
                            limit=10).hits
    assert [h.text.split("\n")[0][:16] for h in hits] == ["2024-05-07 10:00"]
    assert knowledge.search("errand", kinds=("event",), since="2030-01-01").hits == []


@pytest.mark.parametrize("query, note", [
    ("", "nothing to search for"),
    ("   \n\t ", "nothing to search for"),
])
def test_an_empty_query_finds_nothing_and_says_so(knowledge, query, note):
    results = knowledge.search(query)
    assert results.hits == [] and results.notes == [note]


def test_a_5000_character_query_is_cut_and_said_so(knowledge):
    results = knowledge.search("coffee beans " * 385)  # 5,005 characters
    assert results.hits and results.hits[0].path == "docs/coffee.md"
    assert f"only its first {QUERY_LIMIT:,} were searched" in results.notes[0]


def test_punctuation_and_fts_syntax_are_just_text(knowledge):
    for query in ['"unbalanced', "NEAR(a b) OR *", "tyres AND -chain:^", "¿¡…!?"]:
        assert isinstance(knowledge.search(query).hits, list)
    assert knowledge.search("tyres AND chain:").hits[0].path == "docs/bikes.md"


def test_an_empty_index_says_so(tmp_path):
    db = Database(tmp_path / "empty.db")
    knowledge = Knowledge(db, Config(data_dir=tmp_path), sources=[])
    results = knowledge.search("anything at all?")
    assert results.hits == [] and "the knowledge index is empty" in results.notes[0]
    assert knowledge._embedder is None  # nothing was loaded for it
    db.close()


def test_a_failing_embedder_falls_back_to_full_text(knowledge):
    working = knowledge._embedder

    class Down(E5Embedder):
        def query(self, text):
            raise ConnectionError("embedding server is down")
    knowledge._embedder = Down()
    try:
        results = knowledge.search("tyres chain")
    finally:
        knowledge._embedder = working
    assert results.hits[0].path == "docs/bikes.md" and results.hits[0].vec_rank is None
    assert "full-text search only" in results.notes[0]


@pytest.mark.parametrize("message, kinds", [
    ("How do I add a task?", ("doc", "code")),
    ("/chat where is the workflow engine?", ("doc", "code")),
    ("explain the undo button", ("doc", "code")),
    ("what did I do yesterday?", ("event",)),
    ("What happened on Monday", ("event",)),
    ("thanks!", None),
    ("hi Chip, what can you do?", None),  # the crash course answers it; nothing to read
    ("are you running on my machine?", None),
    ("what does the Poke button do?", ("doc", "code")),
    ("add buy milk", None),
    ("/add milk", None),
])
def test_which_messages_look_something_up(message, kinds):
    lookup, reason = plan(message)
    assert (lookup.kinds if lookup else None) == kinds and reason


def test_day_names_become_local_day_ranges():
    from datetime import datetime
    now = datetime(2024, 5, 8, 15, 30).astimezone()  # a Wednesday
    start, end = day_range("what did i do on monday", now)
    assert (start.day, end.day) == (6, 7)
    assert day_range("yesterday", now)[0].day == 7 and day_range("no day here", now) is None
