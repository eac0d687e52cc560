"""Activity: the action log as an app, and `undo`, which reverts any change from its snapshot.

Every event keeps a before/after snapshot of the rows it changed. Undo writes
the `before` back (deleting inserted rows, re-inserting deleted ones), but only
if those rows still look exactly like the event's `after`: a row changed since
must have that later change undone first.
"""

from __future__ import annotations

import json

import apsw

from fasthtml.common import H2, Button, Li, P, Section, Small, Span, Strong, Ul

from ..actions import NotFound, OperationError, Result, operation
from ..events import WHO
from ..plugins import Plugin
from ..ui import op_url

ACTIVITY_LIST_ID = "activity-list"
SHOWN = 100


def event_item_id(event_id: int) -> str:
    return f"event-{event_id}"


class History(Plugin):
    name = "history"
    display_name = "Activity"
    description = "Everything you and Chip did, newest first; undo any change."
    order = 90
    item = "change"

    @operation(target="change", anywhere=True)
    def undo(self, ctx, event_id: int | None = None) -> Result:
        """Undo Chip's most recent change, or the change with this event id (with the rest of its plan)."""
        event = self.event(ctx, event_id)
        if event["changes"] == "[]":
            raise OperationError(f"“{event['summary']}” changed no data, so there is nothing to undo.")
        if event["undone"]:
            raise OperationError(f"“{event['summary']}” was already undone.")
        events = self.plan_events(ctx, event)
        signals = set()
        try:
            for undone in events:
                for change in reversed(json.loads(undone["changes"])):
                    signals.update(self.revert(ctx, change))
        except apsw.ConstraintError:  # e.g. a deleted task whose profile is gone since
            raise OperationError(f"“{event['summary']}” can't be undone: what it belonged to is gone.") from None
        ids = [e["id"] for e in events]
        ctx.db.conn.execute(f"UPDATE events SET undone = 1 WHERE id IN ({', '.join('?' * len(ids))})", ids)
        summary = "; ".join(e["summary"] for e in reversed(events))
        return Result(f"Undid: {summary}", {"event_id": event["id"], "event_ids": ids}, tuple(sorted(signals)))

    @staticmethod
    def plan_events(ctx, event: dict) -> list[dict]:
        """The events one Undo reverts, newest first: the event, or every change of its plan not undone yet."""
        if not event["plan"]:
            return [event]
        return ctx.db.query("SELECT * FROM events WHERE plan = ? AND undone = 0 AND changes != '[]' "
                            "ORDER BY id DESC", (event["plan"],))

    def event(self, ctx, event_id: int | None) -> dict:
        if event_id is None:
            rows = ctx.db.query("SELECT * FROM events WHERE actor = 'llm' AND undone = 0 AND changes != '[]' "
                                "AND operation != 'history.undo' ORDER BY id DESC LIMIT 1")
            if not rows:
                raise NotFound("Chip has made no change that could be undone.")
            return rows[0]
        rows = ctx.db.query("SELECT * FROM events WHERE id = ?", (event_id,))
        if not rows:
            raise NotFound(f"There is no event #{event_id}.")
        return rows[0]

    def revert(self, ctx, change: dict) -> tuple[str, ...]:
        """Put one row back as it was before the change; the client signals that causes."""
        table, before, after = change["table"], change["before"], change["after"]
        row_id = (after or before)["id"]
        if ctx.get(table, row_id) != after:
            raise OperationError(f"{table[:-1].capitalize()} #{row_id} has changed since; "
                                 "undo the later change first.")
        if before is None:
            return self.remove(ctx, table, row_id)
        if after is None:
            ctx.insert(table, before)
        else:
            ctx.update(table, row_id, **{k: v for k, v in before.items() if k != "id"})
        return ()

    def remove(self, ctx, table: str, row_id: int) -> tuple[str, ...]:
        """Undo an insert. A row others belong to (a profile) goes through its app's own delete:
        its tasks are deleted (and logged) with it, the last one is kept, the current one is switched."""
        owner = next((p for p in self.runtime.plugins.values() if getattr(p, "table", None) == table), None)
        if owner is not None and not getattr(owner, "per_profile", True):
            return owner.delete(ctx, id=row_id).signals
        ctx.delete(table, row_id)
        return ()

    def events(self) -> list[dict]:
        return self.db.query("SELECT * FROM events WHERE actor != 'system' OR changes != '[]' "
                             "ORDER BY id DESC LIMIT ?", (SHOWN,))

    def render_event(self, event: dict, **attrs):
        undoable = event["changes"] != "[]" and not event["undone"] and event["operation"] != "history.undo"
        return Li(Small(event["time"][:19].replace("T", " ")), Strong(WHO[event["actor"]]),
                  Span(event["summary"] or event["operation"], cls="summary"),
                  Small("undone", cls="badge") if event["undone"] else "",
                  Button("Undo", cls="outline secondary", hx_post=op_url("history.undo"),
                         hx_vals={"event_id": event["id"]}, hx_swap="none") if undoable else "",
                  id=event_item_id(event["id"]), cls=f"event {event['actor']}", **attrs)

    def render(self, request):
        events = self.events()
        return Section(H2("Activity"), P("Every change, by you or by Chip. Undo restores the rows as they were."),
                       Ul(*[self.render_event(e) for e in events], id=ACTIVITY_LIST_ID, cls="activity"),
                       id="history-app")

    def fragments(self, outcome) -> list:
        """The new event on top of the list; after an undo, the undone event's row too."""
        fragments = [Ul(self.render_event(self.event_row(outcome.event_id)),
                        hx_swap_oob=f"afterbegin:#{ACTIVITY_LIST_ID}")]
        if outcome.operation == "history.undo":
            fragments += [self.render_event(self.event_row(i), hx_swap_oob="true") for i in outcome.value["event_ids"]]
        return fragments

    def event_row(self, event_id: int) -> dict:
        return self.db.query("SELECT * FROM events WHERE id = ?", (event_id,))[0]
