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


def names(page):
    return page.locator("#main li.item .name").all_inner_texts()


def test_drag_and_drop_reorders_in_every_tab(open_page, live_server):
    for name in ("first", "second", "third"):
        live_server.execute("tasks.insert", {"name": name}, actor="user")
    page, other = open_page(), open_page()
    task(page, "third").locator(".handle").drag_to(task(page, "first").locator(".handle"))
    expect(page.locator("#main li.item .name")).to_have_text(["third", "first", "second"])
    expect(other.locator("#main li.item .name")).to_have_text(["third", "first", "second"])
    order = live_server.runtime.db.query("SELECT name FROM tasks ORDER BY priority")
    assert [r["name"] for r in order] == ["third", "first", "second"]


def test_switching_profiles_shows_each_profiles_own_tasks_in_every_tab(open_page, live_server):
    live_server.execute("tasks.insert", {"name": "home chore"}, actor="user")
    work = live_server.execute("profiles.insert", {"name": "Work"}, actor="user").value
    page, other = open_page(), open_page()
    page.select_option("#profile-menu select", str(work["id"]))
    for tab in (page, other):
        expect(tab.locator(f"#tasks-list-{work['id']}")).to_be_attached()
        expect(task(tab, "home chore")).to_have_count(0)
        expect(tab.locator("#profile-menu select")).to_have_value(str(work["id"]))
    add_task(page, "work item")
    expect(task(other, "work item")).to_be_visible()
    page.select_option("#profile-menu select", "1")
    for tab in (page, other):
        expect(task(tab, "home chore")).to_be_visible()
        expect(task(tab, "work item")).to_have_count(0)


def test_a_refused_operation_shows_its_reason(open_page):
    page = open_page()
    page.evaluate("htmx.ajax('POST', '/ops/tasks.toggle', {values: {id: 999}, swap: 'none'})")
    expect(page.locator("#toast")).to_have_text("There is no task #999 in the current profile.")


def test_profiles_app_renames_and_marks_the_current_profile(open_page, live_server):
    page = open_page("/apps/profiles")
    page.fill("#profiles-add input[name=name]", "Garden")
    page.click("#profiles-add button")
    garden = page.locator("#main li.item", has_text="Garden")
    expect(garden).to_be_visible()
    expect(page.locator("#profile-menu option", has_text="Garden")).to_have_count(1)
    garden.locator("button", has_text="Switch").click()
    expect(garden.locator(".badge")).to_have_text("current")
    garden.locator(".name").click()
    page.fill("#main li.editing input[name=name]", "Allotment")
    page.keyboard.press("Enter")
    expect(page.locator("#profile-menu option", has_text="Allotment")).to_have_count(1)


def test_a_broken_user_plugin_is_listed_while_the_rest_works(config, context):
    from tests.conftest import LiveServer
    from tests.fakes import ScriptedBackend
    from theseus.runtime import Runtime
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "wobbly.py").write_text("raise ImportError('wobbly needs a library')\n")
    runtime = Runtime(config, ScriptedBackend())
    server = LiveServer(config, runtime).start()
    try:
        page = context.new_page()
        page.goto(server.url + "/apps/tasks")
        expect(page.locator(".broken-plugin")).to_contain_text("wobbly (broken)")
        page.locator(".broken-plugin summary").click()
        expect(page.locator(".broken-plugin")).to_contain_text("wobbly needs a library")
        add_task(page, "works anyway")
    finally:
        server.stop()
        runtime.close()


def test_a_long_list_loads_as_you_scroll_without_duplicates(open_page, live_server):
    runtime = live_server.runtime
    with runtime.db.transaction():
        runtime.db.conn.executemany("INSERT INTO tasks (name, priority, profile_id) VALUES (?, ?, 1)",
                                    [(f"bulk {i}", i) for i in range(230)])
    page = open_page()
    expect(page.locator("#main li.item")).to_have_count(100)
    page.evaluate("() => { window.liveBatches = 0;"
                  " document.body.addEventListener('htmx:sseMessage', () => window.liveBatches++); }")
    live_server.execute("tasks.insert", {"name": "newest"})
    page.wait_for_function("() => window.liveBatches > 0")  # the live insert reached the tab (and was not shown)
    for loaded in (100, 200):  # each reveal of the 'more' item loads one more page
        # scroll in one step in the page itself: the 'more' item is swapped out by the page it loads
        page.evaluate("() => document.querySelector('#main li.more').scrollIntoView()")
        expect(page.locator("#main li.item")).not_to_have_count(loaded)
    expect(page.locator("#main li.item")).to_have_count(231)
    expect(page.locator("#main li.more")).to_have_count(0)
    assert len(set(names(page))) == 231 and names(page)[-1] == "newest"
