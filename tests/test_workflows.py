"""The workflow engine through the registry and over HTTP: forward-only steps, revert, finalize, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.fakes import alternative, verbs
from theseus.actions import NotFound, OperationError
from theseus.chat.context import state_heading
from theseus.location import Location
from theseus.workflows.cards import final_card_id, run_id, runs_list_id, step_card_id
from theseus.workflows.engine import VALUE_LIMIT, Step, Workflow
from tests.waits import wait_until

HX = {"HX-Request": "true"}


def data_of(runtime, key: str) -> dict:
    return json.loads(runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,)))


def start(runtime, name: str = "hello") -> str:
    return runtime.registry.execute(f"{name}.start").value["key"]


def submit(runtime, key: str, step: str, value: str = "", name: str = "hello", actor: str = "user", **extra):
    return runtime.registry.execute(f"{name}.submit", {"key": key, "step": step, "value": value, **extra}, actor)


def chat_lines(runtime) -> list[str]:
    return [r["content"] for r in runtime.db.query("SELECT content FROM messages WHERE role = 'assistant'")]


# ---- the engine ----

def test_runs_get_readable_keys_per_profile_and_workflow(runtime):
    assert [start(runtime) for _ in range(2)] == ["home-hello-01", "home-hello-02"]
    assert start(runtime, "madlibs") == "home-madlibs-01"
    work = runtime.registry.execute("profiles.insert", {"name": "Work & Play"}).value["id"]
    runtime.registry.execute("profiles.switch", {"id": work})
    assert start(runtime) == "work-play-hello-01"


def test_submitting_saves_the_step_and_opens_the_next_with_a_suggestion(runtime):
    key = start(runtime)
    submit(runtime, key, "step_01", "  Ada  ")
    data = data_of(runtime, key)
    assert data["step_01"]["value"] == "Ada" and data["step_01"]["done"] is True
    assert "step_02" not in data
    hello = runtime.plugins["hello"]
    run = hello.find_run(key)
    assert hello.current_step(run).id == "step_02"
    assert hello.steps[1].suggest(run.values()) == "Hello, Ada!"


def test_resubmitting_an_earlier_step_clears_every_later_step(runtime):
    key = start(runtime)
    submit(runtime, key, "step_01", "Ada")
    submit(runtime, key, "step_02", "Hi Ada")
    submit(runtime, key, "step_01", "Grace")
    assert data_of(runtime, key) == {"step_01": {**data_of(runtime, key)["step_01"], "value": "Grace"}}


def test_revert_reopens_a_step_with_its_old_value_and_clears_later_ones(runtime):
    key = start(runtime, "madlibs")
    for number, word in enumerate(["sparkly", "walrus", "juggling"], 1):
        submit(runtime, key, f"step_{number:02d}", word, name="madlibs")
    runtime.registry.execute("madlibs.revert", {"key": key, "step": "step_02"})
    data = data_of(runtime, key)
    assert data["step_02"]["value"] == "walrus" and data["step_02"]["done"] is False
    assert "step_03" not in data and data["step_01"]["done"] is True
    madlibs = runtime.plugins["madlibs"]
    assert madlibs.current_step(madlibs.find_run(key)).id == "step_02"


def test_finalize_locks_the_run_and_unlock_opens_it_again(runtime):
    key = start(runtime)
    with pytest.raises(OperationError, match="can't be finalized yet: step 1"):
        runtime.registry.execute("hello.finalize", {"key": key})
    submit(runtime, key, "step_01", "Ada")
    submit(runtime, key, "step_02", "Hello, Ada!")
    runtime.registry.execute("hello.finalize", {"key": key})
    for name, args in [("hello.submit", {"step": "step_01", "value": "Eve"}), ("hello.revert", {"step": "step_01"}),
                       ("hello.finalize", {})]:
        with pytest.raises(OperationError, match="is finalized; unlock it"):
            runtime.registry.execute(name, {"key": key, **args})
    runtime.registry.execute("hello.unfinalize", {"key": key})
    submit(runtime, key, "step_01", "Eve")
    assert "finalized" not in data_of(runtime, key)


@pytest.mark.parametrize("step, value, message", [
    ("step_01", "", "“Your name” can't be empty."),
    ("step_01", "   ", "“Your name” can't be empty."),
    ("step_01", "x" * 101, "under 100 characters"),
    ("step_01", "x" * (VALUE_LIMIT + 1), "is too long"),
    ("step_02", "Hi", "Step 2 (Greeting) is not open yet: first finish step 1 (Your name)."),
    ("step_09", "Hi", "Hello has no step 'step_09'"),
])
def test_bad_input_is_refused_and_the_run_is_unchanged(runtime, step, value, message):
    key = start(runtime)
    before = runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,))
    with pytest.raises(OperationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        submit(runtime, key, step, value)
    assert runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,)) == before


def test_an_unknown_key_is_not_found(runtime):
    with pytest.raises(NotFound, match="There is no Hello run called 'nope'"):
        submit(runtime, "nope", "step_01", "Ada")


def test_a_stale_version_is_refused_so_two_tabs_cannot_overwrite_each_other(runtime):
    key = start(runtime)
    version = runtime.plugins["hello"].find_run(key).updated
    submit(runtime, key, "step_01", "Ada", version=version)
    with pytest.raises(OperationError, match="was changed meanwhile") as refused:
        submit(runtime, key, "step_01", "Grace", version=version)
    assert refused.value.status == 409
    assert data_of(runtime, key)["step_01"]["value"] == "Ada"


def test_concurrent_submits_of_the_same_step_leave_one_consistent_value(runtime):
    key = start(runtime)
    version = runtime.plugins["hello"].find_run(key).updated
    results = []

    def tab(name):
        try:
            submit(runtime, key, "step_01", name, version=version)
            results.append(name)
        except OperationError as error:
            results.append(error.status)

    threads = [threading.Thread(target=tab, args=(f"tab {i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1 and results.count(409) == 7
    assert data_of(runtime, key) == {"step_01": {**data_of(runtime, key)["step_01"], "value": winners[0]}}


def test_every_step_change_is_an_event_that_undo_reverts(runtime):
    key = start(runtime)
    submit(runtime, key, "step_01", "Ada")
    outcome = submit(runtime, key, "step_02", "Yo", actor="llm")
    runtime.registry.execute("history.undo", {"event_id": outcome.event_id})
    assert "step_02" not in data_of(runtime, key) and data_of(runtime, key)["step_01"]["value"] == "Ada"


def test_chip_says_each_step_line_once_when_the_step_opens(runtime):
    key = start(runtime)
    submit(runtime, key, "step_01", "Ada")
    runtime.plugins["hello"].render(type("Request", (), {"query_params": {"run": key}})())  # a reload says nothing
    assert chat_lines(runtime) == ["Hi! What's your name? Type it in the first card (or just tell me).",
                                   "Nice to meet you, Ada! I suggested a greeting; change it if you like."]


def test_the_state_chip_reads_carries_the_run_and_the_current_steps_notes(runtime):
    key = start(runtime)
    submit(runtime, key, "step_01", "Ada")
    prompt = state_heading(runtime, location=Location("hello", key))  # a message from the run's page
    assert f"## The user is in the Hello workflow, run {key}" in prompt and '1. Your name — done: "Ada"' in prompt
    assert "2. Greeting — the current step" in prompt
    assert "The user is now on step 2 of 2, “Greeting”. About this step: The second step suggests" in prompt
    assert "The first step asks" not in prompt  # only the current step's notes


def test_a_workflow_in_thirty_lines(runtime):
    class Pet(Workflow):
        name, display_name, description = "pet", "Pet", "Name a pet."
        steps = [Step(id="step_01", label="Kind", kind="select", options=("cat", "dog")),
                 Step(id="step_02", label="Name", suggest=lambda values: f"Sir {values['step_01']}",
                      check=lambda value, values: None if value[0].isupper() else "Names start with a capital.")]

    runtime.add_plugin(Pet(runtime))
    key = start(runtime, "pet")
    with pytest.raises(OperationError, match="must be one of: cat, dog"):
        submit(runtime, key, "step_01", "fish", name="pet")
    submit(runtime, key, "step_01", "cat", name="pet")
    with pytest.raises(OperationError, match="Names start with a capital"):
        submit(runtime, key, "step_02", "felix", name="pet")
    submit(runtime, key, "step_02", "Felix", name="pet")
    runtime.registry.execute("pet.finalize", {"key": key})
    assert {"pet.start", "pet.submit", "pet.revert", "pet.finalize", "pet.unfinalize",
            "pet.delete"} <= set(runtime.registry.operations)


def test_user_workflows_load_from_the_data_folder(config, backend):
    from theseus.runtime import Runtime
    config.user_workflows_dir.mkdir(parents=True)
    source = (Path(__file__).parents[1] / "src/theseus/workflows/hello.py").read_text()
    (config.user_workflows_dir / "greet.py").write_text(source.replace('name = "hello"', 'name = "greet"'))
    runtime = Runtime(config, backend)
    try:
        assert "greet" in runtime.plugins and "greet.submit" in runtime.registry.operations
    finally:
        runtime.close()


def test_deleting_a_run_removes_it(runtime):
    key = start(runtime)
    runtime.registry.execute("hello.delete", {"key": key})
    assert runtime.db.value("SELECT COUNT(*) FROM pipelines") == 0
    assert runtime.registry.get("hello.delete").destructive


# ---- the long job ----

def wait_for(condition):
    return wait_until(condition, "the job's state", timeout=30)


def start_hashing(runtime, folder: Path, pace: str = "full speed") -> str:
    key = start(runtime, "longjob")
    submit(runtime, key, "step_01", str(folder), name="longjob")
    submit(runtime, key, "step_02", pace, name="longjob")
    submit(runtime, key, "step_03", name="longjob")
    return key


def test_the_long_job_hashes_a_folder_and_saves_the_result(runtime, tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a" * 3000)
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    key = start_hashing(runtime, folder)
    wait_for(lambda: data_of(runtime, key).get("step_03", {}).get("done"))
    result = data_of(runtime, key)["step_03"]["result"]
    assert result["files"] == 2 and result["bytes"] == 3000 + 2560 and len(result["digest"]) == 64
    assert result["largest"][0] == {"path": "a.txt", "bytes": 3000}
    assert runtime.jobs.get(key, "step_03") is None


def test_a_cancelled_job_says_how_far_it_got_and_can_start_again(runtime, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "big.bin").write_bytes(b"x" * 6_000_000)
    key = start_hashing(runtime, tmp_path / "folder", "very gentle (2 MB/s)")
    wait_for(lambda: (job := runtime.jobs.get(key, "step_03")) is not None and job.done > 0)
    with pytest.raises(OperationError, match="already running"):
        submit(runtime, key, "step_03", name="longjob")
    runtime.registry.execute("longjob.cancel", {"key": key})
    wait_for(lambda: "error" in data_of(runtime, key).get("step_03", {}))
    assert data_of(runtime, key)["step_03"]["error"].startswith("Cancelled after ")
    with pytest.raises(OperationError, match="No job is running"):
        runtime.registry.execute("longjob.cancel", {"key": key})


def test_a_folder_that_vanishes_fails_cleanly(runtime, tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    key = start(runtime, "longjob")
    submit(runtime, key, "step_01", str(folder), name="longjob")
    submit(runtime, key, "step_02", "full speed", name="longjob")
    folder.rmdir()
    submit(runtime, key, "step_03", name="longjob")
    wait_for(lambda: "error" in data_of(runtime, key).get("step_03", {}))
    assert data_of(runtime, key)["step_03"]["error"].startswith("Failed")
    with pytest.raises(OperationError, match="is not a folder"):
        submit(runtime, key, "step_01", str(folder), name="longjob")


def test_a_job_result_too_large_to_keep_whole_is_kept_capped_with_a_note(runtime):
    from fasthtml.common import to_xml

    from theseus.workflows.cards import StepCard
    from theseus.workflows.jobs import RESULT_LIMIT

    big = {"lines": [f'line {n} "quoted" \\ ü' for n in range(5_000)]}  # escapes make its JSON longer still

    class Big(Workflow):
        name, display_name, description = "big", "Big", "A job with a large result."
        steps = [Step(id="step_01", label="Run", kind="job", job=lambda values, job: big)]

    runtime.add_plugin(Big(runtime))
    key = start(runtime, "big")
    submit(runtime, key, "step_01", name="big")
    entry = wait_for(lambda: data_of(runtime, key).get("step_01", {}).get("done") and data_of(runtime, key)["step_01"])
    whole = json.dumps(big, ensure_ascii=False)
    assert entry["result"] == {"capped": {"total": len(whole), "kept": RESULT_LIMIT}, "preview": whole[:RESULT_LIMIT]}
    big_app = runtime.plugins["big"]
    card = to_xml(StepCard(big_app, big_app.find_run(key), big_app.steps[0]))
    assert f"The result was {len(whole):,} characters" in card and f"{len(whole) - RESULT_LIMIT:,} were cut" in card
    assert "line 0 " in card and "line 4999 " not in card  # the start of it, as text


def test_a_long_failure_message_is_kept_cut(runtime):
    def explode(values, job):
        raise RuntimeError("x" * 50_000)

    class Fails(Workflow):
        name, display_name, description = "fails", "Fails", "A job that fails at length."
        steps = [Step(id="step_01", label="Run", kind="job", job=explode)]

    runtime.add_plugin(Fails(runtime))
    key = start(runtime, "fails")
    submit(runtime, key, "step_01", name="fails")
    error = wait_for(lambda: data_of(runtime, key).get("step_01", {}).get("error"))
    assert error.startswith("Failed: xxx") and len(error) == 1_000


# ---- HTTP ----

def test_landing_new_run_and_resume_over_http(client, runtime):
    landing = client.get("/apps/hello")
    assert landing.status_code == 200 and "New run" in landing.text and "No runs yet." in landing.text
    created = client.post("/apps/hello/new", headers=HX)
    assert created.headers["HX-Redirect"] == "/apps/hello?run=home-hello-01"
    assert 'id="runs-row-home-hello-01"' in created.text
    page = client.get("/apps/hello?run=home-hello-01")
    assert f'id="{run_id("home-hello-01")}"' in page.text and 'hx-trigger="load"' in page.text
    assert "home-hello-01" in client.get("/apps/hello").text


def test_the_step_chain_over_http(client, runtime):
    key = start(runtime)
    card = client.get(f"/apps/hello/runs/{key}/steps/step_01", headers=HX).text
    assert f'id="{step_card_id(key, "step_01")}"' in card and 'hx-post="/ops/hello.submit"' in card
    done = client.post("/ops/hello.submit", data={"key": key, "step": "step_01", "value": "Ada"}, headers=HX)
    assert done.status_code == 200
    assert "Revert" in done.text and f'hx-get="/apps/hello/runs/{key}/steps/step_02"' in done.text
    assert f'id="runs-row-{key}"' in done.text and runs_list_id("hello") not in done.text
    assert 'value="Hello, Ada!"' in client.get(f"/apps/hello/runs/{key}/steps/step_02", headers=HX).text
    client.post("/ops/hello.submit", data={"key": key, "step": "step_02", "value": "Hi"}, headers=HX)
    final = client.post("/ops/hello.finalize", data={"key": key}, headers=HX)
    assert f'id="{final_card_id(key)}"' in final.text and "Unlock" in final.text and "Revert" not in final.text
    reverted = client.post("/ops/hello.unfinalize", data={"key": key}, headers=HX)
    assert "Revert" in reverted.text


@pytest.mark.parametrize("path, data, status, message", [
    ("/ops/hello.submit", {"key": "nope", "step": "step_01", "value": "x"}, 404, "no Hello run called"),
    ("/ops/hello.submit", {"key": "home-hello-01", "step": "step_01", "value": ""}, 400, "can't be empty"),
    ("/ops/hello.submit", {"key": "home-hello-01", "step": "step_01", "value": "x" * 20_000}, 400, "too long"),
    ("/ops/hello.submit", {"key": "home-hello-01", "step": "step_02", "value": "x"}, 409, "not open yet"),
    ("/ops/hello.submit", {"key": "home-hello-01"}, 400, "needs 'step'"),
    ("/ops/hello.revert", {"key": "home-hello-01", "step": "step_01"}, 400, "nothing to revert"),
    ("/ops/hello.finish_job", {"key": "home-hello-01", "step": "step_01"}, 404, "nothing at"),
])
def test_bad_posts_get_a_clear_message_and_change_nothing(client, runtime, path, data, status, message):
    start(runtime)
    before = runtime.db.query("SELECT * FROM pipelines")
    response = client.post(path, data=data, headers=HX)
    assert response.status_code == status and message in response.text
    assert "Traceback" not in response.text
    assert runtime.db.query("SELECT * FROM pipelines") == before


def test_unknown_runs_and_steps_are_clean_404_pages(client, runtime):
    assert client.get("/apps/hello?run=nope").status_code == 404
    assert "no Hello run called" in client.get("/apps/hello?run=nope").text
    key = start(runtime)
    assert client.get(f"/apps/hello/runs/{key}/steps/step_07", headers=HX).status_code == 404
    assert client.get("/apps/hello/runs/nope/steps/step_01", headers=HX).status_code == 404


def test_a_step_not_open_yet_says_so(client, runtime):
    key = start(runtime)
    card = client.get(f"/apps/hello/runs/{key}/steps/step_02", headers=HX).text
    assert "This step opens after step 1." in card and "<form" not in card


# ---- Chip drives a run (scripted model: the decoder's plumbing) ----

def test_chip_fills_the_current_step_of_the_run_the_tab_shows(socket, client, runtime, backend):
    key = start(runtime)
    backend.commands = [{"command": "fill", "value": "Ada"}]
    tab = socket()
    tab.send(action="send", message="my name is Ada, fill that in", app="hello", run=key)  # as the page sends it
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "Your name = Ada" in final
    assert data_of(runtime, key)["step_01"]["value"] == "Ada"
    assert runtime.db.query("SELECT actor FROM events ORDER BY id DESC LIMIT 1")[0]["actor"] == "llm"
    assert set(verbs(backend.schemas[0])) == {"start", "delete", "fill", "chat", "help"}
    assert alternative(backend.schemas[0], "fill") == {"value": {"type": "string", "minLength": 1, "maxLength": 200}}
    assert "The current step is 1: Your name." in backend.prompts[0][-1]["content"]


def test_chip_goes_back_and_finalizes_by_the_same_operations(socket, client, runtime, backend):
    key = start(runtime)
    submit(runtime, key, "step_01", "Ada")
    submit(runtime, key, "step_02", "Hi")
    backend.commands = [{"command": "finalize"}, {"command": "unlock"}, {"command": "back"}]
    tab = socket()
    for message in ("lock it", "unlock it", "go back a step"):
        tab.send(action="send", message=message, app="hello", run=key)
        tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    data = data_of(runtime, key)
    assert "finalized" not in data and data["step_02"]["done"] is False and data["step_02"]["value"] == "Hi"


def test_chip_proposes_deleting_a_run_but_waits_for_the_click(socket, client, runtime, backend):
    key = start(runtime)
    backend.commands = [{"command": "delete"}]
    tab = socket()
    tab.send(action="send", message="delete this run", app="hello", run=key)
    final = tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert f"Shall I delete Hello run {key}? Please confirm." in final and "/chat/confirm/" in final
    assert runtime.db.value("SELECT COUNT(*) FROM pipelines") == 1


def test_each_tab_drives_the_run_it_shows(socket, client, runtime, backend):
    first, second = start(runtime), start(runtime)
    backend.commands = [{"command": "fill", "value": "Ada"}, {"command": "fill", "value": "Grace"}]
    one, two = socket("one"), socket("two")
    one.send(action="send", message="my name is Ada", app="hello", run=first)
    one.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    two.send(action="send", message="my name is Grace", app="hello", run=second)
    two.until(r"Your name = Grace")
    assert data_of(runtime, first)["step_01"]["value"] == "Ada"
    assert data_of(runtime, second)["step_01"]["value"] == "Grace"
    assert f"Open run: {second}." in backend.prompts[-1][-1]["content"]  # the second message saw its own run


@pytest.mark.parametrize("where", [{}, {"app": "hello"}, {"app": "hello", "run": "home-hello-99"},
                                   {"app": "hello", "run": "other-hello-01"}, {"app": "madlibs", "run": "RUN"},
                                   {"app": "nope", "run": "RUN"}, {"app": ["hello"], "run": {"x": 1}},
                                   {"app": "hello", "run": "RUN" + "x" * 500}])
def test_a_message_from_elsewhere_never_drives_a_run(socket, runtime, backend, where):
    key = start(runtime)
    other = runtime.registry.execute("profiles.insert", {"name": "Other"}).value["id"]
    runtime.registry.execute("profiles.switch", {"id": other})
    start(runtime)  # other-hello-01: in another profile, so never acted on from this one
    runtime.registry.execute("profiles.switch", {"id": 1})
    where = {k: v.replace("RUN", key) if isinstance(v, str) else v for k, v in where.items()}
    backend.commands = [{"command": "chat"}]
    tab = socket()
    tab.send(action="send", message="my name is Ada, fill that in", **where)
    tab.until(r'hx-swap-oob="outerHTML:#message-s\d+"')
    assert "fill" not in verbs(backend.schemas[0])  # no run of this tab to fill
    assert data_of(runtime, key) == {}


def test_poke_from_a_run_page_sees_that_run(client, runtime, backend):
    key = start(runtime)
    page = client.get(f"/apps/hello?run={key}").text
    assert 'hx-post="/poke" hx-include="#tab-location"' in page and f'name="run" value="{key}"' in page
    assert client.post("/poke", data={"app": "hello", "run": key}).status_code == 204
    wait_until(lambda: backend.prompts and not runtime.chat.streaming, "the nudge")
    state = [m["content"] for m in backend.prompts[-1] if m["content"].startswith("The state now:")]
    assert f"## The user is in the Hello workflow, run {key}" in state[-1]


def test_a_select_step_gives_chip_its_choices(client, runtime):
    key = start(runtime, "longjob")
    submit(runtime, key, "step_01", "/", name="longjob")
    longjob = runtime.plugins["longjob"]
    schema = longjob.chip_choices(runtime.registry.get("longjob.submit"), "", Location("longjob", key))
    assert schema["properties"]["value"]["enum"] == ["full speed", "gentle (20 MB/s)", "very gentle (2 MB/s)"]


def test_a_bug_in_a_workflows_own_code_is_a_clear_message_not_a_broken_page(runtime):
    from fasthtml.common import to_xml

    from theseus.workflows.cards import StepCard

    def compute(value, values):
        return {"ok": True} if value == "ok" else {}["missing"]

    class Buggy(Workflow):
        name, display_name, description = "buggy", "Buggy", "Has bugs."
        steps = [Step(id="step_01", label="Thing", suggest=lambda values: 1 / 0, compute=compute,
                      show=lambda entry, values: 1 / 0)]

    runtime.add_plugin(Buggy(runtime))
    key = start(runtime, "buggy")
    buggy = runtime.plugins["buggy"]
    assert 'name="value"' in to_xml(StepCard(buggy, buggy.find_run(key), buggy.steps[0]))
    with pytest.raises(OperationError, match="“Thing”: could not use 'boom' \\(KeyError"):
        submit(runtime, key, "step_01", "boom", name="buggy")
    assert data_of(runtime, key) == {}
    submit(runtime, key, "step_01", "ok", name="buggy")
    assert '<p class="value">ok</p>' in to_xml(StepCard(buggy, buggy.find_run(key), buggy.steps[0]))


def test_ask_chip_fills_a_suggested_word_into_the_form(client, runtime, backend):
    key = start(runtime, "madlibs")
    backend.commands = [{"word": "sparkly"}]
    card = client.post(f"/apps/madlibs/runs/{key}/steps/step_01/suggest", headers=HX)
    assert card.status_code == 200 and 'value="sparkly"' in card.text
    assert "an adjective" in backend.prompts[-1][-1]["content"]
    assert data_of(runtime, key) == {}  # a suggestion only fills the field
    backend.state = type(backend.state)("loading", "loading the model")
    assert "not ready yet" in client.post(f"/apps/madlibs/runs/{key}/steps/step_01/suggest", headers=HX).text


def test_mad_libs_tells_the_story_from_the_words(runtime):
    key = start(runtime, "madlibs")
    for number, word in enumerate(["sparkly", "walrus", "juggling", "the library"], 1):
        outcome = submit(runtime, key, f"step_{number:02d}", word, name="madlibs")
    assert "a sparkly walrus decided to go juggling in the library" in outcome.html
