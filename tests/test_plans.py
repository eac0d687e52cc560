"""Chip does what people mean (scripted model): plans of several commands as one group, one Undo and one confirm;
"every task"; asking back instead of acting on the wrong row; follow-ups; names as meant; answers from the
action log; cards that survive a reload and proposals a restart; the approval policy."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_async
from tests.test_chat import FINAL
from theseus.chat import approval
from theseus.chat.commands import PLAN_LIMIT
from theseus.runtime import Runtime

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.timeout(30)


def plan(*commands: dict) -> dict:
    return {"commands": list(commands)}


def add(runtime, *names, done=()):
    ids = [runtime.registry.execute("tasks.insert", {"name": n}).value["id"] for n in names]
    for task_id in done:
        runtime.registry.execute("tasks.toggle", {"id": task_id})
    return ids


def tasks(runtime):
    return [(t["name"], bool(t["done"])) for t in runtime.db.query("SELECT name, done FROM tasks ORDER BY id")]


def say(tab, message: str) -> str:
    tab.send(action="send", message=message)
    return tab.until(FINAL)


def token_of(final: str) -> str:
    return final.split('hx-post="/chat/confirm/')[1].split('"')[0]


def test_a_plan_runs_as_one_group_with_one_card_and_one_undo(socket, client, runtime, backend):
    add(runtime, "buy eggs")
    backend.commands = [plan({"command": "add", "name": "wash car"}, {"command": "add", "name": "pay rent"},
                             {"command": "add", "name": "feed cat"})]
    tab = socket()
    final = say(tab, "add three tasks: wash car, pay rent, and feed cat")
    assert "Done:" in final and "Added task 'pay rent' (#3)" in final and "Undo all 3" in final
    events = runtime.db.query("SELECT plan, actor FROM events WHERE operation = 'tasks.insert' AND actor = 'llm'")
    assert len(events) == 3 and len({e["plan"] for e in events}) == 1 and events[0]["plan"]
    event_id = int(final.split('hx-post="/chat/undo/')[1].split('"')[0])
    response = client.post(f"/chat/undo/{event_id}", headers=HX)
    assert response.status_code == 200 and tasks(runtime) == [("buy eggs", False)]
    assert "Undid: Added task 'wash car' (#2); Added task 'pay rent' (#3); Added task 'feed cat' (#4)" in \
        tab.until("Undid")
    assert runtime.db.value("SELECT COUNT(*) FROM events WHERE plan IS NOT NULL AND undone = 1") == 3


def test_a_refused_command_of_a_plan_says_why_and_the_rest_still_runs(socket, runtime, backend):
    add(runtime, "apples")
    backend.commands = [plan({"command": "add", "name": "bread"}, {"command": "reorder", "ids": [1, 1]})]
    final = say(socket(), "please add bread and put apples twice")
    assert "Added task 'bread' (#2)" in final and "Not done: reorder task" in final and "lists a task twice" in final
    assert tasks(runtime) == [("apples", False), ("bread", False)]


def test_every_task_stands_for_the_rows_it_would_change(socket, runtime, backend):
    add(runtime, "a", "b", "c", done=(2,))
    backend.commands = [{"command": "done", "task": "every task"}]
    final = say(socket(), "mark everything done")
    assert tasks(runtime) == [("a", True), ("b", True), ("c", True)]  # b was done already: not toggled back
    assert "Marked task 'a' (#1) done" in final and "'b' (#2)" not in final
    backend.commands = [{"command": "done", "task": "every task"}]
    say(socket("t2"), "mark all of them as not done")
    assert tasks(runtime) == [("a", False), ("b", False), ("c", False)]


def test_a_plan_with_a_destructive_command_waits_whole_for_one_click(socket, client, runtime, backend):
    add(runtime, "a", "b", "c", done=(1, 3))
    backend.commands = [{"command": "delete", "task": "every done task"}]
    tab = socket()
    final = say(tab, "delete everything that's done")
    assert "Shall I make these 2 changes? Please confirm." in final
    assert "delete task 'a' (#1)" in final and "delete task 'c' (#3)" in final and len(tasks(runtime)) == 3
    response = client.post(f"/chat/confirm/{token_of(final)}", headers=HX)
    assert response.status_code == 200 and tasks(runtime) == [("b", False)]
    card = tab.until("Confirmed")
    assert "Deleted task 'a' (#1)" in card and "Undo all 2" in card
    event_id = runtime.db.value("SELECT MIN(id) FROM events WHERE operation = 'tasks.delete'")
    client.post(f"/chat/undo/{event_id}", headers=HX)
    assert tasks(runtime) == [("a", True), ("b", False), ("c", True)]


def test_a_plan_longer_than_the_limit_is_refused_and_says_so(socket, runtime, backend):
    backend.commands = [plan(*({"command": "add", "name": f"task {n}"} for n in range(PLAN_LIMIT + 1)))]
    final = say(socket(), "add " + ", ".join(f"task {n}" for n in range(PLAN_LIMIT + 1)))
    assert f"That would be {PLAN_LIMIT + 1} changes; I make at most {PLAN_LIMIT} at once" in final
    assert tasks(runtime) == []


def test_a_row_that_does_not_exist_is_asked_about_with_a_one_click_add(socket, client, runtime, backend):
    add(runtime, "buy oat milk", "water the plants")
    backend.commands = [{"command": "rename", "task": "buy oat milk (#1)", "name": "call the plumber on Friday"}]
    tab = socket()
    final = say(tab, "rename the plumber task to call the plumber on Friday")
    assert "I don't see a task “plumber”. Shall I add task “call the plumber on Friday”?" in final
    assert tasks(runtime) == [("buy oat milk", False), ("water the plants", False)]  # no other row renamed
    response = client.post(f"/chat/confirm/{token_of(final)}", headers=HX)
    assert response.status_code == 200 and tasks(runtime)[-1] == ("call the plumber on Friday", False)


def test_yes_accepts_the_offer_under_a_question(socket, runtime, backend):
    add(runtime, "buy oat milk")
    backend.commands = [{"command": "reorder", "task": "buy oat milk (#1)", "to": "top"}]
    tab = socket()
    assert "I don't see a task “renew the car insurance”" in say(tab, "put renew the car insurance at the top")
    final = say(tab, "yes please")
    assert "Added task 'renew the car insurance' (#2)" in final and len(backend.schemas) == 1  # no model needed


def test_two_rows_named_alike_get_a_question_and_a_short_answer_picks_one(socket, runtime, backend):
    add(runtime, "call the dentist", "pay the dentist bill", "buy cat food")
    backend.commands = [{"command": "done", "task": "call the dentist (#1)"}]
    tab = socket()
    final = say(tab, "mark the dentist one done")
    assert "Which task do you mean: #1 “call the dentist” or #2 “pay the dentist bill”?" in final
    assert not any(done for _, done in tasks(runtime))
    assert "Marked task 'pay the dentist bill' (#2) done" in say(tab, "the bill one")
    assert len(backend.schemas) == 1  # the answer needed no model


@pytest.mark.parametrize("answer, picked", [("the second one", 2), ("#1", 1), ("the first", 1), ("call", 1)])
def test_an_answer_picks_by_position_id_or_words(socket, runtime, backend, answer, picked):
    add(runtime, "call the dentist", "pay the dentist bill")
    backend.commands = [{"command": "done", "task": "call the dentist (#1)"}]
    tab = socket()
    say(tab, "the dentist one is done")
    say(tab, answer)
    assert [done for _, done in tasks(runtime)] == [picked == 1, picked == 2]


def test_a_new_request_after_a_question_is_decoded_as_such(socket, runtime, backend):
    add(runtime, "call the dentist", "pay the dentist bill")
    backend.commands = [{"command": "done", "task": "call the dentist (#1)"}, {"command": "add", "name": "buy stamps"}]
    tab = socket()
    say(tab, "dentist done")
    assert "Added task 'buy stamps'" in say(tab, "never mind, add buy stamps to my list instead")


def test_it_means_the_row_changed_last(socket, runtime, backend):
    add(runtime, "call the bank", "water the plants")
    backend.commands = [{"command": "add", "name": "email the landlord"},
                        {"command": "rename", "task": "email the landlord (#3)",
                         "name": "email the landlord about the heating"},
                        {"command": "rename", "task": "call the bank (#1)", "name": "call mom"}]
    tab = socket()
    assert "Added task 'email the landlord' (#3)" in say(tab, "and remind me to email the landlord")
    assert "Renamed task #3" in say(tab, "rename it to email the landlord about the heating")
    assert "Which task do you mean?" in say(tab, "rename it to call mom")  # #1 is not what "it" is now
    assert tasks(runtime)[0] == ("call the bank", False)


def test_the_decoder_is_offered_the_rows_changed_last_for_it(runtime):
    add(runtime, "call the bank", "water the plants", "email the landlord")
    app = runtime.plugins["tasks"]
    choices = app.chip_choices(runtime.registry.get("tasks.update"), "rename it to call the bank", None)
    assert choices["properties"]["task"]["enum"][:2] == ["call the bank (#1)", "#1 call the bank"]
    assert "email the landlord (#3)" in choices["properties"]["task"]["enum"]


@pytest.mark.parametrize("written, kept", [
    ("new task: schedule dentist appointment", "schedule dentist appointment"),
    ("todo: water the plants", "water the plants"),
    ('"fix the bike"', "fix the bike"),
    ("“fix the bike”", "fix the bike"),
    ("Task - buy stamps", "buy stamps"),
])
def test_names_are_what_the_person_meant(socket, runtime, backend, written, kept):
    backend.commands = [{"command": "add", "name": written}]
    say(socket(), f"add {written}")
    assert tasks(runtime) == [(kept, False)]


def test_a_question_about_what_happened_is_answered_from_the_action_log(socket, runtime, backend):
    add(runtime, "buy eggs", "book a haircut")
    runtime.registry.execute("tasks.toggle", {"id": 2}, "user")
    final = say(socket(), "what did I just change?")  # known without the model
    assert "You: Marked task 'book a haircut' \\(\\#2\\) done" in json.loads(json.dumps(
        runtime.db.value("SELECT content FROM messages ORDER BY id DESC LIMIT 1")))
    assert "event #3" in final and backend.prompts == []  # nothing generated: the log is the answer
    assert tasks(runtime) == [("buy eggs", False), ("book a haircut", True)]


def test_cards_survive_a_reload(socket, client, runtime, backend):
    add(runtime, "apples", "bread")
    backend.commands = [plan({"command": "done", "task": "apples (#1)"}, {"command": "done", "task": "bread (#2)"}),
                        {"command": "delete", "task": "apples (#1)"}]
    tab = socket()
    say(tab, "apples and bread are done")
    final = say(tab, "delete apples")
    page = client.get("/apps/tasks").text
    assert "Undo all 2" in page and f'hx-post="/chat/confirm/{token_of(final)}"' in page
    client.post(f"/chat/cancel/{token_of(final)}", headers=HX)
    page = client.get("/apps/tasks").text
    assert "Cancelled: nothing was changed (delete task 'apples' (#1))." in page and "/chat/confirm/" not in page


def test_a_proposal_survives_a_restart_and_is_refused_if_its_row_changed(config, socket, client, runtime, backend):
    add(runtime, "apples", "bread")
    backend.commands = [{"command": "delete", "task": "apples (#1)"}, {"command": "delete", "task": "bread (#2)"}]
    tab = socket()
    first, second = token_of(say(tab, "delete apples")), token_of(say(tab, "delete bread"))
    runtime.registry.execute("tasks.update", {"id": 2, "name": "rye bread"})
    again = Runtime(config, backend)  # as after a restart: the proposals are read from the database
    try:
        run_async(again.chat.confirm_proposal(first))
        assert [t["name"] for t in again.db.query("SELECT name FROM tasks")] == ["rye bread"]
        with pytest.raises(Exception, match="it was changed or deleted"):
            run_async(again.chat.confirm_proposal(second))
    finally:
        again.close()


def test_the_approval_policy_decides_what_waits_for_a_click(socket, client, runtime, backend):
    add(runtime, "apples", "bread", "cheese")
    backend.commands = [{"command": "delete", "task": "apples (#1)"}, {"command": "delete", "task": "bread (#2)"},
                        {"command": "add", "name": "dates"}]
    tab = socket()
    final = say(tab, "delete apples")
    assert "Yes, and don't ask again here" in final
    client.post(f"/chat/confirm/{token_of(final)}", headers=HX, data={"remember": "1"})
    assert "Deleted task 'bread' (#2)" in say(tab, "delete bread")  # not asked again in this conversation
    approval.set_policy(runtime.db, "tasks.insert", approval.ASK)
    assert "Shall I add task “dates”? Please confirm." in say(tab, "add dates")
    assert [name for name, _ in tasks(runtime)] == ["cheese"]
    other = runtime.chat.conversations.create()["id"]
    assert approval.needs_confirm(runtime.db, runtime.registry.get("tasks.delete"), other)


def test_remind_me_to_names_the_new_row_when_the_model_copies_another(socket, runtime, backend):
    add(runtime, "book a haircut")
    backend.commands = [plan({"command": "add", "name": "book a haircut"})]  # a small model copying the state
    assert "Added task 'call the plumber tomorrow' (#2)" in say(socket(), "also remember to call the plumber tomorrow")


def test_everything_read_as_one_row_still_means_every_row(socket, runtime, backend):
    add(runtime, "feed the cat", "mow the lawn")
    backend.commands = [{"command": "done", "task": "feed the cat (#1)"}]
    say(socket(), "mark everything done")
    assert tasks(runtime) == [("feed the cat", True), ("mow the lawn", True)]


def test_undo_that_twice_undoes_two_changes_not_the_undo(socket, runtime, backend):
    backend.commands = [{"command": "add", "name": "milk"}, {"command": "add", "name": "bread"},
                        {"command": "undo"}, {"command": "undo"}]
    tab = socket()
    for message in ("add milk", "add bread", "undo that", "undo that"):
        say(tab, message)
    assert tasks(runtime) == []


def test_rows_listed_together_all_get_the_command_the_model_gave_one(socket, runtime, backend):
    add(runtime, "call the bank", "book the dentist", "buy oat milk")
    backend.commands = [{"command": "done", "task": "buy oat milk (#3)"}]
    say(socket(), "mark the bank and the oat milk done")
    assert tasks(runtime) == [("call the bank", True), ("book the dentist", False), ("buy oat milk", True)]


def test_add_takes_the_name_the_message_gives_over_a_copied_one(socket, runtime, backend):
    add(runtime, "buy stamps")
    backend.commands = [{"command": "add", "name": "buy stamps"}]
    assert "Added task 'buy envelopes' (#2)" in say(socket(), "and add buy envelopes")
