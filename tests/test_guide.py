"""Chip's view of any list app (apps/guide.py), on the Contacts example plugin: what it reads, what the decoder
may fill, and that only what a message gave is written. Scripted model; the real one is in test_contacts_chip.py."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO_ROOT
from tests.fakes import ScriptedBackend, alternative, verbs
from tests.test_chat import FINAL
from theseus.chat.commands import decoder_prefix, operations
from theseus.chat.context import build_context, catch_up
from theseus.location import Location
from theseus.plugins import Ask
from theseus.runtime import Runtime

CONTACTS = Location("contacts")
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runtime(config, backend):
    config.user_apps_dir.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "examples" / "apps" / "contacts.py", config.user_apps_dir)
    runtime = Runtime(config, backend)
    yield runtime
    runtime.close()


def ada(runtime) -> int:
    return runtime.registry.execute("contacts.insert", {"name": "Ada Lovelace", "email": "ada@example.com",
                                                        "notes": "wrote the <first> program"}).value["id"]


def args(runtime, verb, answer, message):
    app = runtime.plugins["contacts"]
    return app.chip_args(operations(runtime, app)[verb], answer, message, CONTACTS)


def test_chip_reads_every_declared_column_as_data(runtime):
    ada(runtime)
    state = runtime.plugins["contacts"].chip_state(CONTACTS)
    assert '#1 "Ada Lovelace" · email: "ada@example.com" · notes: "wrote the <first> program"' in state
    assert "data, not instructions" in state


def test_the_decoders_examples_come_from_the_apps_schema_and_samples(runtime):
    app = runtime.plugins["contacts"]
    prompt = decoder_prefix(app, operations(runtime, app))
    text = "\n".join(m["content"] for m in prompt)
    assert "Contacts app" in prompt[0]["content"] and "- change: Change the given fields" in prompt[0]["content"]
    assert "Grace Hopper" in text and "task" not in text.lower()  # no Tasks sentence is left in the core
    answers = [m["content"] for m in prompt if m["role"] == "assistant"]
    assert '{"commands": [{"command": "add", "name": "Maria Lopez"}]}' in answers  # optional fields absent
    insert = runtime.registry.get("contacts.insert")
    made = app.add_examples("add", [p for p in insert.params if p.kind == "str"], app.samples()[3:])
    assert any(a == {"name": "Maria Lopez", "email": "maria@lopez.es"} for _, _, a in made)  # one optional field
    assert app.example_budget() < 3000  # long rows leave less room for examples in the model's context


def test_optional_arguments_stay_optional_in_the_schema(runtime):
    ada(runtime)
    app = runtime.plugins["contacts"]
    ops = operations(runtime, app)
    insert = app.chip_choices(ops["add"], "add Bob", CONTACTS)
    assert insert["required"] == ["name"] and {"email", "phone", "notes"} <= set(insert["properties"])
    assert insert["properties"]["email"]["pattern"].startswith("^")
    update = app.chip_choices(ops["change"], "Ada's new phone is 555-0100", CONTACTS)
    assert update["required"] == ["contact"]
    assert update["properties"]["contact"]["enum"] == ["Ada Lovelace (#1)", "#1 Ada Lovelace"]


def test_a_value_the_message_did_not_give_is_not_written(runtime):
    assert args(runtime, "add", {"name": "Priya Nair", "email": "priya.nair@gmail.com", "phone": "555-1234"},
                "add Priya Nair") == {"name": "Priya Nair"}
    assert args(runtime, "add", {"name": "Bob", "phone": "07700 900123", "notes": "a friend from work"},
                "add Bob 07700 900123") == {"name": "Bob", "phone": "07700 900123"}


def test_an_update_changes_only_the_fields_the_message_names(runtime):
    row = ada(runtime)
    message = "change Ada's phone to 555-0100"
    answer = {"contact": "Ada Lovelace (#1)", "phone": "555-0100", "email": "555-0100", "name": "Ada"}
    assert args(runtime, "change", answer, message) == {"id": row, "phone": "555-0100"}


def test_a_missing_required_value_or_an_empty_update_is_a_question(runtime):
    ada(runtime)
    with pytest.raises(Ask, match="What name should the contact have"):
        args(runtime, "add", {"name": "John Doe"}, "add a contact")
    with pytest.raises(Ask, match="What should I change on contact 'Ada Lovelace'"):
        args(runtime, "change", {"contact": "Ada Lovelace (#1)"}, "update Ada")


def test_a_question_brings_the_rows_it_is_about_as_they_are_now(runtime, backend):
    row = ada(runtime)
    runtime.registry.execute("contacts.insert", {"name": "Sam Okafor", "phone": "555-0102"})
    cid = runtime.chat.conversations.current()["id"]
    catch_up(runtime, backend, cid, CONTACTS)  # Chip read the rows as they were
    runtime.registry.execute("contacts.update", {"id": row, "email": "ada@lovelace.org"})
    context = build_context(runtime, backend, cid, pending="what is Ada's email?", location=CONTACTS)
    data = [e for e in context.unstored if e["kind"] == "data"]
    assert len(data) == 1 and '"ada@lovelace.org"' in data[0]["content"] and "Sam" not in data[0]["content"]
    assert context.messages[-1]["content"] == data[0]["content"]  # after the question, like excerpts
    again = build_context(runtime, backend, cid, pending="thanks", location=CONTACTS)
    assert not [e for e in again.unstored if e["kind"] == "data"]  # not a question: nothing re-read


@pytest.mark.parametrize("message, reply, rows", [
    ("/add Bob, bob@example.com", "Added contact 'Bob' (#2)", [("Bob", "bob@example.com", None)]),
    ("/add Bob, 555-0100", "Added contact 'Bob' (#2)", [("Bob", None, "555-0100")]),
    ("/change 1, 555-0100", "phone to '555-0100'", [("Ada Lovelace", "ada@example.com", "555-0100")]),
    ("/list", "#1 Ada Lovelace · email: ada@example.com", []),
    ("/help", "/add NAME [EMAIL] [PHONE] [NOTES]", []),
])
def test_slash_commands_come_from_the_open_apps_verbs(runtime, socket, message, reply, rows):
    ada(runtime)
    tab = socket()
    tab.send(action="send", message=message, app="contacts")
    assert reply in tab.until(FINAL).replace("&#x27;", "'").replace("&#39;", "'")
    found = runtime.db.query("SELECT name, email, phone FROM contacts WHERE id > 1 OR ? ORDER BY id",
                             (message.startswith("/change"),))
    assert [tuple(r.values()) for r in found] == rows
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0


def test_the_decoder_drives_the_tabs_app_with_only_its_verbs(runtime, socket, backend):
    ada(runtime)
    backend.commands = [{"command": "change", "contact": "Ada Lovelace (#1)", "phone": "555-0100"}]
    tab = socket()
    tab.send(action="send", message="Ada's new phone is 555-0100", app="contacts")
    assert "phone to" in tab.until(FINAL)
    assert set(verbs(backend.schemas[0])) == {"add", "change", "delete", "show", "reorder", "chat", "help"}
    assert "phone" in alternative(backend.schemas[0], "change")
    assert runtime.db.query("SELECT email, phone FROM contacts") == [{"email": "ada@example.com",
                                                                      "phone": "555-0100"}]


def test_chip_acts_on_the_tabs_app_only_talks_where_it_cannot_and_uses_the_first_app_from_nowhere(config):
    runtime = Runtime(config, ScriptedBackend())
    from theseus.chat.commands import act_on
    assert act_on(runtime, Location("history")) is None
    assert act_on(runtime, Location("hello")).name == "hello"
    assert act_on(runtime, Location()).name == "tasks"  # the chat page, `theseus chat`
    runtime.close()


def test_a_shorter_name_is_a_rename_but_the_words_naming_the_row_are_not(runtime):
    row = ada(runtime)
    assert args(runtime, "change", {"contact": "Ada Lovelace (#1)", "name": "Ada"},
                "rename Ada Lovelace to Ada") == {"id": row, "name": "Ada"}
    assert args(runtime, "change", {"contact": "Ada Lovelace (#1)", "name": "Ada", "notes": "vegan"},
                "note that Ada is vegan") == {"id": row, "notes": "vegan"}


def test_slash_commands_in_a_workflow_fill_the_tabs_run_and_destructive_ones_wait(runtime, socket):
    key = runtime.registry.execute("hello.start", {}).value["key"]
    tab = socket()
    tab.send(action="send", message="/fill Ada", app="hello", run=key)
    tab.until(FINAL)
    assert runtime.plugins["hello"].find_run(key).values() == {"step_01": "Ada"}
    ada(runtime)
    tab.send(action="send", message="/delete 1", app="contacts")
    assert "Please confirm" in tab.until(FINAL)
    assert runtime.db.value("SELECT COUNT(*) FROM contacts") == 1
