"""Code changes: diffs, allowed paths, and check, write, restart, verify or roll back on a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import free_port
from tests.waits import wait_until
from theseus.changes.diffs import Edit, apply, parse, unified
from theseus.changes.files import ChangeError, target
from theseus.changes.service import prepare
from theseus.db import Database

GREETER = '''from theseus.plugins import Plugin


class Greeter(Plugin):
    name = "greeter"
    display_name = "Greeter"
    description = "Says hello."

    def render(self, request):
        return "Hello from the greeter"
'''
NO_MODEL = "openai:http://127.0.0.1:9/v1#none"


# ---- diffs ----

def test_a_diff_applies_where_its_lines_are_and_round_trips():
    before = "".join(f"line {i}\n" for i in range(1, 21))
    after = before.replace("line 5\n", "line five\n").replace("line 15\n", "line 15\nline 15b\n")
    diff = unified("apps/x.py", before, after)
    assert diff.startswith("--- a/apps/x.py\n+++ b/apps/x.py\n@@ -2,7 +2,7 @@")
    [patch] = parse(diff)
    assert apply(patch, before, "apps/x.py") == after
    shifted = "line 0\n" + before  # the file gained a line above: the hunks still find their lines
    assert apply(patch, shifted, "apps/x.py") == "line 0\n" + after


def test_a_diff_that_does_not_apply_says_where():
    [patch] = parse(unified("apps/x.py", "a\nb\nc\n", "a\nB\nc\n"))
    with pytest.raises(ChangeError, match=r"hunk 1 of apps/x.py does not apply .* line 2 is 'beta', the diff expects"):
        apply(patch, "a\nbeta\nc\n", "apps/x.py")


def test_a_new_file_and_no_newline_at_the_end():
    [patch] = parse(unified("apps/new.py", None, "x = 1"))
    assert patch.old == "/dev/null" and apply(patch, None, "apps/new.py") == "x = 1"
    with pytest.raises(ChangeError, match="already exists"):
        apply(patch, "y = 2\n", "apps/new.py")


@pytest.mark.parametrize("text", ["just some words", "--- a/x\n+++ b/x\nno hunks here\n", ""])
def test_text_that_is_no_diff_is_refused(config, text):
    with pytest.raises(ChangeError):
        prepare(config, text)


# ---- where a change may write ----

@pytest.mark.parametrize("name, where", [
    ("apps/notes.py", "apps/notes.py"), ("b/workflows/hello.py", "workflows/hello.py"),
    ("a/src/theseus/apps/tasks.py", "src/theseus/apps/tasks.py"),
])
def test_a_path_names_its_root(config, name, where):
    assert target(config, name).name == where


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "apps/../../x.py", "models/x.gguf", "apps",
                                  "src/other/x.py", "theseus.db", "apps/", ""])
def test_a_path_outside_the_allowed_roots_is_refused(config, name):
    with pytest.raises(ChangeError):
        target(config, name)


def test_a_symlink_out_of_a_root_and_a_binary_file_are_refused(config, tmp_path):
    config.user_apps_dir.mkdir(parents=True)
    (tmp_path / "outside.py").write_text("x = 1\n")
    (config.user_apps_dir / "link.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(ChangeError, match="symlink"):
        target(config, "apps/link.py")
    (config.user_apps_dir / "blob.py").write_bytes(b"x = 1\x00\x01")
    with pytest.raises(ChangeError, match="binary"):
        prepare(config, "x = 2\n", "apps/blob.py")


def test_a_change_that_changes_nothing_is_refused(config):
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "greeter.py").write_text(GREETER)
    with pytest.raises(ChangeError, match="Nothing would change"):
        prepare(config, GREETER, "apps/greeter.py")


# ---- on a real server process ----

class Served:
    """`theseus serve` in its own process on a tmp data dir with the greeter plugin; `change` runs the command."""

    def __init__(self, data_dir, port: int):
        self.data_dir, self.port, self.url = data_dir, port, f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "THESEUS_INDEX": "0", "THESEUS_LLM": NO_MODEL}
        self.process = subprocess.Popen([sys.executable, "-m", "theseus", "serve", "--no-watch", "--port", str(port),
                                         "--data", str(data_dir)], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.page("greeter")

    def page(self, name: str) -> str:
        """The app's page (waits for a server that restarts)."""
        def answer():
            try:
                response = httpx.get(f"{self.url}/apps/{name}", headers={"HX-Request": "true"}, timeout=5)
                return response if response.status_code < 500 else None
            except httpx.HTTPError:
                return None
        return wait_until(answer, f"the server to serve /apps/{name}", 60).text

    def change(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "theseus", "change", *args, "--data", str(self.data_dir)],
                              env=self.env, capture_output=True, text=True, timeout=300)

    def rows(self, sql: str) -> list[dict]:
        db = Database(self.data_dir / "theseus.db")
        try:
            return db.query(sql)
        finally:
            db.close()


@pytest.fixture
def served(config):
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "greeter.py").write_text(GREETER)
    server = Served(config.data_dir, free_port())
    yield server
    server.process.terminate()
    server.process.wait(15)


def whole_file(tmp_path, text: str):
    path = tmp_path / f"change-{time.monotonic_ns()}.py"
    path.write_text(text)
    return str(path)


def test_a_good_change_to_a_plugin_is_applied_and_served_after_the_restart(served, tmp_path):
    done = served.change("apply", whole_file(tmp_path, GREETER.replace("Hello from", "Hi from")), "apps/greeter.py")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "applied" in done.stdout and "Hi from the greeter" in served.page("greeter")
    [event] = served.rows("SELECT * FROM events WHERE operation = 'changes.apply'")
    [file] = json.loads(event["args"])["files"]
    assert event["actor"] == "user" and file["path"] == "apps/greeter.py"
    assert "Hello from" in file["before"] and "Hi from" in file["after"]


def test_a_change_that_makes_a_page_fail_is_rolled_back(served, tmp_path):
    broken = GREETER.replace('return "Hello from the greeter"', 'raise RuntimeError("the page breaks")')
    done = served.change("apply", whole_file(tmp_path, broken), "apps/greeter.py")
    assert done.returncode == 1 and "failed" in done.stdout
    assert "apps/greeter.py:10" in done.stdout and "RuntimeError: the page breaks" in done.stdout
    assert "Hello from the greeter" in served.page("greeter")
    assert (served.data_dir / "apps/greeter.py").read_text() == GREETER
    assert not served.rows("SELECT * FROM events WHERE operation LIKE 'changes.%'")  # only what applied is logged


def test_a_change_that_raises_at_import_never_reaches_the_server(served, tmp_path):
    done = served.change("apply", whole_file(tmp_path, 'raise RuntimeError("at import")\n' + GREETER),
                         "apps/greeter.py")
    assert done.returncode == 1 and "apps/greeter.py:1: RuntimeError: at import" in done.stderr
    assert "Hello from the greeter" in served.page("greeter")
    assert (served.data_dir / "apps/greeter.py").read_text() == GREETER
    assert [r["status"] for r in served.rows("SELECT status FROM code_changes")] == ["failed"]


def test_a_plugin_that_fails_to_start_is_rolled_back(served, tmp_path):
    failing = GREETER.replace("    def render", "    def __init__(self, runtime):\n        raise ValueError('no')\n\n"
                                                 "    def render")
    done = served.change("apply", whole_file(tmp_path, failing), "apps/greeter.py")
    assert done.returncode == 1 and "ValueError" in done.stdout
    assert "Hello from the greeter" in served.page("greeter")


def test_a_diff_is_applied_and_reverted(served, tmp_path):
    diff = unified("apps/greeter.py", GREETER, GREETER.replace("Says hello.", "Says hi."))
    diff_file = tmp_path / "greeter.diff"
    diff_file.write_text(diff)
    assert served.change("apply", str(diff_file)).returncode == 0
    assert "Says hi." in (served.data_dir / "apps/greeter.py").read_text()
    reverted = served.change("revert", "1")
    assert reverted.returncode == 0, reverted.stderr
    assert (served.data_dir / "apps/greeter.py").read_text() == GREETER
    assert [r["status"] for r in served.rows("SELECT status FROM code_changes ORDER BY id")] == ["reverted", "applied"]
    assert served.change("revert", "1").returncode == 1  # it is reverted already
    listed = served.change("list").stdout
    assert "#2 applied" in listed and "#1 reverted" in listed


def test_a_path_outside_the_roots_is_refused_and_nothing_is_written(served, tmp_path):
    done = served.change("apply", whole_file(tmp_path, "x = 1\n"), "../outside.py")
    assert done.returncode == 1 and "not a relative path" in done.stderr
    assert not (served.data_dir.parent / "outside.py").exists()
    assert served.rows("SELECT * FROM code_changes") == []


def test_offline_the_same_checks_and_rollback_apply(config, tmp_path):
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "greeter.py").write_text(GREETER)
    env = {**os.environ, "THESEUS_INDEX": "0", "THESEUS_LLM": NO_MODEL}

    def change(text):
        return subprocess.run([sys.executable, "-m", "theseus", "change", "apply", whole_file(tmp_path, text),
                               "apps/greeter.py", "--data", str(config.data_dir)], env=env, capture_output=True,
                              text=True, timeout=300)

    assert change(GREETER.replace("Hello from", "Hi from")).returncode == 0
    broken = change(GREETER.replace('return "Hello from the greeter"', "return 1 / 0"))
    assert broken.returncode == 1 and "ZeroDivisionError" in broken.stdout
    assert "Hi from" in (config.user_apps_dir / "greeter.py").read_text()


# ---- Chip proposes a change ----

GREETING = '''from theseus.workflows.engine import Step, Workflow


class Greeting(Workflow):
    name = "greeting"
    display_name = "Greeting"
    description = "A name, then a greeting."

    steps = [
        Step(id="step_01", label="Your name"),
        Step(
            id="step_02",
            label="Greeting",
            suggest=lambda values: f"Hello, {values['step_01']}!",
        ),
    ]
'''


@pytest.fixture
def config_with_workflow(config):
    config.user_workflows_dir.mkdir(parents=True)
    (config.user_workflows_dir / "greeting.py").write_text(GREETING)
    return config


def test_chip_proposes_a_rewrite_of_one_definition_as_a_diff_and_writes_nothing(config_with_workflow, socket,
                                                                                client, runtime, backend):
    backend.commands = [{"old": "Hello, ", "new": "Hi"}]  # the request's "'Hi' instead of 'Hello'" keeps the comma
    tab = socket()
    tab.send(action="send", message="make the greeting step suggest 'Hi' instead of 'Hello'")
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "workflows/greeting.py:11" in final and "Nothing is written until you click Apply" in final
    assert "Hello, {values" in final and "Hi, {values" in final  # the diff's two lines
    [change] = runtime.changes.recent()
    assert (change.status, change.actor) == ("proposed", "llm")
    assert change.edits[0].after == GREETING.replace("f\"Hello, {", "f\"Hi, {")
    assert (config_with_workflow.user_workflows_dir / "greeting.py").read_text() == GREETING  # nothing written
    rewrite_prompt = backend.prompts[-1][-1]["content"]
    assert 'label="Greeting"' in rewrite_prompt and "Your name" not in rewrite_prompt  # only that definition
    assert backend.schemas[-1]["properties"]["old"]["enum"] == ["step_02", "Greeting", "Hello, ", "!", "step_01"]
    card = client.get(f"/changes/{change.id}/card", headers={"HX-Request": "true"}).text
    assert f'hx-post="/changes/{change.id}/apply"' in card


def test_the_new_text_is_written_as_that_literal_needs_it(config_with_workflow, socket, runtime, backend):
    backend.commands = [{"old": "Hello, ", "new": "{Hey} \"you\", "}]  # braces in an f-string, quotes
    tab = socket()
    tab.send(action="send", message="make the greeting step suggest something else")
    tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    [change] = runtime.changes.recent()
    assert 'f"{{Hey}} \\"you\\", {values' in change.edits[0].after


def test_a_rewrite_that_changes_nothing_is_not_proposed(config_with_workflow, socket, runtime, backend):
    backend.commands = [{"old": "Greeting", "new": "Greeting"}]
    tab = socket()
    tab.send(action="send", message="make the greeting step better")
    assert "changed nothing" in tab.until("changed nothing")
    assert runtime.changes.recent() == []


def test_a_proposed_change_is_applied_by_its_click_as_chips_change(served, tmp_path):
    before = (served.data_dir / "apps/greeter.py").read_text()
    after = before.replace("Hello from", "Hi from")
    db = Database(served.data_dir / "theseus.db")
    try:
        with db.transaction():
            db.conn.execute("INSERT INTO code_changes (time, actor, title, files, status, updated) VALUES "
                            "('2026-01-01', 'llm', 'say hi', ?, 'proposed', '2026-01-01')",
                            (json.dumps([{"path": "apps/greeter.py", "before": before, "after": after}]),))
    finally:
        db.close()
    response = httpx.post(f"{served.url}/changes/1/apply", headers={"HX-Request": "true"}, timeout=60)
    assert response.status_code == 200 and "restarts on it" in response.text
    wait_until(lambda: served.rows("SELECT status FROM code_changes")[0]["status"] != "restarting",
               "the change to be verified", 60)
    assert "Hi from the greeter" in served.page("greeter")
    [event] = served.rows("SELECT actor FROM events WHERE operation = 'changes.apply'")
    assert event["actor"] == "llm"


def test_a_server_that_cannot_restart_itself_applies_nothing(client, config, tmp_path):
    response = client.post("/changes/apply", json={"text": "# a note\n", "path": "docs/note.md"})
    assert response.status_code == 400 and "cannot restart itself" in response.json()["error"]
    response = client.post("/changes/apply", data={"text": "x = 1\n", "path": "apps/x.py"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 400 and 'id="toast"' in response.text
    assert not (config.user_apps_dir / "x.py").exists()
    assert client.get("/changes/1.json").json()["status"] == "failed"


def test_a_hunk_is_as_long_as_its_header_says():
    before = "a\n-- a comment\nb\n"
    diff = unified("apps/q.sql.py", before, "a\nb\n") + "-- \nsignature of a mail\n"  # a removed "-- " line; a trailer
    [patch] = parse(diff)
    assert apply(patch, before, "apps/q.sql.py") == "a\nb\n"


def test_a_diff_that_deletes_a_file_must_show_it_as_it_is(config):
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "old.py").write_text("x = 1\n")
    with pytest.raises(ChangeError, match="not as the diff shows it"):
        prepare(config, unified("apps/old.py", "x = 2\n", None))
    [edit] = prepare(config, unified("apps/old.py", "x = 1\n", None))
    assert edit.after is None


def test_a_symlinked_folder_out_of_a_root_is_refused(config, tmp_path):
    config.user_apps_dir.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (config.user_apps_dir / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ChangeError, match="symlink"):
        target(config, "apps/sub/x.py")


def test_one_change_at_a_time(runtime, config):
    config.user_apps_dir.mkdir(parents=True, exist_ok=True)
    restarts = []
    runtime.restart = lambda: restarts.append(1)  # as `serve` would: the restart itself is for the real tests

    async def both():
        first = await runtime.changes.apply(prepare(config, GREETER, "apps/greeter.py"))
        with pytest.raises(ChangeError, match=f"Change #{first.id} is still being applied"):
            await runtime.changes.apply(prepare(config, "x = 1\n", "apps/other.py"))
        return first

    from tests.conftest import run_async
    first = run_async(both())
    assert first.status == "restarting" and restarts == [1]
    assert not (config.user_apps_dir / "other.py").exists()
