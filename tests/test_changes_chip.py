"""Chip proposes a change to a user's plugin with the real embedded model, and the Changes page in a real browser
applies a pasted change on a real server process."""

from __future__ import annotations

import pytest

from tests.test_changes import GREETER, GREETING, Served
from tests.conftest import free_port
from theseus.changes.service import prepare


@pytest.fixture
def backend(embedded):
    return embedded


@pytest.fixture
def config(config):
    """The data dir holds the user's Greeting workflow before Theseus starts."""
    config.user_workflows_dir.mkdir(parents=True)
    (config.user_workflows_dir / "greeting.py").write_text(GREETING)
    return config


def test_the_real_model_proposes_a_diff_that_applies(config, socket, runtime):
    tab = socket()
    tab.send(action="send", message="make the greeting step suggest 'Hi' instead of 'Hello'")
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "workflows/greeting.py:" in final and "code-card" in final
    [change] = runtime.changes.recent()
    [edit] = change.edits
    assert change.status == "proposed" and 'f"Hi, {values' in edit.after
    assert prepare(config, edit.diff) == [edit]  # the diff it shows applies to the file as it is
    assert (config.user_workflows_dir / "greeting.py").read_text() == GREETING


def test_a_pasted_diff_is_previewed_and_applied_in_the_browser(config, context, tmp_path):
    from theseus.changes.diffs import unified
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "greeter.py").write_text(GREETER)
    served = Served(config.data_dir, free_port())
    try:
        page = context.new_page()
        page.goto(served.url + "/apps/changes")
        page.locator("textarea[name=text]").fill(unified("apps/greeter.py", GREETER,
                                                         GREETER.replace("Hello from", "Hi from")))
        page.get_by_role("button", name="Preview").click()
        page.locator(".change-file h3", has_text="apps/greeter.py").wait_for()
        assert "+1 −1" in page.locator(".change-file h3").inner_text()
        page.get_by_role("button", name="Apply: check, restart, verify").click()
        page.locator("#change-1[data-status=applied]").wait_for(timeout=60_000)  # the list looks again by itself
        assert "Hi from the greeter" in served.page("greeter")
    finally:
        served.process.terminate()
        served.process.wait(15)
