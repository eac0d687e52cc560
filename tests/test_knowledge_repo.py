"""Chip's knowledge of this repository: the CLI (index, eval retrieval, context) and, in a real browser with
the real model, a question whose answer links to the right file in the source viewer.

Indexing the whole repository embeds ~700 chunks (a couple of minutes on two cores), so the index is kept
between test sessions in <repo>/data/test-knowledge/ (like the model) and brought up to date incrementally:
only files changed since the last session are embedded again. Each test gets a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT, free_port
from tests.test_chat_browser import reply_to
from theseus.cli import main
from theseus.config import Config
from theseus.db import Database
from theseus.knowledge import Knowledge

CACHE = REPO_ROOT / "data" / "test-knowledge"


@pytest.fixture(scope="session")
def repo_index(tmp_path_factory) -> Path:
    """A snapshot of the repository's knowledge index, brought up to date once per session."""
    CACHE.mkdir(parents=True, exist_ok=True)
    db = Database(CACHE / "theseus.db")
    knowledge = Knowledge(db, Config(data_dir=CACHE))
    knowledge.refresh()
    snapshot = tmp_path_factory.mktemp("repo-index") / "theseus.db"
    db.conn.execute("VACUUM INTO ?", (str(snapshot),))
    db.close()
    return snapshot


@pytest.fixture
def config(tmp_path, repo_index) -> Config:
    """The usual test config, its database a copy of the repository's index."""
    config = Config(data_dir=tmp_path / "data", port=free_port(), temperature=0.0)
    config.data_dir.mkdir(parents=True)
    shutil.copy(repo_index, config.db_path)
    return config


def test_theseus_index_brings_the_index_up_to_date(config, capsys):
    assert main(["index", "--data", str(config.data_dir)]) == 0
    out, err = capsys.readouterr()
    assert "unchanged" in err and "knowledge index:" in out and " doc" in out and " code" in out
    paths = {r["path"] for r in Database(config.db_path).query("SELECT path FROM knowledge_files")}
    assert "src/theseus/docs/apps/tasks.md" in paths


def test_theseus_eval_retrieval_meets_its_goal(config, capsys):
    assert main(["eval", "retrieval", str(REPO_ROOT / "evals" / "retrieval.jsonl"), "--data", str(config.data_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cases = [line for line in lines if line.startswith(("HIT", "MISS"))]
    assert len(cases) >= 40 and lines[-1].startswith("recall@3: ")
    hits = int(lines[-1].split()[1].split("/")[0])
    assert hits / len(cases) >= 0.9, "\n".join(line for line in cases if line.startswith("MISS"))


@pytest.mark.parametrize("content", ["not json", '{"question": "q"}', '{"question": "", "expect": ["a"]}', ""])
def test_a_bad_eval_file_is_a_clear_error(tmp_path, capsys, content):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(content)
    assert main(["eval", "retrieval", str(cases), "--data", str(tmp_path / "data")]) == 1
    assert "error:" in capsys.readouterr().err


def test_theseus_context_prints_what_chip_would_see(config, capsys):
    assert main(["context", "How do I undo something Chip did?", "--data", str(config.data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== tokens") and "knowledge" in out and "== dropped" in out
    assert "src/theseus/docs/apps/activity.md:" in out and "You are Chip" in out
    assert main(["context", "--data", str(config.data_dir)]) == 0
    assert "Nothing was looked up" in capsys.readouterr().out


@pytest.fixture
def backend(embedded):
    """The browser test talks to the real model."""
    return embedded


@pytest.mark.browser
@pytest.mark.model
def test_asking_about_a_workflow_links_to_the_right_file_in_the_viewer(open_page, live_server):
    page = open_page("/apps/tasks")
    reply = reply_to(page, "/chat How does the Hello workflow greet me?")
    links = reply.locator(".sources a.source-link")
    expect(links.first).to_be_visible()
    hello = links.filter(has_text="hello")
    expect(hello.first).to_be_visible()
    label = hello.first.inner_text()  # e.g. src/theseus/docs/workflows/hello.md:15
    path, line = label.rsplit(":", 1)
    with page.context.expect_page() as opened:
        hello.first.click()
    viewer = opened.value
    viewer.wait_for_load_state()
    expect(viewer.locator("h1")).to_have_text(path)
    expect(viewer.locator(f"#L{line}")).to_have_class("line hl")
    assert viewer.url.endswith(f"#L{line}")
    assert Path(REPO_ROOT / path).read_text().splitlines()[int(line) - 1] in viewer.locator(f"#L{line}").inner_text()
    page.reload()
    expect(page.locator(".message.assistant .sources").get_by_role("link", name=label, exact=True)).to_be_visible()
