"""Plans and ask-backs with the real model, in real Chromium, as a user meets them: "add a, b and c" is one reply
with one card and one Undo for all of them; a row that does not exist gets a question and a one-click Add,
never a change to another row."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.test_chat_browser import reply_to

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def backend(embedded):
    return embedded


def names(runtime) -> list[str]:
    return [row["name"] for row in runtime.db.query("SELECT name FROM tasks ORDER BY id")]


def test_a_multi_add_is_one_card_with_one_undo(open_page, live_server):
    runtime = live_server.runtime
    live_server.execute("tasks.insert", {"name": "buy eggs"}, actor="user")
    page = open_page("/apps/tasks")
    reply = reply_to(page, "add three tasks: wash the car, pay rent, and feed the cat")
    assert names(runtime) == ["buy eggs", "wash the car", "pay rent", "feed the cat"]
    expect(page.locator("#main")).to_contain_text("feed the cat")  # live in the page
    undo = reply.get_by_role("button", name="Undo all 3")
    expect(undo).to_be_visible()
    undo.click()
    expect(reply.locator(".action-card").first).to_contain_text("Undid")
    assert names(runtime) == ["buy eggs"]
    expect(page.locator("#main")).not_to_contain_text("feed the cat")


def test_a_row_that_does_not_exist_is_asked_about_and_added_with_one_click(open_page, live_server):
    runtime = live_server.runtime
    for name in ("buy oat milk", "water the plants"):
        live_server.execute("tasks.insert", {"name": name}, actor="user")
    page = open_page("/apps/tasks")
    reply = reply_to(page, "rename the plumber task to call the plumber on Friday")
    expect(reply.locator(".body")).to_contain_text("plumber")
    assert names(runtime) == ["buy oat milk", "water the plants"]  # no other row renamed
    page.reload()  # the card survives a reload
    card = page.locator(".message.assistant").last.locator(".confirm-card button.confirm")
    expect(card).to_contain_text("plumber")
    card.click()
    expect(page.locator(".message.assistant").last.locator(".confirm-card, .action-card.done").first) \
        .to_contain_text("Confirmed")
    assert names(runtime) == ["buy oat milk", "water the plants", "call the plumber on Friday"]
