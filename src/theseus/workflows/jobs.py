"""Background jobs of workflow steps: one thread each, progress pushed live to every tab, cancellable.

A running job's progress lives in memory, so a reloaded page re-attaches to
its bar. Its end (the result, a failure or a cancellation) is saved into the
run's JSON through the registry's internal `finish_job` operation, so it is
logged, broadcast and survives restarts like any step value. A job cut off by
a server stop leaves its step open, ready to start again.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from fasthtml.common import to_xml
from loguru import logger

from ..actions import OperationError
from ..events import Message
from .cards import JobProgress

PUSH_EVERY = 0.2  # seconds between progress pushes to the tabs
RESULT_LIMIT = 10_000  # characters of a job's result (as JSON) kept in the run; beyond, the start and a note
RESULT_JSON_LIMIT = 2 * RESULT_LIMIT + 100  # a capped result as JSON: the preview escaped (<= 2 per character)
ERROR_LIMIT = 1_000  # characters of a job's failure message kept on its card


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


@dataclass(eq=False)
class Job:
    """One running job: where it is, and how to stop it."""

    key: str
    step: str
    publish: object = None  # called with the job whenever its progress should reach the tabs
    done: int = 0
    total: int = 0
    note: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    pushed: float = 0.0

    def progress(self, done: int, total: int | None = None, note: str = "") -> None:
        """Report progress (the job calls this often); raises Cancelled once the user cancelled."""
        if self.cancelled.is_set():
            raise Cancelled()
        self.done, self.total, self.note = done, self.total if total is None else total, note or self.note
        now = time.monotonic()
        if now - self.pushed >= PUSH_EVERY or (self.total and done >= self.total):
            self.pushed = now
            self.publish(self)


def capped_result(result) -> str:
    """The result as JSON: whole if it fits RESULT_LIMIT, else its first RESULT_LIMIT characters and how many were cut."""
    text = json.dumps(result, ensure_ascii=False)
    if len(text) <= RESULT_LIMIT:
        return text
    return json.dumps({"capped": {"total": len(text), "kept": RESULT_LIMIT}, "preview": text[:RESULT_LIMIT]},
                      ensure_ascii=False)


class Jobs:
    """The jobs running in this process, by (run key, step id)."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.running: dict[tuple[str, str], Job] = {}
        self.lock = threading.Lock()
        self.closing = False

    def get(self, key: str, step_id: str) -> Job | None:
        return self.running.get((key, step_id))

    def start(self, wf, key: str, step, values: dict) -> Job:
        """Run the step's job in a background thread; OperationError if one is already running."""
        with self.lock:
            if any(k == key for k, _ in self.running):
                raise OperationError(f"A job is already running in run {key}.", 409)
            job = Job(key, step.id, publish=self.push)
            self.running[(key, step.id)] = job
        threading.Thread(target=self.work, args=(wf, job, step, values), name=f"job-{key}", daemon=True).start()
        return job

    def push(self, job: Job) -> None:
        self.runtime.broadcaster.publish(Message("sync", to_xml(JobProgress(job, hx_swap_oob="true"))))

    def work(self, wf, job: Job, step, values: dict) -> None:
        args = {"key": job.key, "step": job.step}
        try:
            args["result"] = capped_result(step.job(values, job))
        except Cancelled:
            args["error"] = f"Cancelled after {job.done:,} of {job.total:,}." if job.total else "Cancelled."
        except Exception as error:  # a job's own failure is reported on its card, never raised
            logger.opt(exception=error).warning(f"job {job.key}/{job.step} failed")
            args["error"] = (f"Failed: {error}" if str(error) else f"Failed ({type(error).__name__}).")[:ERROR_LIMIT]
        finally:
            with self.lock:
                self.running.pop((job.key, job.step), None)
        if job.cancelled.is_set() and self.closing:
            return  # the server is stopping: leave the step open to start again
        try:
            self.runtime.registry.execute(f"{wf.name}.finish_job", args, actor="system")
        except OperationError as error:  # e.g. the run was deleted meanwhile
            logger.info(f"job {job.key}/{job.step} ended but was not saved: {error.message}")

    def cancel(self, key: str) -> bool:
        """Ask every job of a run to stop; False if none was running."""
        jobs = [job for (k, _), job in list(self.running.items()) if k == key]
        for job in jobs:
            job.cancelled.set()
        return bool(jobs)

    def close(self) -> None:
        """Stop every job (server shutdown)."""
        self.closing = True
        for job in list(self.running.values()):
            job.cancelled.set()
