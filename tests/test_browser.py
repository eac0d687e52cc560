"""Real-browser tests: Debian's Chromium, driven by Playwright, against a live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def task(page, name):
    return page.locator("#main li.item", has_text=name)


def add_task(page, name):
    page.fill("#tasks-add input[name=name]", name)
    page.click("#tasks-add button")
    expect(task(page, name)).to_be_visible()


def test_add_edit_toggle_delete_a_task(open_page):
    page = open_page()
    add_task(page, "buy oat milk")
    expect(page.locator("#tasks-add input[name=name]")).to_have_value("")

    task(page, "buy oat milk").locator(".name").click()
    page.fill("#main li.editing input[name=name]", "buy soy milk")
    page.press("#main li.editing input[name=name]", "Enter")
    expect(task(page, "buy soy milk")).to_be_visible()
    expect(page.locator("#main li.editing")).to_have_count(0)

    task(page, "buy soy milk").locator("input[type=checkbox]").check()
    expect(task(page, "buy soy milk")).to_have_class("item done")

    page.on("dialog", lambda dialog: dialog.accept())
    task(page, "buy soy milk").locator("button.delete").click()
    expect(task(page, "buy soy milk")).to_have_count(0)
    assert page.js_errors == []


def test_a_change_in_one_tab_appears_in_the_other(open_page):
    first, second = open_page(), open_page()
    add_task(first, "water the plants")
    expect(task(second, "water the plants")).to_be_visible()
    expect(task(second, "water the plants")).to_have_count(1)
    expect(task(first, "water the plants")).to_have_count(1)  # the tab that acted gets no echo

    task(second, "water the plants").locator("input[type=checkbox]").check()
    expect(task(first, "water the plants")).to_have_class("item done")


def test_an_in_process_execute_appears_in_every_tab(open_page, live_server):
    first, second = open_page(), open_page()
    outcome = live_server.execute("tasks.insert", {"name": "added by Chip"})
    for page in (first, second):
        expect(task(page, "added by Chip")).to_be_visible()
    live_server.execute("tasks.toggle", {"id": outcome.value["id"]})
    for page in (first, second):
        expect(task(page, "added by Chip")).to_have_class("item done")
    live_server.execute("tasks.delete", {"id": outcome.value["id"]})
    for page in (first, second):
        expect(task(page, "added by Chip")).to_have_count(0)
