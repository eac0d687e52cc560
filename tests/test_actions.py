"""The operation registry: declaration, validation, execution, events and broadcast."""

from __future__ import annotations

import asyncio

import pytest

from theseus.actions import OperationError, Result, operation
from theseus.events import recent_events
from theseus.plugins import Plugin


def tasks_of(runtime):
    return runtime.db.query("SELECT id, name, done, priority, profile_id FROM tasks ORDER BY id")


def test_every_required_operation_is_registered(runtime):
    names = set(runtime.registry.operations)
    for op in ("list", "insert", "update", "toggle", "delete", "sort"):
        assert f"tasks.{op}" in names
    for op in ("list", "insert", "update", "delete", "switch"):
        assert f"profiles.{op}" in names


def test_an_operation_is_declared_once_with_types_description_target_and_destructiveness(runtime):
    toggle = runtime.registry.get("tasks.toggle")
    assert toggle.target == "task" and not toggle.destructive
    assert toggle.description.startswith("Mark the task with this id done")
    assert toggle.schema() == {"type": "object", "properties": {"id": {"type": "integer"}},
                               "required": ["id"], "additionalProperties": False}
    assert runtime.registry.get("tasks.delete").destructive
    assert runtime.registry.get("tasks.delete").description == "Delete one task by its id."
    insert = runtime.registry.get("tasks.insert").schema()
    assert insert["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 500}
    assert runtime.registry.get("tasks.sort").schema()["properties"]["ids"]["type"] == "array"


def test_execute_runs_logs_and_returns_fragments(runtime):
    outcome = runtime.registry.execute("tasks.insert", {"name": "  buy milk  "}, actor="llm")
    assert outcome.message == "Added task 'buy milk' (#1)"
    assert tasks_of(runtime) == [{"id": 1, "name": "buy milk", "done": 0, "priority": 0,
                                  "profile_id": runtime.profile_id}]
    assert 'id="task-1"' in outcome.html and "beforeend:#tasks-list-1" in outcome.html
    event = recent_events(runtime.db, 1)[0]
    assert (event["actor"], event["operation"], event["args"]) == ("llm", "tasks.insert", {"name": "buy milk"})
    assert event["changes"] == [{"table": "tasks", "before": None, "after": outcome.value}]


def test_the_event_keeps_a_before_and_after_snapshot(runtime):
    task = runtime.registry.execute("tasks.insert", {"name": "wash the car"}).value
    runtime.registry.execute("tasks.toggle", {"id": task["id"]})
    change = recent_events(runtime.db, 1)[0]["changes"][0]
    assert change["before"]["done"] == 0 and change["after"]["done"] == 1


@pytest.mark.parametrize("name, args, message", [
    ("tasks.insert", {}, "tasks.insert needs 'name'"),
    ("tasks.insert", {"name": ""}, "'name' can't be empty"),
    ("tasks.insert", {"name": "   "}, "'name' can't be empty"),
    ("tasks.insert", {"name": "x" * 10_240}, "'name' is too long: 10,240 characters, the limit is 500"),
    ("tasks.insert", {"name": 5}, "'name' must be text"),
    ("tasks.insert", {"name": "a\x00b"}, "must not contain NUL"),
    ("tasks.insert", {"name": "ok", "done": 1}, "unknown argument 'done'"),
    ("tasks.insert", ["not", "a", "dict"], "arguments must be an object"),
    ("tasks.toggle", {"id": "abc"}, "'id' must be a whole number"),
    ("tasks.toggle", {"id": True}, "'id' must be a whole number"),
    ("tasks.toggle", {"id": 1.5}, "'id' must be a whole number"),
    ("tasks.toggle", {"id": 999}, "There is no task #999 in the current profile."),
    ("tasks.toggle", {"id": 10**30}, "'id' is out of range"),
    ("tasks.sort", {"ids": [1, 1]}, "lists a task twice"),
    ("tasks.sort", {"ids": [404]}, "There is no task #404"),
    ("tasks.update", {"id": 1, "name": "  "}, "'name' can't be empty"),
    ("profiles.switch", {"id": 77}, "There is no profile #77."),
    ("nope.nothing", {}, "There is no operation called 'nope.nothing'."),
])
def test_bad_arguments_get_a_clear_error_and_change_nothing(runtime, name, args, message):
    runtime.registry.execute("tasks.insert", {"name": "existing"})
    before = (tasks_of(runtime), runtime.db.value("SELECT COUNT(*) FROM events"))
    with pytest.raises(OperationError) as error:
        runtime.registry.execute(name, args)
    assert message in error.value.message and 400 <= error.value.status < 500
    assert (tasks_of(runtime), runtime.db.value("SELECT COUNT(*) FROM events")) == before


def test_unicode_and_emoji_names_round_trip(runtime):
    name = "🥛 Milch kaufen — 牛乳 <b>&amp;</b>"
    outcome = runtime.registry.execute("tasks.insert", {"name": name})
    assert tasks_of(runtime)[0]["name"] == name
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in outcome.html and "<b>" not in outcome.html


def test_tasks_belong_to_the_current_profile(runtime):
    run = runtime.registry.execute
    home_task = run("tasks.insert", {"name": "home task"}).value
    work = run("profiles.insert", {"name": "Work"}).value
    run("profiles.switch", {"id": work["id"]})
    assert run("tasks.list").value == []
    with pytest.raises(OperationError, match="no task #1 in the current profile"):
        run("tasks.toggle", {"id": home_task["id"]})
    with pytest.raises(OperationError, match="There is no task #1 in this list"):
        run("tasks.sort", {"ids": [home_task["id"]]})
    run("tasks.insert", {"name": "work task"})
    assert [t["name"] for t in run("tasks.list").value] == ["work task"]


def test_sort_reorders_and_leaves_unlisted_rows_after(runtime):
    ids = [runtime.registry.execute("tasks.insert", {"name": n}).value["id"] for n in "abcd"]
    outcome = runtime.registry.execute("tasks.sort", {"ids": [ids[2], ids[0]]})
    assert [t["name"] for t in runtime.registry.execute("tasks.list").value] == ["c", "a", "b", "d"]
    assert 'hx-swap-oob="true"' in outcome.html and 'id="tasks-list-1"' in outcome.html


def test_deleting_a_profile_deletes_its_tasks_and_keeps_one_profile(runtime):
    run = runtime.registry.execute
    home = runtime.profile_id
    work = run("profiles.insert", {"name": "Work"}).value
    run("profiles.switch", {"id": work["id"]})
    run("tasks.insert", {"name": "w1"})
    outcome = run("profiles.delete", {"id": work["id"]})
    assert outcome.message == "Deleted profile 'Work' (#2) and its 1 task"
    assert runtime.profile_id == home and "profile" in outcome.signals
    assert runtime.db.value("SELECT COUNT(*) FROM tasks WHERE profile_id = ?", (work["id"],)) == 0
    with pytest.raises(OperationError, match="can't delete the last profile"):
        run("profiles.delete", {"id": home})


class Exploding(Plugin):
    name = "exploding"

    @operation(target="task")
    def insert_then_fail(self, ctx, name: str) -> Result:
        """Insert a task, then fail."""
        ctx.insert("tasks", {"name": name, "profile_id": ctx.profile_id})
        raise RuntimeError("disk on fire")

    @operation(target="task")
    def insert_badly_rendered(self, ctx, name: str) -> Result:
        """Insert a task whose fragment cannot be rendered."""
        return Result("inserted", ctx.insert("tasks", {"name": name, "profile_id": ctx.profile_id}))

    def fragments(self, outcome):
        if outcome.operation == "exploding.insert_badly_rendered":
            raise ValueError("template bug")
        return []


@pytest.mark.parametrize("op", ["exploding.insert_then_fail", "exploding.insert_badly_rendered"])
def test_an_operation_that_fails_midway_leaves_nothing_behind(runtime, op):
    runtime.add_plugin(Exploding(runtime))
    events = runtime.db.value("SELECT COUNT(*) FROM events")
    with pytest.raises(OperationError) as error:
        runtime.registry.execute(op, {"name": "half"})
    assert error.value.status == 500 and "nothing was changed" in error.value.message
    assert tasks_of(runtime) == [] and runtime.db.value("SELECT COUNT(*) FROM events") == events


def test_a_plugin_cannot_take_an_operation_name_twice(runtime):
    with pytest.raises(ValueError, match="already"):
        runtime.add_plugin(type(runtime.plugins["tasks"])(runtime))


def test_execute_broadcasts_to_every_tab_but_the_one_that_acted(runtime):
    async def scenario():
        mine, other = runtime.broadcaster.subscribe("mine"), runtime.broadcaster.subscribe("other")
        await asyncio.to_thread(runtime.registry.execute, "tasks.insert", {"name": "sync me"}, "user", "mine")
        message = await other.get(timeout=2)
        assert message.event == "sync" and "sync me" in message.data
        with pytest.raises(TimeoutError):
            await mine.get(timeout=0.2)
        await asyncio.to_thread(runtime.registry.execute, "profiles.switch", {"id": runtime.profile_id}, "llm")
        events = {(await mine.get(timeout=2)).event for _ in range(2)}
        assert events == {"sync", "profile"}
        mine.close(), other.close()
        assert runtime.broadcaster.count == 0
    asyncio.run(scenario())


def test_a_message_encodes_as_server_sent_event():
    from theseus.events import Message
    assert Message("sync", "<a>\n<b>").encode() == "event: sync\ndata: <a>\ndata: <b>\n\n"
    assert Message("profile").encode() == "event: profile\ndata: \n\n"


def test_undo_reverts_an_insert_a_toggle_and_a_profile_deletion(runtime):
    run = runtime.registry.execute
    task = run("tasks.insert", {"name": "keep me"}, actor="llm").value
    toggled = run("tasks.toggle", {"id": task["id"]}, actor="llm")
    assert run("history.undo", {}).message == "Undid: Marked task 'keep me' (#1) done"
    assert runtime.db.value("SELECT done FROM tasks") == 0
    run("history.undo", {})  # now the insert, Chip's most recent change not undone yet
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0
    with pytest.raises(OperationError, match="already undone"):
        run("history.undo", {"event_id": toggled.event_id})
    with pytest.raises(OperationError, match="Chip has made no change"):
        run("history.undo", {})

    work = run("profiles.insert", {"name": "Work"}).value
    run("profiles.switch", {"id": work["id"]})
    for name in ("a", "b"):
        run("tasks.insert", {"name": name})
    deleted = run("profiles.delete", {"id": work["id"]})
    run("history.undo", {"event_id": deleted.event_id})
    assert runtime.db.query("SELECT name, profile_id FROM tasks ORDER BY id") == [
        {"name": "a", "profile_id": work["id"]}, {"name": "b", "profile_id": work["id"]}]


def test_undo_refuses_when_the_row_changed_since(runtime):
    run = runtime.registry.execute
    task = run("tasks.insert", {"name": "first"}, actor="llm").value
    renamed = run("tasks.update", {"id": task["id"], "name": "second"}, actor="llm")
    run("tasks.toggle", {"id": task["id"]})  # by the user, after Chip's rename
    with pytest.raises(OperationError, match="Task #1 has changed since"):
        run("history.undo", {"event_id": renamed.event_id})
    assert runtime.db.query("SELECT name, done FROM tasks") == [{"name": "second", "done": 1}]


def test_an_undone_delete_puts_the_row_back_in_its_place(runtime):
    run = runtime.registry.execute
    ids = [run("tasks.insert", {"name": n}).value["id"] for n in "abc"]
    deleted = run("tasks.delete", {"id": ids[0]})
    undo = run("history.undo", {"event_id": deleted.event_id})
    assert 'id="tasks-list-1"' in undo.html and 'hx-swap-oob="true"' in undo.html  # the list, re-rendered
    assert [t["name"] for t in run("tasks.list").value] == ["a", "b", "c"]
