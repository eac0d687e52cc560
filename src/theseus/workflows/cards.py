"""A workflow's page as FT components: the landing page, the run column and one card per step.

The run column is a pure rendering of the run's JSON: a done card for each
finished step, then a placeholder for the first open step that loads its own
card (`hx-trigger="load"`), then nothing. Every change re-renders the column
out-of-band in every tab, so all tabs show the same run.
"""

from __future__ import annotations

from fasthtml.common import (H2, A, Article, Button, Div, Footer, Form, Header, Input, Option, P, Pre, Progress,
                             Section, Select, Small, Strong, Table, Tbody, Td, Template, Textarea, Th, Thead, Tr)

from loguru import logger

from ..ui import app_url, op_url


# ---- ids: one helper each, so routes, swaps and tests agree ----
def run_id(key: str) -> str:
    return f"run-{key}"


def step_card_id(key: str, step_id: str) -> str:
    return f"step-{key}-{step_id}"


def runs_list_id(name: str) -> str:
    return f"runs-{name}"


def job_bar_id(key: str, step_id: str) -> str:
    return f"job-{key}-{step_id}"


def final_card_id(key: str) -> str:
    return f"final-{key}"


def guarded(hook, fallback, *args):
    """A workflow's own hook (suggest, show) called so that a bug in it never breaks the page."""
    if hook is None:
        return fallback
    try:
        return hook(*args)
    except Exception as error:
        logger.opt(exception=error).warning(f"workflow hook {getattr(hook, '__qualname__', hook)} failed")
        return fallback


# ---- the landing page ----
def Landing(wf):
    return Section(H2(wf.display_name), P(wf.description),
                   Button("New run", hx_post=f"/apps/{wf.name}/new", hx_swap="none", cls="new-run"),
                   RunsList(wf), id=f"{wf.name}-app", cls="workflow landing")


def run_status(wf, run) -> str:
    if run.finalized:
        return "finalized"
    current = wf.current_step(run)
    return f"step {wf.position(current)}: {current.label}" if current else "ready to finalize"


def runs_row_id(key: str) -> str:
    return f"runs-row-{key}"


def RunsRow(wf, run, **attrs):
    return Tr(Td(A(run.key, href=wf.run_url(run.key))), Td(run_status(wf, run)),
              Td(Small(run.updated[:16].replace("T", " "))), id=runs_row_id(run.key), **attrs)


def RunsList(wf):
    """The profile's runs of this workflow, newest first, each a link that resumes it."""
    empty = Tr(Td(Small("No runs yet."), colspan="3"), cls="empty")
    return Table(Thead(Tr(Th("Run"), Th("Where it is"), Th("Updated"))),
                 Tbody(empty, *[RunsRow(wf, r) for r in wf.runs()], id=runs_list_id(wf.name)), cls="runs")


# ---- a run ----
def RunPage(wf, run):
    return Section(H2(wf.display_name), P(Small("Run ", Strong(run.key), " · ", A("all runs", href=app_url(wf.name)))),
                   RunColumn(wf, run), id=f"{wf.name}-app", cls="workflow")


def RunColumn(wf, run, **attrs):
    """Done cards for the finished steps, then the first open step (which loads itself)."""
    cards = []
    for step in wf.steps:
        if not run.is_done(step.id):
            cards.append(Article(Small("Loading…"), id=step_card_id(run.key, step.id), cls="step loading",
                                 hx_get=wf.step_url(run.key, step.id), hx_trigger="load", hx_swap="outerHTML"))
            break
        cards.append(DoneCard(wf, run, step))
    else:
        cards.append(FinalCard(wf, run))
    return Div(*cards, id=run_id(run.key), cls="run" + (" finalized" if run.finalized else ""),
               data_updated=run.updated, **attrs)


def StepTitle(wf, step):
    return Strong(f"{wf.position(step)}. {step.label}")


def StepCard(wf, run, step, **attrs):
    """A step's card: done, open (a form, or a job), or not open yet."""
    if run.is_done(step.id):
        return DoneCard(wf, run, step, **attrs)
    current = wf.current_step(run)
    if current is not step:
        return Article(Header(StepTitle(wf, step)), P(Small(f"This step opens after step {wf.position(current)}.")),
                       id=step_card_id(run.key, step.id), cls="step waiting", **attrs)
    if step.kind == "job":
        return JobCard(wf, run, step, **attrs)
    return StepForm(wf, run, step, **attrs)


def Field(wf, step, value: str, values: dict):
    common = {"name": "value", "aria_label": step.label, "required": step.required, "autofocus": True}
    if step.kind == "select":
        return Select(*[Option(c, value=c, selected=c == value) for c in step.choices(values)], **common)
    if step.kind == "textarea":
        return Textarea(value, placeholder=step.placeholder, maxlength=wf.value_limit, rows=4, **common)
    return Input(value=value, placeholder=step.placeholder, maxlength=wf.value_limit, autocomplete="off", **common)


def StepForm(wf, run, step, value: str | None = None, **attrs):
    """The open step: its field (with the old value after a revert, or a suggestion) and Next."""
    values = run.values_before(wf.steps, step)
    entry = run.entry(step.id) or {}
    if value is None:
        value = entry.get("value") or guarded(step.suggest, "", values)
    ask = (Button("Ask Chip", type="button", cls="outline secondary ask-chip",
                  hx_post=f"{wf.step_url(run.key, step.id)}/suggest", hx_target=f"#{step_card_id(run.key, step.id)}",
                  hx_swap="outerHTML") if step.ask_chip else "")
    return Article(Header(StepTitle(wf, step)),
                   Form(Field(wf, step, value, values),
                        Input(type="hidden", name="key", value=run.key),
                        Input(type="hidden", name="step", value=step.id),
                        Input(type="hidden", name="version", value=run.updated),
                        Div(Button("Next", type="submit"), ask, cls="step-actions"),
                        hx_post=op_url(f"{wf.name}.submit"), hx_swap="none"),
                   id=step_card_id(run.key, step.id), cls="step open", **attrs)


def is_capped(result) -> bool:
    """Whether a job's saved result is a capped one (jobs.capped_result: a preview and its sizes)."""
    return isinstance(result, dict) and isinstance(result.get("capped"), dict) and "preview" in result


def CappedResult(result: dict):
    """A job result too large to keep whole: how much was cut, then the start of it as text."""
    total, kept = result["capped"]["total"], result["capped"]["kept"]
    return Div(P(Small(f"The result was {total:,} characters, too large to keep whole: the first {kept:,} "
                       f"are kept and {total - kept:,} were cut."), cls="capped-note"),
               Pre(result["preview"]), cls="capped-result")


def DoneCard(wf, run, step, **attrs):
    """A finished step: its value (or what the step shows for it) and a Revert button."""
    entry = run.entry(step.id)
    if is_capped(entry.get("result")):
        body = guarded(CappedResult, None, entry["result"])
    else:
        body = guarded(step.show, None, entry, run.values())
    body = body if body is not None else P(entry["value"], cls="value")
    revert = ("" if run.finalized else
              Button("Revert", cls="outline secondary revert", hx_post=op_url(f"{wf.name}.revert"),
                     hx_vals={"key": run.key, "step": step.id}, hx_swap="none"))
    return Article(Header(StepTitle(wf, step), revert), body, id=step_card_id(run.key, step.id), cls="step done",
                   **attrs)


def JobCard(wf, run, step, **attrs):
    """A job step: Start (after a failure, with the reason), or the live progress bar and Cancel."""
    job = wf.runtime.jobs.get(run.key, step.id)
    if job is not None:
        return Article(Header(StepTitle(wf, step)), JobProgress(job),
                       Button("Cancel", cls="secondary cancel-job", hx_post=op_url(f"{wf.name}.cancel"),
                              hx_vals={"key": run.key}, hx_swap="none"),
                       id=step_card_id(run.key, step.id), cls="step open job", **attrs)
    error = (run.entry(step.id) or {}).get("error")
    return Article(Header(StepTitle(wf, step)),
                   P(error, cls="job-error", role="alert") if error else P(Small("Runs in the background; "
                                                                                "you can leave this page.")),
                   Form(Input(type="hidden", name="key", value=run.key),
                        Input(type="hidden", name="step", value=step.id),
                        Input(type="hidden", name="version", value=run.updated),
                        Button("Try again" if error else "Start", type="submit"),
                        hx_post=op_url(f"{wf.name}.submit"), hx_swap="none"),
                   id=step_card_id(run.key, step.id), cls="step open job", **attrs)


def JobProgress(job, **attrs):
    """A job's progress bar (pushed to every tab as it moves)."""
    bar = Progress(value=job.done, max=job.total) if job.total else Progress()
    return Div(bar, Small(job.note or "Starting…", cls="job-note"), id=job_bar_id(job.key, job.step),
               cls="job-progress", data_done=job.done, data_total=job.total, **attrs)


def FinalCard(wf, run):
    """Every step is done: the workflow's result, and Finalize (or, once finalized, Unlock)."""
    result = wf.result(run.values())
    if run.finalized:
        action = Footer(Small(f"Finalized {run.data['finalized'][:16].replace('T', ' ')} · read-only "),
                        Button("Unlock", cls="outline unlock", hx_post=op_url(f"{wf.name}.unfinalize"),
                               hx_vals={"key": run.key}, hx_swap="none"))
    else:
        action = Footer(Button("Finalize", cls="finalize", hx_post=op_url(f"{wf.name}.finalize"),
                               hx_vals={"key": run.key}, hx_swap="none"))
    return Article(Header(Strong("Finished" if run.finalized else "All steps done")), result, action,
                   id=final_card_id(run.key), cls="step final")


def run_fragments(wf, changed: list[tuple[str, object, bool]]) -> list:
    """Out-of-band swaps after runs changed ((key, run or None if deleted, is new)): the run's column
    for tabs showing the run, and its row for tabs showing the runs list."""
    fragments = []
    for key, run, is_new in changed:
        if run is None:
            fragments += [Div(P("This run was deleted. ", A("All runs", href=app_url(wf.name))),
                              id=run_id(key), hx_swap_oob="true"),
                          Template(Tr(id=runs_row_id(key), hx_swap_oob="delete"))]
        elif is_new:
            fragments.append(Template(Tbody(RunsRow(wf, run), hx_swap_oob=f"afterbegin:#{runs_list_id(wf.name)}")))
        else:
            fragments += [RunColumn(wf, run, hx_swap_oob="true"), Template(RunsRow(wf, run, hx_swap_oob="true"))]
    return fragments
