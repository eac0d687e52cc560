"""The docs against the code: every documented field and hook exists, every existing one is documented, and
the workflow examples in workflows.md load as real plugins and run to the end over HTTP."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from tests.conftest import REPO_ROOT
from tests.waits import wait_until
from theseus.location import Location
from theseus.package_docs import doc_text
from theseus.plugins import Plugin
from theseus.runtime import Runtime
from theseus.workflows.engine import Step

HX = {"HX-Request": "true"}
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)  # language, the rest of the line, code
TITLE = re.compile(r'title="([^"]+)"')


def code_blocks(markdown: str) -> list[tuple[str, str, str]]:
    """(language, title, code) of each fenced block; the title is a `title="name"` after the language, or ''."""
    return [(language, (TITLE.search(rest) or [None, ""])[1], code) for language, rest, code in FENCE.findall(markdown)]


def workflow_examples(markdown: str) -> dict[str, str]:
    """The files of the examples: each python block that defines a Workflow, with the blocks titled as files."""
    blocks = code_blocks(markdown)
    python = [(title or f"example_{n}.py", code) for n, (language, title, code) in enumerate(blocks)
              if language == "python" and re.search(r"^class \w+\(Workflow\)", code, re.M)]
    return dict(python + [(title, code) for language, title, code in blocks if title and language != "python"])


def step_table(markdown: str) -> set[str]:
    """The field names in the first column of workflows.md's "What a `Step` can have" table."""
    table = markdown.split("| field | what it does |", 1)[1].split("\n\n", 1)[0]
    cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {re.match(r"\w+", name).group() for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def plugin_hooks() -> list[str]:
    """The methods a plugin may override: Plugin's own public functions (its properties are not hooks)."""
    return sorted(name for name, value in vars(Plugin).items() if not name.startswith("_")
                  and (inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod))))


# ---- fields and hooks ----

def test_every_step_field_is_in_the_table_and_the_table_has_no_other():
    assert step_table(doc_text("workflows.md")) == {field.name for field in dataclasses.fields(Step)}


@pytest.mark.parametrize("hook", plugin_hooks())
def test_every_plugin_hook_is_documented(hook):
    assert re.search(rf"`{hook}\b", doc_text("plugins.md")), f"plugins.md does not mention `{hook}`"


# ---- the workflow examples run ----

def runtime_with(folder, files: dict[str, str], config, backend):
    """A Theseus whose data dir's `folder` (apps/ or workflows/) holds these files, written before it starts."""
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    runtime = Runtime(config, backend)
    yield runtime
    runtime.close()


@pytest.fixture
def runtime(config, backend):
    """A Theseus whose data dir's workflows/ holds workflows.md's examples."""
    yield from runtime_with(config.user_workflows_dir, workflow_examples(doc_text("workflows.md")), config, backend)


def value_for(step: Step, values: dict) -> str:
    """A value the step accepts: its first choice, its suggestion, or a name."""
    if step.kind == "select":
        return step.choices(values)[0]
    if step.suggest:
        return step.suggest(values)
    return "" if step.kind == "job" else "Example"


def run_to_the_end(client, wf) -> str:
    """Start a run over HTTP, submit every step with a value it accepts, finalize it; the run's key."""
    assert client.post(f"/ops/{wf.name}.start", headers=HX).status_code == 200
    key = wf.runs()[0].key
    for step in wf.steps:
        if step.notes:  # Chip reads the step's notes while the user is on it
            assert "About this step:" in wf.prompt_notes(Location(wf.name, key)), step.notes
        value = value_for(step, wf.find_run(key).values())
        submitted = client.post(f"/ops/{wf.name}.submit", data={"key": key, "step": step.id, "value": value},
                                headers=HX)
        assert submitted.status_code == 200, submitted.text
        wait_until(lambda: wf.find_run(key).is_done(step.id), f"{wf.name} {step.id} to be done")
    assert client.post(f"/ops/{wf.name}.finalize", data={"key": key}, headers=HX).status_code == 200
    return key


def test_the_workflow_examples_load_as_plugins_and_run_to_the_end(client, runtime):
    examples = [p for p in runtime.plugins.values() if type(p).__module__.startswith("theseus_user_workflows.")]
    names = [name for name in workflow_examples(doc_text("workflows.md")) if name.endswith(".py")]
    assert len(examples) == len(names) >= 1 and runtime.broken == []
    for wf in examples:
        assert [step.id for step in wf.steps if wf.notes_problem(step)] == []
        assert wf.find_run(run_to_the_end(client, wf)).finalized


# ---- the plugin examples run ----

def plugin_examples(markdown: str) -> dict[str, str]:
    """The python blocks of plugins.md that define a plugin, by file name (their title, or example_N.py)."""
    return {title or f"example_{n}.py": code for n, (language, title, code) in enumerate(code_blocks(markdown))
            if language == "python" and re.search(r"^class \w+\((BaseApp|Plugin)\)", code, re.M)}


def test_the_contacts_example_in_the_docs_is_the_shipped_example_file():
    assert plugin_examples(doc_text("plugins.md"))["contacts.py"] == \
        (REPO_ROOT / "examples" / "apps" / "contacts.py").read_text()


@pytest.fixture
def plugin_runtime(config, backend):
    """A Theseus whose data dir's apps/ holds plugins.md's examples."""
    yield from runtime_with(config.user_apps_dir, plugin_examples(doc_text("plugins.md")), config, backend)


@pytest.fixture
def plugin_client(plugin_runtime):
    from starlette.testclient import TestClient

    from theseus.app import create_app
    with TestClient(create_app(plugin_runtime.config, plugin_runtime), base_url=plugin_runtime.config.origin,
                    raise_server_exceptions=False) as client:
        yield client


def test_the_plugin_examples_load_with_their_own_tables(plugin_runtime, plugin_client):
    assert plugin_runtime.broken == [] and {"contacts", "journal"} <= set(plugin_runtime.plugins)
    assert plugin_client.get("/apps/journal").status_code == 200
    migrations = plugin_runtime.db.query("SELECT plugin, name FROM plugin_migrations WHERE plugin = 'journal'")
    assert [m["name"] for m in migrations] == ["create table entries", "fill empty days"]
    assert plugin_runtime.registry.get("contacts.insert").schema()["required"] == ["name"]  # `| None`: optional


def test_the_contacts_example_adds_edits_lists_and_deletes_over_http(plugin_runtime, plugin_client):
    post = lambda op, data: plugin_client.post(f"/ops/contacts.{op}", data=data, headers=HX)  # noqa: E731
    assert post("insert", {"name": "Ada Lovelace", "email": "ada@example.com", "phone": ""}).status_code == 200
    row = plugin_runtime.db.query("SELECT * FROM contacts")[0]
    assert (row["name"], row["email"], row["phone"], row["notes"]) == ("Ada Lovelace", "ada@example.com", "", None)
    page = plugin_client.get("/apps/contacts").text
    assert 'hx-post="/ops/contacts.insert"' in page and 'name="email"' in page and "ada@example.com" in page
    edit = plugin_client.get(f"/apps/contacts/{row['id']}/edit", headers=HX).text
    assert 'hx-post="/ops/contacts.update"' in edit and 'value="ada@example.com"' in edit and 'name="notes"' in edit
    assert post("update", {"id": row["id"], "phone": "555-0100"}).status_code == 200
    assert plugin_runtime.db.query("SELECT email, phone FROM contacts") == [
        {"email": "ada@example.com", "phone": "555-0100"}]  # only the field given changed
    refused = post("update", {"id": row["id"], "email": "not an email"})
    assert refused.status_code == 400 and "an email address" in refused.text
    assert post("list", {}).status_code == 200
    assert [r["name"] for r in plugin_runtime.registry.execute("contacts.list").value] == ["Ada Lovelace"]
    assert post("delete", {"id": row["id"]}).status_code == 200
    assert plugin_runtime.db.query("SELECT * FROM contacts") == []
