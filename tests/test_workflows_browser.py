"""Workflows in real Chromium: the step chain, revert, reload, two tabs, a live job; and a SIGKILLed server."""

from __future__ import annotations

import json
import signal

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import free_port
from tests.test_chat_browser import send
from tests.test_cli import start_server
from theseus.db import Database
from theseus.workflows.cards import job_bar_id, run_id, step_card_id

pytestmark = pytest.mark.browser


def card(page, key: str, step: str):
    return page.locator(f"#{step_card_id(key, step)}")


def fill_step(page, key: str, step: str, value: str):
    field = card(page, key, step).locator("[name=value]")
    expect(field).to_be_visible()
    field.fill(value)
    card(page, key, step).get_by_role("button", name="Next").click()
    expect(card(page, key, step)).to_have_class("step done")


def new_run(page, name: str = "hello") -> str:
    page.get_by_role("button", name="New run").click()
    page.wait_for_url(f"**/apps/{name}?run=*")
    page.wait_for_function("document.body.dataset.live === 'open'")
    return page.url.split("run=")[1]


def test_hello_end_to_end_with_chip_guiding(open_page):
    page = open_page("/apps/hello")
    key = new_run(page)
    assert key == "home-hello-01"
    expect(page.locator("#chat-log")).to_contain_text("What's your name?")
    fill_step(page, key, "step_01", "Ada")
    expect(card(page, key, "step_02").locator("[name=value]")).to_have_value("Hello, Ada!")
    expect(page.locator("#chat-log")).to_contain_text("Nice to meet you, Ada!")
    fill_step(page, key, "step_02", "Hello there, Ada!")
    page.get_by_role("button", name="Finalize").click()
    expect(page.get_by_role("button", name="Unlock")).to_be_visible()
    expect(page.locator(f"#{run_id(key)} .revert")).to_have_count(0)
    expect(page.locator(f"#{run_id(key)}")).to_contain_text("Hello there, Ada!")
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator(f"#{run_id(key)} .revert")).to_have_count(2)
    assert page.js_errors == []


def test_revert_and_resubmit_clears_what_came_after(open_page):
    page = open_page("/apps/hello")
    key = new_run(page)
    fill_step(page, key, "step_01", "Ada")
    fill_step(page, key, "step_02", "Hi Ada")
    card(page, key, "step_01").get_by_role("button", name="Revert").click()
    expect(card(page, key, "step_01").locator("[name=value]")).to_have_value("Ada")
    expect(card(page, key, "step_02")).to_have_count(0)
    fill_step(page, key, "step_01", "Grace")
    expect(card(page, key, "step_02").locator("[name=value]")).to_have_value("Hello, Grace!")


def test_a_reload_mid_run_resumes_at_the_first_open_step(open_page, live_server):
    page = open_page("/apps/hello")
    key = new_run(page)
    fill_step(page, key, "step_01", "Ada")
    page.reload()
    expect(card(page, key, "step_01")).to_have_class("step done")
    expect(card(page, key, "step_01")).to_contain_text("Ada")
    expect(card(page, key, "step_02").locator("[name=value]")).to_have_value("Hello, Ada!")
    page.goto(live_server.url + "/apps/hello")  # the landing page lists the run to resume
    page.get_by_role("link", name=key).click()
    expect(card(page, key, "step_02").locator("[name=value]")).to_be_visible()


def test_two_tabs_run_two_runs_and_a_third_follows_the_first_live(open_page, live_server):
    first, second = open_page("/apps/hello"), open_page("/apps/hello")
    one, two = new_run(first), new_run(second)
    assert (one, two) == ("home-hello-01", "home-hello-02")
    watcher = open_page(f"/apps/hello?run={one}")
    fill_step(first, one, "step_01", "Ada")
    fill_step(second, two, "step_01", "Grace")
    expect(card(first, one, "step_02").locator("[name=value]")).to_have_value("Hello, Ada!")
    expect(card(second, two, "step_02").locator("[name=value]")).to_have_value("Hello, Grace!")
    expect(card(watcher, one, "step_01")).to_contain_text("Ada")  # live, from the other tab
    live_server.execute("hello.submit", {"key": one, "step": "step_02", "value": "Yo Ada"})  # Chip acts
    for page in (first, watcher):
        expect(page.locator(f"#{run_id(one)}")).to_contain_text("Yo Ada")
    expect(second.locator(f"#{run_id(two)}")).not_to_contain_text("Ada")


def test_a_chat_message_drives_the_run_of_the_tab_it_was_sent_from(open_page, live_server, backend):
    first, second = open_page("/apps/hello"), open_page("/apps/hello")
    one, two = new_run(first), new_run(second)
    first.reload()  # the newest tab opened last: its run is no page view's "last opened" run
    first.wait_for_function("document.body.dataset.live === 'open'")
    backend.commands = [{"command": "fill", "value": "Ada"}]
    send(first, "my name is Ada, fill that in")
    expect(card(first, one, "step_01")).to_have_class("step done")
    backend.commands = [{"command": "fill", "value": "Grace"}]
    send(second, "I'm Grace, put that in")
    expect(card(second, two, "step_01")).to_have_class("step done")
    for key, name in ((one, "Ada"), (two, "Grace")):
        data = json.loads(live_server.runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,)))
        assert data["step_01"]["value"] == name
    assert first.js_errors == [] and second.js_errors == []


def start_gentle_job(page, folder) -> str:
    """Start a Long job run hashing `folder` at 2 MB/s; returns its key."""
    key = new_run(page, "longjob")
    fill_step(page, key, "step_01", str(folder))
    card(page, key, "step_02").locator("select").select_option("very gentle (2 MB/s)")
    card(page, key, "step_02").get_by_role("button", name="Next").click()
    card(page, key, "step_03").get_by_role("button", name="Start").click()
    return key


def test_the_long_job_shows_live_progress_that_survives_a_reload(open_page, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    for number in range(4):
        (folder / f"part{number}.bin").write_bytes(bytes([number]) * 2_000_000)
    page = open_page("/apps/longjob")
    key = start_gentle_job(page, folder)
    bar = page.locator(f"#{job_bar_id(key, 'step_03')}")
    page.wait_for_function(f"(document.getElementById('{job_bar_id(key, 'step_03')}')?.dataset.done|0) > 0")
    page.reload()  # the job keeps running; the bar re-attaches and keeps moving
    expect(bar).to_be_visible()
    first = int(bar.get_attribute("data-done"))
    page.wait_for_function(f"(document.getElementById('{job_bar_id(key, 'step_03')}')?.dataset.done|0) > {first}")
    expect(card(page, key, "step_03")).to_have_class("step done", timeout=30_000)
    expect(card(page, key, "step_03")).to_contain_text("4 files, 8.0 MB")


def test_a_cancelled_job_reports_cleanly_in_the_page(open_page, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"x" * 8_000_000)
    page = open_page("/apps/longjob")
    key = start_gentle_job(page, folder)
    card(page, key, "step_03").get_by_role("button", name="Cancel").click()
    expect(card(page, key, "step_03").locator(".job-error")).to_contain_text("Cancelled")
    expect(card(page, key, "step_03").get_by_role("button", name="Try again")).to_be_visible()


def test_a_sigkilled_server_resumes_every_run_exactly(tmp_path):
    port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    process = start_server(data, port, "--no-watch")
    key = httpx.post(f"{base}/apps/hello/new").headers["HX-Redirect"].split("run=")[1]
    assert httpx.post(f"{base}/ops/hello.submit", data={"key": key, "step": "step_01", "value": "Ada"}).status_code == 200
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    process = start_server(data, port, "--no-watch")
    try:
        page = httpx.get(f"{base}/apps/hello?run={key}").text
        assert "Ada" in page and f'hx-get="/apps/hello/runs/{key}/steps/step_02"' in page
        step = httpx.get(f"{base}/apps/hello/runs/{key}/steps/step_02", headers={"HX-Request": "true"}).text
        assert 'value="Hello, Ada!"' in step
    finally:
        process.terminate()
        process.wait(timeout=30)
    db = Database(data / "theseus.db")
    assert json.loads(db.value("SELECT data FROM pipelines WHERE key = ?", (key,)))["step_01"]["value"] == "Ada"
    db.close()


def test_the_runs_list_follows_new_changed_and_deleted_runs_live(open_page, live_server):
    landing = open_page("/apps/hello")
    expect(landing.locator("table.runs tr.empty")).to_be_visible()
    key = live_server.execute("hello.start").value["key"]
    row = landing.locator(f"#runs-row-{key}")
    expect(row).to_contain_text("step 1: Your name")
    expect(landing.locator("table.runs tr.empty")).to_be_hidden()
    live_server.execute("hello.submit", {"key": key, "step": "step_01", "value": "Ada"})
    expect(row).to_contain_text("step 2: Greeting")
    live_server.execute("hello.delete", {"key": key})
    expect(row).to_have_count(0)
    assert landing.js_errors == []
