"""A workflow step's notes: the file beside the workflow first, then the package's docs/workflows/; one that
cannot be found is a warning when the workflow loads."""

from __future__ import annotations

import pytest
from loguru import logger

from theseus.location import Location
from theseus.runtime import Runtime
from theseus.workflows.engine import Workflow

TRIP = '''
from theseus.workflows.engine import Step, Workflow


class Trip(Workflow):
    name, display_name, description = "trip", "Trip", "Plan a trip."
    steps = [Step(id="step_01", label="Destination", notes="trip.md#Destination"),
             Step(id="step_02", label="Greeting", notes="hello.md#Greeting")]
'''
NOTES = "# Trip\n\n## Destination\n\nPick a city reachable by train in under six hours.\n\n## Dates\n\nWeekends.\n"


@pytest.fixture
def load(config, backend):
    """load({file name: text}) -> a Runtime whose data dir's workflows/ folder holds those files."""
    runtimes = []

    def load_(files: dict[str, str]) -> Runtime:
        config.user_workflows_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (config.user_workflows_dir / name).write_text(text)
        runtimes.append(Runtime(config, backend))
        return runtimes[-1]
    yield load_
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def logged_warnings():
    """The messages of the warnings logged during the test."""
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def prompt_at(runtime, key: str) -> str:
    """Chip's notes on the trip run, as a message from the tab showing it sees them."""
    return runtime.plugins["trip"].prompt_notes(Location("trip", key))


def test_notes_beside_a_user_workflow_reach_chips_prompt_for_that_step(load, logged_warnings):
    runtime = load({"trip.py": TRIP, "trip.md": NOTES})
    key = runtime.registry.execute("trip.start").value["key"]
    prompt = prompt_at(runtime, key)
    assert "“Destination”. About this step: Pick a city reachable by train in under six hours." in prompt
    assert "Weekends" not in prompt  # only the step's own section
    assert logged_warnings == []


def test_a_notes_file_not_beside_the_workflow_is_read_from_the_packages_docs(load):
    runtime = load({"trip.py": TRIP, "trip.md": NOTES})
    key = runtime.registry.execute("trip.start").value["key"]
    runtime.registry.execute("trip.submit", {"key": key, "step": "step_01", "value": "Lyon"})
    assert "About this step: The second step suggests" in prompt_at(runtime, key)  # docs/workflows/hello.md


def test_the_file_beside_the_workflow_comes_first(load):
    runtime = load({"trip.py": TRIP, "trip.md": NOTES, "hello.md": "## Greeting\n\nSay it in French.\n"})
    key = runtime.registry.execute("trip.start").value["key"]
    runtime.registry.execute("trip.submit", {"key": key, "step": "step_01", "value": "Lyon"})
    assert "About this step: Say it in French." in prompt_at(runtime, key)


@pytest.mark.parametrize("files, problem", [
    ({}, ": no file 'trip.md' in {folder} or "),
    ({"trip.md": "## Dates\n\nWeekends.\n"}, ": {folder}/trip.md has no heading that starts with 'Destination'"),
])
def test_notes_that_cannot_be_found_are_one_warning_at_load(load, logged_warnings, config, files, problem):
    runtime = load({"trip.py": TRIP, **files})
    assert "trip" in runtime.plugins and not runtime.broken  # the workflow works without its notes
    assert len(logged_warnings) == 1, logged_warnings  # the other step's notes are found
    assert logged_warnings[0].startswith("workflow trip, step step_01 (Destination): notes='trip.md#Destination'")
    assert problem.format(folder=config.user_workflows_dir) in logged_warnings[0]
    key = runtime.registry.execute("trip.start").value["key"]
    assert "“Destination”." in prompt_at(runtime, key) and "About this step" not in prompt_at(runtime, key)


def test_every_built_in_workflow_finds_its_notes(runtime):
    workflows = [p for p in runtime.plugins.values() if isinstance(p, Workflow)]
    assert len(workflows) >= 4
    assert [problem for wf in workflows for step in wf.steps if (problem := wf.notes_problem(step))] == []
