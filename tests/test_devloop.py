"""The dev loop: syntax checks, the supervisor's decisions, and a real `theseus serve --watch` with real tabs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from fasthtml.common import to_xml
from playwright.sync_api import expect
from watchdog.events import FileModifiedEvent, FileMovedEvent

from tests.conftest import free_port
from theseus import devloop
from theseus.devloop import Changes, Problem, Supervisor, check_syntax, import_problem
from tests.waits import wait_until

GOOD_PLUGIN = '''from theseus.plugins import Plugin
from fasthtml.common import P


class Greeter(Plugin):
    name = "greeter"
    display_name = "Greeter"

    def render(self, request):
        return P("hello from {version}", id="greeting")
'''
BROKEN_AT_IMPORT = "import json\n\nraise RuntimeError('greeter needs a missing service')\n"
SYNTAX_ERROR = "from theseus.plugins import Plugin\n\nclass Greeter(Plugin:\n    name = 'greeter'\n"


def test_check_syntax_reports_file_line_and_message(tmp_path):
    good, bad, nul = tmp_path / "good.py", tmp_path / "bad.py", tmp_path / "nul.py"
    good.write_text("x = 1\n")
    bad.write_text("x = 1\ndef f(:\n    pass\n")
    nul.write_bytes(b"x = 1\x00\n")
    problems = check_syntax([good, bad, nul, tmp_path / "deleted.py"])
    assert [(Path_(p.path), p.line) for p in problems] == [("bad.py", 2), ("nul.py", None)]
    assert "invalid syntax" in problems[0].message and str(problems[0]).endswith("bad.py:2: invalid syntax")


def Path_(path):
    return os.path.basename(path)


def test_an_import_failure_names_the_innermost_file_and_line():
    text = ('Traceback (most recent call last):\n  File "<string>", line 3, in <module>\n'
            '  File "/src/theseus/app.py", line 12, in <module>\n    from .x import y\n'
            '  File "<frozen importlib._bootstrap>", line 1, in _find_and_load\n'
            '  File "/src/theseus/x.py", line 4, in <module>\n    y = undefined\n'
            "NameError: name 'undefined' is not defined\n")
    assert import_problem(text) == Problem("/src/theseus/x.py", 4, "NameError: name 'undefined' is not defined")


def test_a_burst_of_saves_is_one_batch_of_python_files(tmp_path):
    changes = Changes()
    assert changes.wait(0.05) == set()
    for name in ("a.py", "b.py", "a.py", "notes.md", ".#a.py", "__pycache__/a.cpython-311.pyc"):
        changes.on_any_event(FileModifiedEvent(str(tmp_path / name)))
    changes.on_any_event(FileMovedEvent(str(tmp_path / "c.py.tmp"), str(tmp_path / "c.py")))  # an editor's atomic save
    assert changes.wait(5) == {str(tmp_path / n) for n in ("a.py", "b.py", "c.py")}
    assert changes.wait(0.05) == set()


def test_the_supervisor_restarts_only_when_every_changed_file_parses(tmp_path, config, monkeypatch):
    supervisor = Supervisor(config, dirs=[])
    restarts = []
    monkeypatch.setattr(supervisor, "restart", lambda: restarts.append(1))
    monkeypatch.setattr(devloop, "preflight", lambda paths: [])
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("x = 1\n")
    bad.write_text("def f(:\n")
    supervisor.handle({str(good), str(bad)})
    assert restarts == [] and [p.line for p in supervisor.status.read()] == [1]
    supervisor.handle({str(good)})  # another sound change: bad.py is still broken
    assert restarts == [] and supervisor.status.read()
    bad.write_text("def f():\n    pass\n")
    supervisor.handle({str(bad)})
    assert restarts == [1] and supervisor.status.read() == []


def test_a_package_module_that_fails_to_import_keeps_the_old_code(config, monkeypatch):
    supervisor = Supervisor(config, dirs=[])
    monkeypatch.setattr(supervisor, "restart", lambda: pytest.fail("restarted with code that does not import"))
    module = devloop.PACKAGE_DIR / "_devloop_probe.py"  # imported by the preflight, in a throwaway process
    module.write_text("import theseus.nothing_here\n")
    try:
        supervisor.handle({str(module)})
    finally:
        module.unlink()
    (problem,) = supervisor.status.read()
    assert "ModuleNotFoundError" in problem.message and problem.path.endswith("_devloop_probe.py")


def test_the_banner_escapes_what_it_shows():
    html = to_xml(devloop.DevBanner([Problem("/x/<img src=x onerror=alert(1)>.py", 3, "<b>bad</b>")]))
    assert "<img" not in html and "&lt;img" in html and "&lt;b&gt;bad" in html
    assert "hidden" in to_xml(devloop.DevBanner([]))


def test_is_source_checkout(tmp_path):
    assert devloop.is_source_checkout()  # the tests run from the checkout
    assert not devloop.is_source_checkout(tmp_path / "lib/python3.11/site-packages/theseus")


# ---- a real `theseus serve --watch`, real tabs ----

def health(base: str) -> dict | None:
    try:
        response = httpx.get(f"{base}/health", timeout=2)
        return response.json() if response.status_code == 200 else None
    except httpx.TransportError:
        return None


@pytest.fixture
def watched_server(tmp_path):
    """`theseus serve --watch` (the supervisor, with the server as its child) on a fresh data dir."""
    port, data = free_port(), tmp_path / "data"
    env = {**os.environ, "THESEUS_LLM": f"openai:http://127.0.0.1:{free_port()}/v1"}  # no model needed here
    process = subprocess.Popen([sys.executable, "-m", "theseus", "serve", "--watch", "--port", str(port),
                                "--data", str(data)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    process.base, process.data = f"http://127.0.0.1:{port}", data
    try:
        wait_until(lambda: health(process.base) or process.poll() is not None, "the server to come up")
        assert process.poll() is None, process.stdout.read()
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert not (data / "devloop.json").exists()  # the supervisor cleans up after itself


LIVE_STATES = """
window.__live = [];
new MutationObserver(function () { window.__live.push(document.body.dataset.live); })
  .observe(document, {attributes: true, subtree: true, attributeFilter: ["data-live"]});
"""


def open_tab(context, url):
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.add_init_script(LIVE_STATES)
    page.goto(url)
    page.wait_for_function("document.body.dataset.live === 'open'")
    return page


def restarted(base, old_pid, **expect_fields):
    """The new server's /health once a server other than old_pid answers (and matches expect_fields)."""
    def check():
        state = health(base)
        if state and state["pid"] != old_pid and all(f(state) for f in expect_fields.values()):
            return state
        return None
    return wait_until(check, "the server to restart")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_edits_restart_the_server_and_open_tabs_follow(watched_server, context):
    base, data = watched_server.base, watched_server.data
    plugin = data / "apps" / "greeter.py"
    tab, other = open_tab(context, f"{base}/apps/tasks"), open_tab(context, f"{base}/apps/tasks")
    tab.fill("#tasks-add input[name=name]", "written before the restart")
    tab.click("#tasks-add button")
    expect(other.locator("#main li.item", has_text="written before the restart")).to_be_visible()
    first = health(base)

    # A sound new plugin: the server restarts, tabs show the overlay, reconnect and show the new app.
    plugin.write_text(GOOD_PLUGIN.format(version="one"))
    second = restarted(base, first["pid"], greeter=lambda s: "greeter" in s["plugins"])
    for page in (tab, other):
        expect(page.locator("#apps-menu")).to_contain_text("Greeter", timeout=20_000)
        page.wait_for_function("document.body.dataset.live === 'open'")
        page.wait_for_function("document.body.dataset.chat === 'open'")  # the chat socket reconnects on its own
        assert "restarting" in page.evaluate("window.__live")
        expect(page.locator("#restart-overlay")).to_have_count(0)
        expect(page.locator("#main li.item", has_text="written before the restart")).to_be_visible()
    tab.fill("#tasks-add input[name=name]", "written after the restart")  # live sync is back
    tab.click("#tasks-add button")
    expect(other.locator("#main li.item", has_text="written after the restart")).to_be_visible()
    tab.fill("#chat-form textarea", "/help")  # the chat socket is back, in both tabs
    tab.press("#chat-form textarea", "Enter")
    expect(other.locator(".message.assistant", has_text="Commands that need no model")).to_be_visible(timeout=10_000)

    # A syntax error: no restart, the old code keeps serving, every tab (and a new one) shows where.
    plugin.write_text(SYNTAX_ERROR)
    for page in (tab, other):
        expect(page.locator("#devloop-banner")).to_contain_text("greeter.py:3", timeout=20_000)
        expect(page.locator("#devloop-banner")).to_contain_text("invalid syntax")
    late = open_tab(context, f"{base}/apps/greeter")
    expect(late.locator("#devloop-banner")).to_contain_text("greeter.py:3")
    expect(late.locator("#greeting")).to_have_text("hello from one")
    assert health(base)["pid"] == second["pid"]
    wait_until(lambda: "dev loop: not restarted: " in (data / "server.log").read_text(), "the error in server.log")

    # Fixed, but the plugin raises at import: restart, banner gone, the plugin listed as broken,
    # its traceback in the log, everything else (data, chat history) intact.
    plugin.write_text(BROKEN_AT_IMPORT)
    restarted(base, second["pid"], broken=lambda s: "greeter" in s["broken"])
    for page in (tab, other, late):
        expect(page.locator("#devloop-banner")).to_be_hidden(timeout=20_000)
        expect(page.locator(".broken-plugin")).to_contain_text("greeter (broken)", timeout=20_000)
    expect(late.locator("#main")).to_contain_text("There is no app called 'greeter'")  # its app is gone
    log = (data / "server.log").read_text()
    assert "Traceback" in log and "RuntimeError: greeter needs a missing service" in log
    tab.goto(f"{base}/apps/tasks")
    expect(tab.locator("#main li.item")).to_have_count(2)
    expect(tab.locator(".message.assistant", has_text="Commands that need no model")).to_be_visible()
    tab.fill("#tasks-add input[name=name]", "still works")
    tab.click("#tasks-add button")
    expect(other.locator("#main li.item", has_text="still works")).to_be_visible(timeout=10_000)
    for page in (tab, other, late):
        assert page.js_errors == []
