"""A change's life: prepare (read a diff or a whole file), check, write, restart, verify in the new process, or roll
back; revert. Each change is a `code_changes` row; an applied one is also an event in the action log.

The row survives the restart: the old process writes the files and marks the
change "restarting"; the new process (`verify_pending`, at start) checks its
health and marks it applied, or puts the old files back, marks it failed with
the problem, and restarts on the old code. If the new code cannot even start,
`serve` rolls back the same way (`roll_back_pending`) before it gives up.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from ..actions import NotFound
from ..db import Database, utc_now
from ..devloop import Problem
from ..events import append_event
from ..logs import log_safe
from .checks import health_problems, problems_before_writing
from .diffs import Edit, apply as apply_patch, is_diff, parse
from .files import ChangeError, target, text_of

RESTART_SECONDS = 60.0  # how long the old process waits to be replaced before it rolls the change back itself
HEALTH_SECONDS = 60.0  # how long the new process's health check may take
LIST_LIMIT = 50


@dataclass
class Change:
    """One code change as recorded."""

    id: int
    time: str
    actor: str
    title: str
    edits: list[Edit]
    status: str
    error: str = ""
    plugins: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    reverts: int | None = None
    event_id: int | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Change":
        edits = [Edit.from_json(f) for f in json.loads(row["files"])]
        return cls(row["id"], row["time"], row["actor"], row["title"], edits, row["status"], row["error"],
                   json.loads(row["plugins"]), json.loads(row["broken"]), row["reverts"], row["event_id"])

    def summary(self) -> str:
        """'apps/notes.py (+2 −1)', for each file."""
        return ", ".join(f"{e.name} (+{e.counts()[0]} −{e.counts()[1]})" for e in self.edits)

    def to_json(self) -> dict:
        return {"id": self.id, "time": self.time, "actor": self.actor, "title": self.title, "status": self.status,
                "error": self.error, "reverts": self.reverts, "event_id": self.event_id,
                "files": [e.to_json() for e in self.edits]}


def prepare(config, text: str, path: str = "") -> list[Edit]:
    """The edits a change makes: `text` is a unified diff, or (with `path`) a whole file's new text. ChangeError
    if a path may not be written, a hunk does not apply, or nothing would change."""
    if path:
        where = target(config, path)
        edits = [Edit(where.name, where.read(), text)]
    elif is_diff(text):
        found: dict[str, Edit] = {}  # two patches of one file apply one after the other
        for patch in parse(text):
            where = target(config, patch.new if patch.new != "/dev/null" else patch.old)
            if where.name not in found:
                current = where.read()
                found[where.name] = Edit(where.name, current, current)
            edit = found[where.name]
            edit.after = apply_patch(patch, edit.after, where.name)
        edits = list(found.values())
    else:
        raise ChangeError("Paste a unified diff (--- a/PATH, +++ b/PATH, @@ hunks), or a whole file with the path "
                          "it goes to.")
    edits = [e for e in edits if e.before != e.after]
    for edit in edits:
        if edit.after is not None:
            text_of(edit.after.encode("utf-8", "surrogatepass"), edit.name)  # no binary, nothing too big
    if not edits:
        raise ChangeError("Nothing would change: the files already read like this.")
    return edits


def write(config, edits: list[Edit], *, undo: bool = False) -> None:
    """Write each file's new text (its old one with `undo`), each atomically; a file that is None is removed."""
    for edit in edits:
        path = target(config, edit.name).path
        text = edit.before if undo else edit.after
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(partial, path)


class CodeChanges:
    """The changes of one runtime; `runtime.restart` (set by `serve`) restarts the server on the new code."""

    def __init__(self, runtime):
        self.runtime, self.db, self.config = runtime, runtime.db, runtime.config
        self.guards: set[asyncio.Task] = set()
        self.one_at_a_time = asyncio.Lock()

    # ---- records ----
    def get(self, change_id: int) -> Change:
        rows = self.db.query("SELECT * FROM code_changes WHERE id = ?", (change_id,))
        if not rows:
            raise NotFound(f"There is no code change #{change_id}.")
        return Change.from_row(rows[0])

    def recent(self, limit: int = LIST_LIMIT) -> list[Change]:
        return [Change.from_row(r) for r in self.db.query("SELECT * FROM code_changes ORDER BY id DESC LIMIT ?",
                                                          (limit,))]

    def record(self, edits: list[Edit], actor: str, title: str, status: str, error: str = "",
               reverts: int | None = None) -> Change:
        with self.db.transaction():
            row = self.db.table("code_changes").insert({
                "time": utc_now(), "actor": actor, "title": title or default_title(edits),
                "files": json.dumps([e.to_json() for e in edits], ensure_ascii=False), "status": status,
                "error": error, "reverts": reverts, "updated": utc_now()})
        return Change.from_row(row)

    def not_on_disk(self, change: Change) -> list[Problem]:
        """A file that does not read as the change wrote it (changed meanwhile): the change is not what runs."""
        return [Problem(e.name, None, "it changed while the change was being applied") for e in change.edits
                if target(self.config, e.name).read() != e.after]

    def start(self, change: Change, status: str) -> None:
        """Mark it under way, with the plugins loaded now (each must still load after the restart, but for those
        whose files it deletes)."""
        deleted = {target(self.config, e.name).path.resolve() for e in change.edits if e.after is None}
        change.plugins = sorted(name for name, plugin in self.runtime.plugins.items()
                                if plugin_file(plugin) not in deleted)
        change.broken = sorted(b.source for b in self.runtime.broken)
        with self.db.transaction():
            self.db.conn.execute("UPDATE code_changes SET status = ?, plugins = ?, broken = ?, updated = ? "
                                 "WHERE id = ?",
                                 (status, json.dumps(change.plugins), json.dumps(change.broken), utc_now(), change.id))

    def set_status(self, change: Change, status: str, error: str = "") -> None:
        with self.db.transaction():
            self.db.conn.execute("UPDATE code_changes SET status = ?, error = ?, updated = ? WHERE id = ?",
                                 (status, error, utc_now(), change.id))

    # ---- apply ----
    def propose(self, edits: list[Edit], actor: str = "llm", title: str = "") -> Change:
        """Record a change to apply on the user's click (Chip's); nothing is written."""
        return self.record(edits, actor, title, "proposed")

    async def apply(self, edits: list[Edit], *, actor: str = "user", title: str = "",
                    reverts: int | None = None) -> Change:
        """Record a change and carry it out (see `carry_out`)."""
        change = await asyncio.to_thread(self.record, edits, actor, title, "proposed", "", reverts)
        return await self.carry_out(change)

    async def apply_proposed(self, change_id: int) -> Change:
        """Carry out a proposed change, if its files are still as they were when it was proposed."""
        change = await asyncio.to_thread(self.get, change_id)
        if change.status != "proposed":
            raise ChangeError(f"Change #{change_id} is {change.status}; only a proposed change can be applied.")
        for edit in change.edits:
            if await asyncio.to_thread(target(self.config, edit.name).read) != edit.before:
                await asyncio.to_thread(self.set_status, change, "failed", f"{edit.name} changed since it was proposed")
                raise ChangeError(f"{edit.name} changed since change #{change_id} was proposed; nothing was written.")
        return await self.carry_out(change)

    async def carry_out(self, change: Change) -> Change:
        """Check, write and restart (a change of no Python file needs no restart: it is applied at once).
        ChangeError if another change is still under way, a check fails or this server cannot restart itself (the
        change is marked failed; nothing was written)."""
        async with self.one_at_a_time:
            return await self.checked_and_written(change)

    async def checked_and_written(self, change: Change) -> Change:
        under_way = await asyncio.to_thread(self.db.value, "SELECT id FROM code_changes WHERE status = 'restarting'")
        if under_way:
            await asyncio.to_thread(self.set_status, change, "failed", f"change #{under_way} was still being applied")
            raise ChangeError(f"Change #{under_way} is still being applied (Theseus restarts on it); try again when "
                              "it is done. Nothing was written.")
        problems = await asyncio.to_thread(problems_before_writing, change.edits)
        restarts = any(e.name.endswith(".py") for e in change.edits)
        if not problems and self.runtime.restart is None and self.runtime.dev_status is None:  # (tests' servers)
            problems = [Problem("theseus", None, "this server cannot restart itself (it was not started by "
                                                 "`theseus serve`), so it applies no change")]
        if problems:
            await asyncio.to_thread(self.set_status, change, "failed", str(problems[0]))
            raise ChangeError(f"Not applied (change #{change.id}): {problems[0]}; nothing was written.")
        await asyncio.to_thread(self.start, change, "restarting" if restarts else "applied")
        try:
            await asyncio.to_thread(write, self.config, change.edits)
        except (OSError, ChangeError) as error:  # e.g. a full disk: what was written goes back
            await asyncio.to_thread(self.roll_back, change, Problem("theseus", None, f"could not write: {error}"))
            raise ChangeError(f"Not applied (change #{change.id}): could not write the files ({error}).") from None
        logger.info(f"changes: #{change.id} written ({change.summary()})"
                    + ("; restarting to verify it" if restarts else ""))
        if not restarts:
            await asyncio.to_thread(self.applied, change)
        elif self.runtime.restart is not None:
            self.runtime.restart()
        else:  # the dev loop restarts the server when it sees the files; if it does not, roll back here
            guard = asyncio.create_task(self.guard(change))
            self.guards.add(guard)
            guard.add_done_callback(self.guards.discard)
        return self.get(change.id)

    async def guard(self, change: Change) -> None:
        await asyncio.sleep(RESTART_SECONDS)
        if self.get(change.id).status == "restarting":
            await asyncio.to_thread(self.roll_back, change, Problem("theseus", None, "the server did not restart "
                                                                     f"within {RESTART_SECONDS:.0f} s"))

    def applied(self, change: Change) -> None:
        """Mark it applied and log it (with every file before and after); a revert marks what it reverted."""
        summary = f"{'Reverted' if change.reverts else 'Applied'} code change #{change.reverts or change.id} " \
                  f"“{change.title}”: {change.summary()}"
        with self.db.transaction():
            event_id = append_event(self.db, actor=change.actor,
                                    operation="changes.revert" if change.reverts else "changes.apply",
                                    args={"change": change.id, "title": change.title,
                                          "files": [e.to_json() for e in change.edits]}, summary=summary)
            self.db.conn.execute("UPDATE code_changes SET status = 'applied', error = '', event_id = ?, updated = ? "
                                 "WHERE id = ?", (event_id, utc_now(), change.id))
            if change.reverts:
                self.db.conn.execute("UPDATE code_changes SET status = 'reverted', updated = ? WHERE id = ?",
                                     (utc_now(), change.reverts))
        logger.info(f"changes: {log_safe(summary, 300)}")

    def roll_back(self, change: Change, problem: Problem) -> None:
        """Put the old files back and mark the change failed; the caller restarts on them."""
        write(self.config, change.edits, undo=True)
        self.set_status(change, "failed", str(problem))
        logger.error(f"changes: #{change.id} rolled back: {log_safe(str(problem), 500)}")

    async def verify_pending(self, app) -> None:
        """In a new process: a change that restarted it is applied if the app is healthy, else rolled back (and
        the server restarts on the old files)."""
        pending = [c for c in self.recent(5) if c.status == "restarting"]
        for change in pending:
            try:
                problems = await asyncio.wait_for(health_problems(app, change.plugins, change.broken),
                                                  HEALTH_SECONDS)
                problems = problems or await asyncio.to_thread(self.not_on_disk, change)
            except TimeoutError:
                problems = [Problem("theseus", None, f"the health check took over {HEALTH_SECONDS:.0f} s")]
            except Exception as error:  # the check itself failed: the new code is not trusted
                logger.opt(exception=error).error(f"changes: #{change.id}: the health check failed")
                problems = [Problem("theseus", None, f"the health check failed: {type(error).__name__}: {error}")]
            if not problems:
                await asyncio.to_thread(self.applied, change)
                continue
            await asyncio.to_thread(self.roll_back, change, problems[0])
            if self.runtime.restart is not None:
                self.runtime.restart()
            return

    # ---- revert ----
    async def revert(self, change_id: int, actor: str = "user") -> Change:
        """Put an applied change's files back through the same check, restart and verify; ChangeError if it is not
        applied or its files changed since."""
        change = await asyncio.to_thread(self.get, change_id)
        if change.status != "applied":
            raise ChangeError(f"Change #{change_id} is {change.status}, not applied; there is nothing to revert.")
        edits = []
        for edit in change.edits:
            now = await asyncio.to_thread(target(self.config, edit.name).read)
            if now != edit.after:
                raise ChangeError(f"{edit.name} changed since change #{change_id}; revert the later change first.")
            edits.append(Edit(edit.name, now, edit.before))
        return await self.apply(edits, actor=actor, title=f"revert #{change_id}: {change.title}", reverts=change_id)


def plugin_file(plugin) -> Path | None:
    try:
        return Path(inspect.getfile(type(plugin))).resolve()
    except (TypeError, OSError):
        return None


def default_title(edits: list[Edit]) -> str:
    return ("new " if all(e.before is None for e in edits) else "edit ") + ", ".join(e.name for e in edits)


def roll_back_pending(config, error: BaseException) -> bool:
    """When the new code cannot start at all: put the old files of every change that restarted the server back and
    mark it failed; whether there was one."""
    db = Database(config.db_path)
    try:
        rows = db.query("SELECT * FROM code_changes WHERE status = 'restarting'")
        for row in rows:
            change = Change.from_row(row)
            write(config, change.edits, undo=True)
            with db.transaction():
                db.conn.execute("UPDATE code_changes SET status = 'failed', error = ?, updated = ? WHERE id = ?",
                                (f"the server did not start: {type(error).__name__}: {error}"[:1000], utc_now(),
                                 change.id))
        return bool(rows)
    finally:
        db.close()
