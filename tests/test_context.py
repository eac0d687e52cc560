"""Chip's context is append-only: a prefix from the code, then the transcript, which only grows (scripted model)."""

from __future__ import annotations

import pytest

from theseus.chat.context import FULL, KEEP, build_context, catch_up, prefix
from tests.waits import wait_until
from theseus.location import Location

pytestmark = pytest.mark.timeout(60)
FINAL = r'hx-swap-oob="outerHTML:#message-s\d+"'
TASKS = Location("tasks")


def test_the_prefix_depends_on_the_code_only(runtime):
    first = prefix(runtime)["content"]
    assert "You are Chip" in first and "Theseus crash course" in first
    assert "- Tasks: " in first and "done" in first  # the operations of every app
    runtime.registry.execute("tasks.insert", {"name": "buy oat milk"})
    other = runtime.registry.execute("profiles.insert", {"name": "Work"}).value["id"]
    runtime.registry.execute("profiles.switch", {"id": other})
    assert prefix(runtime)["content"] == first and "oat milk" not in first


def test_news_enters_as_new_messages_after_what_chip_read(runtime, backend):
    conversations, run = runtime.chat.conversations, runtime.registry.execute
    cid = conversations.current()["id"]
    run("tasks.insert", {"name": "buy oat milk"})
    catch_up(runtime, backend, cid, TASKS)
    conversations.add(cid, "user", "hello")
    before = build_context(runtime, backend, cid, location=TASKS).messages
    assert [m["content"].split("\n")[0] for m in before[1:]] == [
        "Actions in the app since the last message (oldest first):", "The state now:", "hello"]
    assert "the user: Added task 'buy oat milk' (#1)" in before[1]["content"]
    assert '#1 "buy oat milk"' in before[2]["content"]  # the open app's rows, quoted as data
    assert "default profile" not in str(before)  # Theseus's own bootstrapping is not news
    run("tasks.toggle", {"id": 1}, actor="llm")
    catch_up(runtime, backend, cid, TASKS)
    after = build_context(runtime, backend, cid, location=TASKS).messages
    assert after[:len(before)] == before and len(after) == len(before) + 1  # the state did not move: no new note
    assert "Chip: Marked task 'buy oat milk' (#1) done" in after[-1]["content"]
    run("tasks.toggle", {"id": 1}, actor="agent")  # an MCP client's change
    catch_up(runtime, backend, cid, TASKS)
    after = build_context(runtime, backend, cid, location=TASKS).messages
    assert "an outside agent: Marked task 'buy oat milk' (#1) not done" in after[-1]["content"]
    catch_up(runtime, backend, cid, TASKS)
    assert build_context(runtime, backend, cid, location=TASKS).messages == after  # nothing new, nothing added


@pytest.mark.parametrize("move", [
    lambda runtime: Location("hello", runtime.registry.execute("hello.start").value["key"]),  # another app
    lambda runtime: (runtime.registry.execute("profiles.switch", {  # another profile
        "id": runtime.registry.execute("profiles.insert", {"name": "Work"}).value["id"]}), TASKS)[1],
])
def test_a_new_place_brings_a_new_state_note_and_leaves_the_old_one(runtime, backend, move):
    cid = runtime.chat.conversations.current()["id"]
    catch_up(runtime, backend, cid, TASKS)
    before = build_context(runtime, backend, cid, location=TASKS).messages
    location = move(runtime)
    catch_up(runtime, backend, cid, location)
    after = build_context(runtime, backend, cid, location=location).messages
    assert after[:len(before)] == before and after[-1]["content"].startswith("The state now:")
    assert after[-1]["content"] != before[-1]["content"]


def test_turn_after_turn_the_prompt_only_grows(socket, client, runtime, backend):
    runtime.registry.execute("tasks.insert", {"name": "wash the car"})
    backend.replies = ["Hi! I can help with your tasks.", "Sure.", "You washed the car.", "Try the Hello workflow."]
    backend.commands = [{"command": "chat"}, {"command": "add", "name": "buy oat milk"}, {"command": "chat"},
                        {"command": "chat"}, {"command": "chat"}]
    tab = socket()
    for message, where in [("hi Chip", {"app": "tasks"}), ("add buy oat milk", {"app": "tasks"}),
                           ("what can I do next?", {"app": "tasks"}), (None, {"app": "tasks"}),
                           ("what do you think of that?", {"app": "tasks"}), ("and here?", {"app": "hello"})]:
        if message is None:  # meanwhile the user works in the app, then pokes
            runtime.registry.execute("tasks.toggle", {"id": 1})
            client.post("/poke", data=where)
        else:
            tab.send(action="send", message=message, **where)
        tab.until(FINAL)
    prompts = backend.chat_prompts
    assert len(prompts) == 5
    for earlier, later in zip(prompts, prompts[1:]):
        assert later[:len(earlier)] == earlier  # every earlier message kept, unchanged, in place
    last = [m["content"] for m in prompts[-1]]
    assert "add buy oat milk" in last and "Added task 'buy oat milk' (#2)." in last  # the command turn, in order
    assert any("the user: Marked task 'wash the car' (#1) done" in m for m in last)
    assert last[-2].startswith("The state now:") and "Hello" in last[-2] and last[-1] == "and here?"


def test_a_full_transcript_sets_a_block_aside_at_once_and_says_so(socket, runtime, backend):
    backend.n_ctx = 512 + backend.count_tokens(prefix(runtime)["content"]) + 1000  # room for ~1000 tokens
    backend.replies = ["r" * 300]
    tab = socket()
    starts, frames = [], []
    for turn in range(24):
        tab.send(action="send", message=f"message {turn} " + "m" * 290)
        frames.append(tab.until(FINAL))
        starts.append(runtime.db.value("SELECT context_start FROM conversations"))
    moves = [i for i, (a, b) in enumerate(zip(starts, starts[1:]), 1) if a != b]
    prompts = backend.chat_prompts

    def size(prompt):
        return sum(backend.count_tokens(m["content"]) + 4 for m in prompt[1:])
    assert moves and all(size(p) <= 1000 for p in prompts)
    for turn, (earlier, later) in enumerate(zip(prompts, prompts[1:]), 1):
        if turn not in moves:
            assert later[:len(earlier)] == earlier
    for turn in moves:  # one big block at once: from nearly full to the share kept, with the turn's own message
        assert size(prompts[turn - 1]) >= (FULL - 0.25) * 1000 and size(prompts[turn]) <= (KEEP + 0.2) * 1000
    assert "I set aside its oldest" in "".join(tab.frames)


def test_the_reply_place_shows_how_far_a_long_read_got(socket, backend):
    backend.progress = [0.25, 0.5, 1.0]
    tab = socket()
    tab.send(action="send", message="hello")
    half = tab.until("Reading… 50%")
    assert '<progress value="50" max="100"></progress>' in half and 'id="message-s1-body"' in half
    tab.until(FINAL)


def starts_with(prompt: list[dict], lead: list[dict]) -> bool:
    """Whether a prompt starts with these messages, the last of which may continue in the prompt."""
    *whole, last = lead
    return prompt[:len(whole)] == whole and prompt[len(whole)]["role"] == last["role"] \
        and prompt[len(whole)]["content"].startswith(last["content"])


def test_at_start_chip_reads_ahead_exactly_what_the_next_turn_starts_with(socket, runtime, backend):
    import asyncio
    import threading
    wait_until(lambda: len(backend.warmed) == 2, "the read-ahead as the app started")
    runtime.registry.execute("tasks.insert", {"name": "wash the car"})
    runtime.chat.conversations.add(runtime.chat.conversations.current()["id"], "user", "earlier words")
    runtime.db.store["last_app"] = "tasks"
    reader = threading.Thread(target=asyncio.run, args=(runtime.chat.read_ahead(),))  # its own event loop
    reader.start()
    reader.join()
    (chat_role, chat), (decoder_role, decoder) = backend.warmed[-2:]  # (the app read ahead at start too)
    assert (chat_role, decoder_role) == ("chat", "decoder")
    assert decoder[-1]["content"].startswith("The tasks now") and "wash the car" in decoder[-1]["content"]
    tab = socket()
    tab.send(action="send", message="hello", app="tasks")
    tab.until(FINAL)
    assert starts_with(backend.prompts[0], decoder) and len(backend.prompts[0]) == len(decoder)
    assert backend.chat_prompts[0][:len(chat)] == chat and chat[-1]["content"].startswith("The state now:")


def test_after_each_turn_chip_reads_ahead_what_the_next_one_starts_with(socket, runtime, backend):
    backend.commands = [{"command": "add", "name": "buy oat milk"}, {"command": "chat"}]
    tab = socket()
    tab.send(action="send", message="add buy oat milk", app="tasks")
    tab.until(FINAL)
    wait_until(lambda: backend.warmed and backend.warmed[-1][0] == "decoder"
               and "buy oat milk" in backend.warmed[-1][1][-1]["content"], "the read-ahead after the turn")
    (_, chat), (_, decoder) = backend.warmed[-2:]
    assert "buy oat milk" in decoder[-1]["content"]  # the rows as the command left them
    assert [m["content"] for m in chat[-2:]] == [  # Chip's reply, and the news the next turn will bring
        "Added task 'buy oat milk' (#1).", chat[-1]["content"]] and "Chip: Added task" in chat[-1]["content"]
    tab.send(action="send", message="thanks", app="tasks")
    tab.until(FINAL)
    assert starts_with(backend.prompts[-2], decoder) and backend.chat_prompts[-1][:len(chat)] == chat


def test_a_new_conversation_starts_with_the_latest_actions_only(runtime, backend):
    from theseus.chat.context import FIRST_EVENTS
    for i in range(FIRST_EVENTS + 5):
        runtime.registry.execute("tasks.insert", {"name": f"task {i}"})
    cid = runtime.chat.conversations.current()["id"]
    catch_up(runtime, backend, cid, TASKS)
    note = build_context(runtime, backend, cid, location=TASKS).messages[1]["content"]
    assert note.count("\n- ") == FIRST_EVENTS and f"task {FIRST_EVENTS + 4}" in note and "task 4'" not in note
    for i in range(3):
        runtime.registry.execute("tasks.toggle", {"id": i + 1})
    catch_up(runtime, backend, cid, TASKS)
    assert build_context(runtime, backend, cid, location=TASKS).messages[-1]["content"].count("\n- ") == 3
