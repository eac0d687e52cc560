"""Chip drives a workflow with the real embedded model, in real Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.test_chat_browser import reply_to, send
from tests.test_workflows_browser import card, new_run

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def backend(embedded):
    """These tests talk to the real model."""
    return embedded


@pytest.mark.parametrize("message, name", [("my name is Ada, fill that in", "Ada"),
                                           ("Put Grace Hopper in as my name please", "Grace Hopper")])
def test_chip_fills_the_hello_step_from_the_chat(open_page, live_server, message, name):
    page = open_page("/apps/hello")
    key = new_run(page)
    other = open_page(f"/apps/hello?run={key}")
    send(page, message)
    for tab in (page, other):
        expect(card(tab, key, "step_01")).to_have_class("step done", timeout=60_000)
        expect(card(tab, key, "step_01")).to_contain_text(name)
        expect(card(tab, key, "step_02").locator("[name=value]")).to_have_value(f"Hello, {name}!")
    event = live_server.runtime.db.query("SELECT actor, operation FROM events ORDER BY id DESC LIMIT 1")[0]
    assert event == {"actor": "llm", "operation": "hello.submit"}


def test_a_question_mid_step_is_answered_in_context(open_page, live_server):
    page = open_page("/apps/hello")
    new_run(page)
    mind = page.context.new_page()
    mind.goto(live_server.url + page.locator(".chip-context-link").get_attribute("href"))  # what Chip sees from
    # this tab (its app and run): the step's notes are there
    expect(mind.locator("body")).to_contain_text("The user is now on step 1 of 2, “Your name”. About this step:")
    reply = reply_to(page, "/chat What should I type in the current step?")  # at temperature 0: one answer
    assert "name" in reply.locator(".body").inner_text().lower()


def test_two_tabs_on_two_runs_each_fill_their_own_run(open_page, live_server):
    """The real model, a message from each tab: each fills the run its tab shows, never the other's (a page
    render in another tab, opened later, changes nothing)."""
    first, second = open_page("/apps/hello"), open_page("/apps/hello")
    one, two = new_run(first), new_run(second)
    send(first, "my name is Ada, fill that in")
    expect(card(first, one, "step_01")).to_have_class("step done", timeout=60_000)
    send(second, "Put Grace Hopper in as my name please")
    expect(card(second, two, "step_01")).to_have_class("step done", timeout=60_000)
    values = {key: live_server.runtime.plugins["hello"].find_run(key).values()["step_01"] for key in (one, two)}
    assert values == {one: "Ada", two: "Grace Hopper"}
