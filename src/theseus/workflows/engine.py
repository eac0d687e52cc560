"""The workflow engine: a workflow is a list of steps, and a run's whole state is one JSON blob.

A workflow is a `Workflow` subclass with a name and a list of `Step`s. The
engine supplies everything else: the landing page (new run, runs to resume),
the step cards, and the operations `start`, `submit`, `revert`, `finalize`,
`unfinalize` and `delete`, which go through the registry like any other
operation, so the UI, Chip and the CLI share them and every tab stays live.

A run is one `pipelines` row. Its `data` is
`{"step_01": {"value": ..., "done": true}, ..., "finalized": "<time>"}`.
Submitting step N saves it and clears every later step (forward-only);
reverting to step N reopens it with its old value; finalize locks the run.
The page is always a rendering of that JSON: done cards for the finished
steps, then the first open step, which loads itself (`hx-trigger="load"`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from loguru import logger
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse

from ..actions import NotFound, OperationError, Outcome, Result, Text, operation
from ..db import utc_now
from ..llm.base import BackendError
from ..package_docs import docs_folder
from ..plugins import Plugin
from ..ui import TAB_HEADER, Toast, app_url
from .cards import Landing, RunPage, StepCard, StepForm, run_fragments
from .chip import ChipGuide, shorten
from .jobs import RESULT_JSON_LIMIT

VALUE_LIMIT = 10 * 1024  # a step value longer than this is refused
RunKey = Annotated[str, Text(min_len=1, max_len=120)]
StepId = Annotated[str, Text(min_len=1, max_len=40)]


@dataclass(frozen=True)
class Step:
    """One step of a workflow: what it asks, how it checks the answer, and what Chip says about it."""

    id: str                  # "step_01": the key of its value in the run's JSON
    label: str               # the card's title and the field's label
    kind: str = "text"       # text | textarea | select | job (a background job started by submitting)
    say: str = ""            # Chip's line when the step opens; {step_01} etc. are replaced by earlier values
    notes: str = ""          # "file.md" or "file.md#Heading", beside the workflow's file or in the package's
                             # docs/workflows/: Chip's domain notes for the step
    placeholder: str = ""
    required: bool = True
    options: tuple[str, ...] | Callable[[dict], list[str]] = ()  # the choices of a select step
    suggest: Callable[[dict], str] | None = None          # a starting value from earlier values
    check: Callable[[str, dict], str | None] | None = None  # an error message for a bad value, or None
    compute: Callable[[str, dict], Any] | None = None     # a result saved beside the value
    show: Callable[[dict, dict], Any] | None = None       # the done card's body: show(entry, values) -> FT
    ask_chip: str = ""       # what to ask the model for ("an adjective"): adds an "Ask Chip" button
    job: Callable[..., Any] | None = None                  # job(values, job) -> result (kind "job"; see jobs.py)

    def choices(self, values: dict) -> list[str]:
        return list(self.options(values) if callable(self.options) else self.options)


@dataclass
class Run:
    """One run of a workflow: a `pipelines` row with its JSON decoded."""

    id: int
    key: str
    app: str
    profile_id: int | None
    data: dict
    created: str
    updated: str

    @classmethod
    def from_row(cls, row: dict) -> "Run":
        return cls(**{**row, "data": json.loads(row["data"])})

    def entry(self, step_id: str) -> dict | None:
        return self.data.get(step_id)

    def is_done(self, step_id: str) -> bool:
        return bool((self.entry(step_id) or {}).get("done"))

    @property
    def finalized(self) -> bool:
        return bool(self.data.get("finalized"))

    def values(self) -> dict:
        """The values of the finished steps, by step id."""
        return {k: v["value"] for k, v in self.data.items() if isinstance(v, dict) and v.get("done")}

    def before(self, steps: list["Step"], step: "Step") -> dict:
        """The saved entries of the steps that come before `step`."""
        earlier = steps[:steps.index(step)]
        return {s.id: self.data[s.id] for s in earlier if s.id in self.data}

    def values_before(self, steps: list["Step"], step: "Step") -> dict:
        return {k: v["value"] for k, v in self.before(steps, step).items() if v.get("done")}


class SafeValues(dict):
    """str.format_map helper: an unknown {name} stays as it is."""

    def __missing__(self, key):
        return "{" + key + "}"


def folder_step(step_id: str, label: str, *, say: str, notes: str = "",
                check: Callable[[Path], str | None] | None = None) -> Step:
    """A step that asks for a folder on this computer (the app's own docs folder is filled in)."""
    def problem(value: str, values: dict) -> str | None:
        path = Path(value).expanduser()
        if not path.is_dir():
            return f"{value} is not a folder on this computer."
        if not os.access(path, os.R_OK | os.X_OK):
            return f"Theseus may not read the folder {value}."
        return check(path) if check else None

    return Step(id=step_id, label=label, say=say, notes=notes, check=problem,
                suggest=lambda values: str(docs_folder()))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


class Workflow(ChipGuide, Plugin):
    """A notebook-like workflow: subclasses set `name`, `display_name`, `description` and `steps`."""

    steps: list[Step] = []
    item = "step"
    order = 200
    drivable = True
    value_limit = VALUE_LIMIT

    def __init__(self, runtime):
        """Load the workflow; a step whose notes cannot be found is a warning in the log."""
        super().__init__(runtime)
        self.warn_missing_notes()

    def result(self, values: dict):
        """What the finished run shows above Finalize (FT); subclasses override."""
        return ""

    # ---- ids: one helper each, so routes, swaps and tests agree ----
    def run_url(self, key: str) -> str:
        return f"{app_url(self.name)}?run={key}"

    def step_url(self, key: str, step_id: str) -> str:
        return f"/apps/{self.name}/runs/{key}/steps/{step_id}"

    # ---- data ----
    def snapshot(self, limit: int) -> dict:
        """The runs of the current profile, newest first: each one's key, saved steps and whether it is final."""
        runs = self.runs(limit=limit + 1)
        return {"steps": [step.id for step in self.steps], "summary": self.summary(),
                "runs": [{"key": run.key, "data": run.data, "updated": run.updated} for run in runs[:limit]],
                "more": len(runs) > limit}

    def runs(self, profile_id: int | None = None, limit: int = 50) -> list[Run]:
        rows = self.db.query("SELECT * FROM pipelines WHERE app = ? AND profile_id = ? "
                             "ORDER BY updated DESC, id DESC LIMIT ?",
                             (self.name, profile_id or self.runtime.profile_id, limit))
        return [Run.from_row(r) for r in rows]

    def run_row(self, key: str) -> dict:
        """The pipelines row of this workflow's run `key` (NotFound if there is none)."""
        rows = self.db.query("SELECT * FROM pipelines WHERE key = ? AND app = ?", (key, self.name))
        if not rows:
            raise NotFound(f"There is no {self.display_name} run called {key!r}.")
        return rows[0]

    def find_run(self, key: str) -> Run:
        return Run.from_row(self.run_row(key))

    def target_row(self, args: dict) -> tuple[str, dict] | None:
        return ("pipelines", self.run_row(args["key"])) if "key" in args else None

    def label(self, row: dict) -> str:
        return f"{self.display_name} run {row['key']}"

    def step(self, step_id: str) -> Step:
        found = next((s for s in self.steps if s.id == step_id), None)
        if found is None:
            raise NotFound(f"{self.display_name} has no step {step_id!r} "
                           f"(its steps are {', '.join(s.id for s in self.steps)}).")
        return found

    def current_step(self, run: Run) -> Step | None:
        """The first step that is not done (None when every step is)."""
        return next((s for s in self.steps if not run.is_done(s.id)), None)

    def position(self, step: Step) -> int:
        return self.steps.index(step) + 1

    def new_key(self, ctx) -> str:
        """A readable key: <profile>-<workflow>-<NN>, numbered per profile and workflow."""
        profile = ctx.db.value("SELECT name FROM profiles WHERE id = ?", (ctx.profile_id,)) or "run"
        prefix = f"{slug(profile)}-{slug(self.name)}-"
        taken = {r["key"] for r in ctx.db.query("SELECT key FROM pipelines WHERE key LIKE ? || '%'", (prefix,))}
        number = 1 + max((int(k[len(prefix):]) for k in taken if re.fullmatch(r"[0-9]{1,9}", k[len(prefix):])),
                         default=0)
        return f"{prefix}{number:02d}"

    def save(self, ctx, run: Run, data: dict) -> Run:
        """Write the run's new JSON (recorded for undo, broadcast by the registry).

        `updated` is the run's version (a form sends it back), so it always moves forward.
        """
        now = utc_now()
        if now <= run.updated:  # two saves within one millisecond
            now = (datetime.fromisoformat(run.updated) + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
        row = ctx.update("pipelines", run.id, data=json.dumps(data, ensure_ascii=False), updated=now)
        return Run.from_row(row)

    def editable(self, ctx, key: str, version: str | None = None) -> Run:
        """The run, if it may be changed: not finalized, and (given a version) not changed meanwhile."""
        run = self.find_run(key)
        if run.finalized:
            raise OperationError(f"Run {key} is finalized; unlock it to change it.", 409)
        if version and version != run.updated:
            raise OperationError(f"Run {key} was changed meanwhile (in another tab or by Chip); "
                                 "the page now shows its latest values.", 409)
        return run

    def open_step(self, run: Run, step: Step) -> None:
        """Entering a step: Chip says the step's line in the chat (kept in the conversation)."""
        if step.say and getattr(self.runtime, "chat", None) is not None:
            self.runtime.chat.announce(step.say.format_map(SafeValues(run.values())))

    def checked_value(self, step: Step, value: str, values: dict) -> str:
        """The value if it is acceptable for the step; else an OperationError saying why."""
        if step.kind == "job":
            return value
        if step.required and not value:
            raise OperationError(f"“{step.label}” can't be empty.")
        choices = self.hook(step, value, step.choices, values) if step.kind == "select" else []
        if choices and value not in choices:
            raise OperationError(f"“{step.label}” must be one of: {', '.join(choices)}.")
        problem = self.hook(step, value, step.check, value, values) if step.check else None
        if problem:
            raise OperationError(problem)
        return value

    def hook(self, step: Step, value: str, function: Callable, *args):
        """Call one of the workflow's own functions about a value; a bug in it is a clear refusal, nothing saved."""
        try:
            return function(*args)
        except Exception as error:
            logger.opt(exception=error).warning(f"{self.name}.{step.id}: {function.__name__} failed")
            raise OperationError(f"“{step.label}”: could not use {shorten(value, 60)!r} "
                                 f"({type(error).__name__}: {shorten(str(error), 120)}).") from None

    # ---- operations (shared by the UI, Chip and the CLI) ----
    @operation(target="run", verb="start")
    def start(self, ctx) -> Result:
        """Start a new run of this workflow."""
        now = utc_now()
        key = self.new_key(ctx)
        row = ctx.insert("pipelines", {"key": key, "app": self.name, "profile_id": ctx.profile_id,
                                       "data": "{}", "created": now, "updated": now})
        run = Run.from_row(row)
        if self.steps:
            self.open_step(run, self.steps[0])
        return Result(f"Started {self.display_name} run {key}", {"key": key})

    @operation(target="step", verb="fill")
    def submit(self, ctx, key: RunKey, step: StepId,
               value: Annotated[str, Text(max_len=VALUE_LIMIT)] = "", version: str | None = None) -> Result:
        """Fill in the current step of a run with a value (clears every later step)."""
        run = self.editable(ctx, key, version)
        target = self.step(step)
        current = self.current_step(run)
        if current is not None and self.position(target) > self.position(current):
            raise OperationError(f"Step {self.position(target)} ({target.label}) is not open yet: "
                                 f"first finish step {self.position(current)} ({current.label}).", 409)
        values = run.values_before(self.steps, target)
        value = self.checked_value(target, value, values)
        if target.kind == "job":
            return self.start_job(run, target, values)
        entry = {"value": value, "done": True, "time": utc_now()}
        if target.compute:
            entry["result"] = self.hook(target, value, target.compute, value, values)
        run = self.save(ctx, run, {**run.before(self.steps, target), target.id: entry})
        following = self.current_step(run)
        if following is not None:
            self.open_step(run, following)
        return Result(f"{self.display_name} {key}: {target.label} = {shorten(value)}", {"key": key})

    @operation(target="step", verb="back")
    def revert(self, ctx, key: RunKey, step: StepId) -> Result:
        """Reopen a finished step of a run, with its old value filled in (later steps are cleared)."""
        run = self.editable(ctx, key)
        target = self.step(step)
        if not run.is_done(target.id):
            raise OperationError(f"Step {self.position(target)} ({target.label}) is not finished, "
                                 "so there is nothing to revert.")
        reopened = {**run.data[target.id], "done": False}
        run = self.save(ctx, run, {**run.before(self.steps, target), target.id: reopened})
        self.open_step(run, target)
        return Result(f"{self.display_name} {key}: reopened {target.label}", {"key": key})

    @operation(target="run", verb="finalize")
    def finalize(self, ctx, key: RunKey) -> Result:
        """Lock a finished run (read-only until unlocked)."""
        run = self.editable(ctx, key)
        current = self.current_step(run)
        if current is not None:
            raise OperationError(f"Run {key} can't be finalized yet: step {self.position(current)} "
                                 f"({current.label}) is not done.")
        self.save(ctx, run, {**run.data, "finalized": utc_now()})
        return Result(f"Finalized {self.display_name} run {key}", {"key": key})

    @operation(target="run", verb="unlock")
    def unfinalize(self, ctx, key: RunKey) -> Result:
        """Unlock a finalized run so its steps can be changed again."""
        run = self.find_run(key)
        if not run.finalized:
            raise OperationError(f"Run {key} is not finalized.")
        self.save(ctx, run, {k: v for k, v in run.data.items() if k != "finalized"})
        return Result(f"Unlocked {self.display_name} run {key}", {"key": key})

    @operation(target="run", destructive=True, verb="delete")
    def delete(self, ctx, key: RunKey) -> Result:
        """Delete a run and everything saved in it."""
        run = self.find_run(key)
        self.cancel_jobs(run.key)
        ctx.delete("pipelines", run.id)
        return Result(f"Deleted {self.display_name} run {key}", {"key": key})

    # ---- background jobs (steps of kind "job") ----
    def start_job(self, run: Run, step: Step, values: dict) -> Result:
        self.runtime.jobs.start(self, run.key, step, values)
        return Result(f"{self.display_name} {run.key}: started {step.label}", {"key": run.key, "job": step.id})

    def cancel_jobs(self, key: str) -> bool:
        return self.runtime.jobs.cancel(key)

    @operation(target="step", verb="cancel")
    def cancel(self, ctx, key: RunKey) -> Result:
        """Cancel the background job running in a run."""
        self.find_run(key)
        if not self.cancel_jobs(key):
            raise OperationError(f"No job is running in run {key}.")
        return Result(f"{self.display_name} {key}: cancelling the job")

    @operation(target="step", internal=True)
    def finish_job(self, ctx, key: RunKey, step: StepId,
                   result: Annotated[str, Text(max_len=RESULT_JSON_LIMIT)] = "", error: str = "") -> Result:
        """Save a background job's result (or its failure) as the step's value."""
        run = self.find_run(key)
        target = self.step(step)
        kept = run.before(self.steps, target)
        if error:
            self.save(ctx, run, {**kept, target.id: {"value": "", "done": False, "error": error}})
            return Result(f"{self.display_name} {key}: {target.label} failed: {error}", {"key": key})
        run = self.save(ctx, run, {**kept, target.id: {"value": "", "done": True, "time": utc_now(),
                                                       "result": json.loads(result or "null")}})
        following = self.current_step(run)
        if following is not None:
            self.open_step(run, following)
        return Result(f"{self.display_name} {key}: {target.label} finished", {"key": key})

    # ---- rendering and routes ----
    def render(self, request):
        key = request.query_params.get("run")
        if not key:
            return Landing(self)
        try:
            run = self.find_run(key)
        except NotFound as error:
            raise HTTPException(404, error.message) from None
        return RunPage(self, run)

    def fragments(self, outcome: Outcome) -> list:
        if outcome.operation == f"{self.name}.submit" and outcome.value.get("job"):  # a job started: its bar
            return [StepCard(self, self.find_run(outcome.value["key"]), self.step(outcome.value["job"]),
                             hx_swap_oob="true")]
        changed = [((c.after or c.before)["key"], Run.from_row(c.after) if c.after else None, c.before is None)
                   for c in outcome.changes if c.table == "pipelines" and (c.after or c.before)["app"] == self.name]
        return run_fragments(self, changed) if changed else []

    async def ask_chip(self, run: Run, step: Step):
        """The step's form with a value the model suggests (e.g. a word for a Mad Lib)."""
        chat = self.runtime.chat
        if not chat.backend.status().ready:
            return Toast("Chip is not ready yet; try again in a moment.", kind="info")
        letter = "BCDFGHKLMNPRSTW"[int(run.id * 7 + self.position(step) * 3 + len(run.updated)) % 15]
        messages = [{"role": "system", "content": "You suggest one word or short phrase for a funny story game."},
                    {"role": "user", "content": f"Suggest {step.ask_chip} starting with the letter {letter}."}]
        schema = {"type": "object", "required": ["word"],
                  "properties": {"word": {"type": "string", "minLength": 1, "maxLength": 30}}}
        try:
            word = json.loads(await chat.backend.complete_json(messages, schema, max_tokens=24))["word"]
        except (BackendError, ValueError, KeyError, TypeError) as error:
            logger.warning(f"ask chip for {step.id}: {error}")
            return Toast("Chip could not come up with a word this time; try again.", kind="info")
        return StepForm(self, run, step, value=shorten(word, 40))

    def routes(self, app) -> None:
        @app.get(f"/apps/{self.name}/runs/{{key}}/steps/{{step_id}}")
        def step_card(key: str, step_id: str):
            return StepCard(self, self.find_run(key), self.step(step_id))

        @app.post(f"/apps/{self.name}/new")
        async def new_run(request):
            outcome = await asyncio.to_thread(self.runtime.registry.execute, f"{self.name}.start", {}, "user",
                                              request.headers.get(TAB_HEADER))
            return HTMLResponse(outcome.html, headers={"HX-Redirect": self.run_url(outcome.value["key"])})

        @app.post(f"/apps/{self.name}/runs/{{key}}/steps/{{step_id}}/suggest")
        async def suggest(key: str, step_id: str):
            return await self.ask_chip(self.find_run(key), self.step(step_id))

