"""Plugin discovery: built-ins and user plugins load the same way; a broken one never crashes the server."""

from __future__ import annotations

import textwrap

import pytest

from tests.fakes import ScriptedBackend
from theseus.runtime import Runtime

GOOD = '''
from typing import Annotated
from fasthtml.common import H2, Li, Span
from theseus.actions import Result, Text, operation
from theseus.apps.crud import BaseApp

class Notes(BaseApp):
    name = "notes"
    display_name = "Notes"
    table = "notes"
    item = "note"
    per_profile = True

    @operation(target="note")
    def insert(self, ctx, name: Annotated[str, Text(min_len=1, max_len=50)]) -> Result:
        """Add a note."""
        row = self.insert_item(ctx, name=name)
        return Result(f"Noted {row['name']}", row)
'''

BROKEN = {
    "syntax.py": "def oops(:\n",
    "missing.py": "import no_such_module_here\n",
    "raises.py": "raise RuntimeError('plugin exploded at import')\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "init_fails.py": textwrap.dedent('''
        from theseus.plugins import Plugin
        class InitFails(Plugin):
            name = "init_fails"
            def __init__(self, runtime):
                raise ValueError("cannot start")
        '''),
    "duplicate.py": textwrap.dedent('''
        from theseus.plugins import Plugin
        class Tasks(Plugin):
            name = "tasks"
        '''),
}


@pytest.fixture
def user_apps(config):
    folder = config.user_apps_dir
    folder.mkdir(parents=True)
    (folder / "notes.py").write_text(GOOD)
    for filename, source in BROKEN.items():
        (folder / filename).write_text(source)
    return folder


def test_user_plugins_load_like_built_ins_and_broken_ones_are_listed(user_apps, config):
    runtime = Runtime(config, ScriptedBackend())
    assert list(runtime.plugins) == ["tasks", "profiles", "history", "changes", "notes", "hello", "madlibs", "longjob",
                                    "linkgraph"]
    assert "notes.insert" in runtime.registry.operations and "notes.sort" in runtime.registry.operations
    broken = {b.name: b.error for b in runtime.broken}
    assert set(broken) == {"syntax", "missing", "raises", "exits", "init_fails", "duplicate"}
    assert broken["syntax"].startswith("SyntaxError") and "syntax.py:1" in broken["syntax"]
    assert "No module named 'no_such_module_here'" in broken["missing"]
    assert "plugin exploded at import" in broken["raises"] and "raises.py:1" in broken["raises"]
    assert broken["exits"].startswith("SystemExit")
    assert "cannot start" in broken["init_fails"]
    assert "an app called 'tasks' is already loaded" in broken["duplicate"]
    runtime.close()


def test_the_ui_shows_broken_plugins_and_the_rest_works(user_apps, config):
    from starlette.testclient import TestClient
    from theseus.app import create_app
    with TestClient(create_app(config, Runtime(config, ScriptedBackend())), base_url=config.origin) as client:
        html = client.get("/apps/tasks").text
        assert "syntax (broken)" in html and "SyntaxError" in html and "/apps/notes" in html
        assert client.post("/ops/notes.insert", data={"name": "a note"}).status_code == 200
        assert "a note" in client.get("/apps/notes").text
        assert client.post("/ops/tasks.insert", data={"name": "still works"}).status_code == 200
