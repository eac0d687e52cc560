"""Chip drives a user's plugin with the real model, in real Chromium: the Contacts example, as its author would
try it. Nothing the message did not give is written; an update changes one field; a question is answered from
the rows."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT
from tests.test_chat_browser import reply_to

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def backend(embedded):
    return embedded


@pytest.fixture(autouse=True)
def contacts_plugin(config):
    """The example plugin in the data dir's apps/, before the server starts."""
    config.user_apps_dir.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "examples" / "apps" / "contacts.py", config.user_apps_dir)


def contacts(runtime) -> list[dict]:
    return runtime.db.query("SELECT name, email, phone, notes FROM contacts ORDER BY id")


def test_chip_adds_changes_and_answers_from_a_plugins_own_table(open_page, live_server):
    runtime = live_server.runtime
    page = open_page("/apps/contacts")
    reply_to(page, "add a contact Ada Lovelace, ada@example.com")
    assert contacts(runtime) == [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": None, "notes": None}]
    expect(page.locator("#main")).to_contain_text("ada@example.com")  # live in the page
    reply_to(page, "change Ada's phone to 555-0100")
    assert contacts(runtime) == [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "555-0100",
                                  "notes": None}]
    answer = reply_to(page, "what is Ada's email?")
    assert "ada@example.com" in answer.locator(".body").inner_text()
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0
