"""Chip acts: schemas from the registry, slash commands, modes, confirmation, undo, refusals (scripted model)."""

from __future__ import annotations

import pytest

from tests.fakes import alternative, verbs
from tests.test_chat import FINAL
from theseus.location import Location

TASKS = Location("tasks")

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.timeout(30)


def tasks(runtime):
    return runtime.db.query("SELECT id, name, done FROM tasks ORDER BY priority, id")


def add(runtime, *names):
    return [runtime.registry.execute("tasks.insert", {"name": n}).value["id"] for n in names]


def test_schemas_are_generated_from_the_registry_and_narrowed_to_the_state(runtime):
    add(runtime, "wash the car", "buy milk")
    app = runtime.plugins["tasks"]
    picked = app.chip_choices(runtime.registry.get("tasks.toggle"), "", TASKS)
    assert picked == {"properties": {"task": {"type": "string", "enum": [
        "wash the car (#1)", "#1 wash the car", "buy milk (#2)", "#2 buy milk"]}}, "required": ["task"]}
    every = app.chip_choices(runtime.registry.get("tasks.toggle"), "mark all of them done", TASKS)
    assert every["properties"]["task"]["enum"][-3:] == ["every task", "every done task", "every task not done"]
    assert app.chip_args(runtime.registry.get("tasks.toggle"), {"task": "buy milk (#2)"}, "got milk", TASKS) == \
        {"id": 2}
    update = app.chip_choices(runtime.registry.get("tasks.update"), "", TASKS)
    assert update["required"] == ["task", "name"] and update["properties"]["name"]["maxLength"] == 200
    listed = app.chip_choices(runtime.registry.get("tasks.list"), "", TASKS)
    assert listed == {"properties": {}, "required": []}


def test_the_decoder_prompt_keeps_its_prefix_and_puts_the_real_rows_last(socket, runtime, backend):
    add(runtime, "wash the car", 'say "hi" <b>')
    tab = socket()
    tab.send(action="send", message="hello there")
    tab.until(FINAL)
    first = backend.prompts[0]  # the decoder's prompt (the chat reply's comes next)
    assert "- done: Mark the task with this id done" in first[0]["content"] and "- chat:" in first[0]["content"]
    assert all("wash the car" not in m["content"] for m in first[:-1])  # the examples speak of sample rows
    assert all("water the plants" not in m["content"] for m in first[-1:])  # a sample row of Tasks' examples
    last = first[-1]["content"]
    assert last.index('#1 "wash the car"') < last.index('#2 "say \\"hi\\" <b>"') < last.index("Message: hello there")
    add(runtime, "buy milk")
    tab.send(action="send", message="and now?")
    tab.until(FINAL)
    second = backend.prompts[2]
    assert second[:-1] == first[:-1]  # instructions, operations and examples: read once, then cached
    assert second[-1]["content"].startswith(last.split("\nMessage:")[0])  # the rows it held are still first


def test_chip_inserts_live_and_offers_undo(socket, runtime, backend):
    backend.commands = [{"command": "chat"}, {"command": "add", "name": "buy oat milk"}, {"command": "chat"}]
    tab = socket()
    tab.send(action="send", message="hm, let me think")
    tab.until(FINAL)
    assert verbs(backend.schemas[0]) == ["add", "show", "chat", "help"]  # no verb that needs a row yet
    tab.send(action="send", message="remind me to buy oat milk")
    final = tab.until(FINAL)
    assert "Added task 'buy oat milk' (#1)." in final and 'hx-post="/chat/undo/' in final
    event = runtime.db.query("SELECT actor, operation FROM events ORDER BY id DESC LIMIT 1")[0]
    assert event == {"actor": "llm", "operation": "tasks.insert"}
    assert verbs(backend.schemas[1]) == ["add"]  # "remind me to ..." can only mean add
    tab.send(action="send", message="oops, undo that")
    tab.until(FINAL)
    assert "undo" in verbs(backend.schemas[2])  # offered in every app, when the message speaks of it


def test_a_destructive_command_waits_for_a_click(socket, client, runtime, backend):
    add(runtime, "old junk")
    backend.commands = [{"command": "delete", "task": "old junk (#1)"}]
    tab = socket()
    tab.send(action="send", message="delete it")
    final = tab.until(FINAL)
    assert "Shall I delete task 'old junk' (#1)? Please confirm." in final
    token = final.split('hx-post="/chat/confirm/')[1].split('"')[0]
    assert len(tasks(runtime)) == 1  # nothing deleted yet
    response = client.post(f"/chat/confirm/{token}", headers=HX)
    assert response.status_code == 200 and 'hx-swap-oob="delete"' in response.text
    assert tasks(runtime) == [] and "Confirmed: Deleted task 'old junk' (#1)." in tab.until("Confirmed")
    assert runtime.db.value("SELECT actor FROM events ORDER BY id DESC LIMIT 1") == "llm"
    assert client.post(f"/chat/confirm/{token}", headers=HX).status_code == 410  # only once


def propose_deleting(tab, backend, label: str) -> str:
    """Have Chip propose deleting a task; the confirm card's token."""
    backend.commands = [{"command": "delete", "task": label}]
    tab.send(action="send", message="delete it")
    return tab.until(FINAL).split('hx-post="/chat/confirm/')[1].split('"')[0]


def rename(runtime, task_id, name):
    runtime.registry.execute("tasks.update", {"id": task_id, "name": name})


@pytest.mark.parametrize("meanwhile, left", [
    (lambda run: rename(run, 2, "b2"), ["a", "b2"]),
    (lambda run: (rename(run, 2, "x"), rename(run, 2, "b")), ["a", "b"]),  # back to the same values
    (lambda run: run.registry.execute("tasks.toggle", {"id": 2}), ["a", "b"]),
    (lambda run: run.registry.execute("tasks.delete", {"id": 2}), ["a"]),
    (lambda run: (run.registry.execute("tasks.delete", {"id": 2}), add(run, "b")), ["a", "b"]),  # same values
])
def test_a_confirm_card_whose_row_changed_since_is_refused(socket, client, runtime, backend, meanwhile, left):
    add(runtime, "a", "b")
    tab = socket()
    token = propose_deleting(tab, backend, "b (#2)")
    meanwhile(runtime)
    response = client.post(f"/chat/confirm/{token}", headers=HX)
    assert response.status_code == 409 and "it was changed or deleted" in response.text
    assert "Not done: since Chip proposed to delete task 'b' (#2)" in tab.until("Not done")
    assert [t["name"] for t in tasks(runtime)] == left
    assert runtime.db.value("SELECT COUNT(*) FROM events WHERE actor = 'llm'") == 0


def test_a_confirm_card_for_a_row_deleted_and_its_id_reused_leaves_the_new_row_alone(socket, client, runtime,
                                                                                     backend):
    add(runtime, "a", "old")
    tab = socket()
    token = propose_deleting(tab, backend, "old (#2)")
    runtime.registry.execute("tasks.delete", {"id": 2})
    assert add(runtime, "new") == [2]  # ids are not AUTOINCREMENT: the new row takes the old one's id
    assert client.post(f"/chat/confirm/{token}", headers=HX).status_code == 409
    assert tasks(runtime) == [{"id": 1, "name": "a", "done": 0}, {"id": 2, "name": "new", "done": 0}]


def test_a_confirm_card_expires(socket, client, runtime, backend):
    add(runtime, "keep me")
    tab = socket()
    token = propose_deleting(tab, backend, "keep me (#1)")
    runtime.chat.agent.proposals.expire(token)  # as if PROPOSAL_TTL had passed
    response = client.post(f"/chat/confirm/{token}", headers=HX)
    assert response.status_code == 410 and "This proposal expired" in response.text
    assert "expired" in tab.until("This proposal expired")
    assert len(tasks(runtime)) == 1 and token not in runtime.chat.agent.proposals


def test_a_cancelled_proposal_changes_nothing(socket, client, runtime, backend):
    add(runtime, "keep me")
    backend.commands = [{"command": "delete", "task": "keep me (#1)"}]
    tab = socket()
    tab.send(action="send", message="remove keep me")
    token = tab.until(FINAL).split('hx-post="/chat/cancel/')[1].split('"')[0]
    assert client.post(f"/chat/cancel/{token}", headers=HX).status_code == 204
    assert "Cancelled: nothing was changed" in tab.until("Cancelled")
    assert len(tasks(runtime)) == 1


def test_an_invalid_command_is_explained_and_a_second_row_of_the_same_name_is_asked_about(socket, runtime, backend):
    add(runtime, "a")
    backend.commands = [{"command": "reorder", "ids": [1, 1]},
                        {"command": "add", "name": "twice"}, {"command": "add", "name": "twice"}]
    tab = socket()
    tab.send(action="send", message="put a twice")
    assert "I couldn't do that: The new order lists a task twice." in tab.until(FINAL)
    tab.send(action="send", message="add twice")
    assert "Added task 'twice'" in tab.until(FINAL)
    tab.send(action="send", message="add twice")
    assert "There already is task 'twice' (#2). Shall I add another one?" in tab.until(FINAL)
    assert [t["name"] for t in tasks(runtime)] == ["a", "twice"]


def test_the_undo_button_reverts_chips_change_in_every_tab(socket, client, runtime, backend):
    backend.commands = [{"command": "add", "name": "regret"}]
    tab = socket()
    tab.send(action="send", message="add regret")
    event_id = int(tab.until(FINAL).split('hx-post="/chat/undo/')[1].split('"')[0])
    response = client.post(f"/chat/undo/{event_id}", headers=HX)
    assert response.status_code == 200 and 'hx-swap-oob="delete"' in response.text
    assert tasks(runtime) == [] and "Undid: Added task 'regret' (#1)." in tab.until("Undid")
    assert client.post(f"/chat/undo/{event_id}", headers=HX).status_code == 400


@pytest.mark.parametrize("message, reply, state", [
    ("/add buy bread", "Added task 'buy bread' (#2)", ["x", "buy bread"]),
    ("/done 1", "Marked task 'x' (#1) done", ["x"]),
    ("/done #1", "Marked task 'x' (#1) done", ["x"]),
    ("/done nine", "'id' must be a whole number", ["x"]),
    ("/list", "#1 x", ["x"]),
    ("/help", "/add NAME", ["x"]),
    ("/frobnicate", "Commands that need no model", ["x"]),
])
def test_slash_commands_need_no_model(socket, runtime, backend, message, reply, state):
    add(runtime, "x")
    tab = socket()
    tab.send(action="send", message=message)
    assert reply in tab.until(FINAL)
    assert [t["name"] for t in tasks(runtime)] == state
    assert backend.prompts == []  # the model was never asked


def test_slash_undo_reverts_chips_last_change(socket, runtime, backend):
    backend.commands = [{"command": "add", "name": "oops"}]
    tab = socket()
    tab.send(action="send", message="add oops")
    tab.until(FINAL)
    tab.send(action="send", message="/undo")
    assert "Undid: Added task 'oops' (#1)" in tab.until(FINAL)
    assert tasks(runtime) == []


def test_chat_mode_never_acts_and_command_mode_always_does(socket, runtime, backend):
    tab = socket()
    tab.send(action="send", message="/chat")
    assert "Mode: <strong>chat</strong>" in tab.until(FINAL)
    backend.commands = [{"command": "add", "name": "milk"}]
    tab.send(action="send", message="add something")
    tab.until(FINAL)
    assert tasks(runtime) == [] and backend.schemas == []
    tab.send(action="send", message="/command add milk please")
    assert "Added task 'milk'" in tab.until(FINAL)
    assert not {"chat", "help"} & set(verbs(backend.schemas[0]))
    tab.send(action="send", message="/auto")
    assert "Mode: <strong>auto</strong>" in tab.until(FINAL)
    assert runtime.db.store["chat_mode"] == "auto"


def test_a_list_command_answers_with_the_data(socket, runtime, backend):
    add(runtime, "alpha", "be*ta")
    backend.commands = [{"command": "show"}]
    tab = socket()
    tab.send(action="send", message="what's on my list?")
    final = tab.until(FINAL)
    assert "#1 alpha" in final and "be*ta" in final and "<em>" not in final


@pytest.mark.parametrize("message, expected", [
    ("check off 25", [25]),
    ("delete #3", [3]),
    ("faucet's fixed 🎉", [6]),
    ("the car is washed", [7]),
    ("take out the trash", [3, 25, 6, 7]),  # no signal: every row stays a candidate
    ("call mom at 5", [3, 25, 6, 7]),
])
def test_candidates_narrow_the_rows_a_message_can_mean(runtime, message, expected):
    rows = [{"id": 3, "name": "pay electricity bill"}, {"id": 25, "name": "cancel gym membership"},
            {"id": 6, "name": "fix the leaky faucet"}, {"id": 7, "name": "wash the car"}]
    found = runtime.plugins["tasks"].find_rows(message, rows)[1] or rows
    assert [r["id"] for r in found] == expected


def test_a_message_is_decoded_in_one_pass_narrowed_to_the_rows_it_names(socket, runtime, backend):
    add(runtime, "wash the car", "buy milk")
    backend.commands = [{"command": "done", "task": "wash the car (#1)"}]
    tab = socket()
    tab.send(action="send", message="the car is washed")
    assert "Marked task 'wash the car' (#1) done" in tab.until(FINAL)
    assert len(backend.schemas) == 1
    assert alternative(backend.schemas[0], "done")["task"]["enum"] == ["wash the car (#1)", "#1 wash the car"]


def test_a_reorder_is_asked_as_one_move_and_becomes_the_new_order(runtime):
    add(runtime, "a", "b", "c")
    app, sort = runtime.plugins["tasks"], runtime.registry.get("tasks.sort")
    assert app.chip_choices(sort, "", TASKS)["properties"]["to"] == {"type": "string", "enum": ["top", "bottom"]}
    assert app.chip_args(sort, {"task": "c (#3)", "to": "top"}, "move #3 up", TASKS) == {"ids": [3, 1, 2]}
    assert app.chip_args(sort, {"task": "#1 a", "to": "bottom"}, "#1 to the end", TASKS) == {"ids": [2, 3, 1]}


@pytest.mark.parametrize("answers, shown", [
    ([{"verb": "add"}], "did not fit the command schema"),
    ([{"command": "launch"}], "which is not one of"),
    ([{"command": "done", "task": "no such row"}], "did not fit the schema"),
])
def test_a_model_answer_outside_the_schema_is_a_clear_failure(socket, runtime, backend, answers, shown):
    add(runtime, "a", "b")
    backend.commands = answers
    tab = socket()
    tab.send(action="send", message="do something")
    notice = tab.until("chat-notice")
    assert "Chip can't answer right now" in notice and shown in notice and 'data-streaming="false"' in notice
    assert [t["name"] for t in tasks(runtime)] == ["a", "b"]
