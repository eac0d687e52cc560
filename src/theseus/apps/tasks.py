"""Tasks: a per-profile todo list (add, inline edit, toggle done, delete, drag to reorder)."""

from __future__ import annotations

from typing import Annotated

from fasthtml.common import Button, Input, Li, Span

from ..actions import Result, Text, operation
from ..ui import op_url
from .crud import BaseApp

TaskName = Annotated[str, Text(min_len=1, max_len=500)]


class Tasks(BaseApp):
    name = "tasks"
    display_name = "Tasks"
    description = "A todo list for the current profile."
    order = 10
    table = "tasks"
    item = "task"
    columns = {"name": str, "done": bool}
    not_null = ("name", "done")
    defaults = {"done": 0}
    per_profile = True
    chip_samples = [{"name": "water the plants", "done": False}, {"name": "call the bank", "done": True},
                    {"name": "book the dentist", "done": False}, {"name": "buy oat milk", "done": False},
                    {"name": "fix the bike light", "done": False}, {"name": "send the invoice", "done": False}]
    chip_phrasings = [  # how people say it, on the samples (#31 plants, #32 bank, #33 dentist)
        ("remind me to buy oat milk", "add", {"name": "buy oat milk"}),
        ("I watered the plants", "done", {"task": "water the plants (#31)"}),
        ("how are things with you?", "chat", {}),
        ("rename call the bank to: call the bank about the loan", "rename",
         {"task": "call the bank (#32)", "name": "call the bank about the loan"}),
        ("what does the Activity app do?", "help", {}),
        ("what is on my list?", "show", {}),
        ('change "book the dentist" to "book the dentist for Monday"', "rename",
         {"task": "book the dentist (#33)", "name": "book the dentist for Monday"}),
        ("how can I mark a task as finished?", "help", {}),
        ("I need to renew my passport", "add", {"name": "renew my passport"}),
        ("dentist is booked ✅", "done", {"task": "book the dentist (#33)"}),
        ("nice, that was fast", "chat", {}),
        ("get rid of the dentist one", "delete", {"task": "book the dentist (#33)"}),
        ("make the plants task say water the garden", "rename",
         {"task": "water the plants (#31)", "name": "water the garden"}),
        ("how do I change the order of my tasks?", "help", {}),
        ("untick call the bank, I never reached them", "done", {"task": "call the bank (#32)"}),
        ("take the plants off my list", "delete", {"task": "water the plants (#31)"}),
        ("new one: defrost the freezer", "add", {"name": "defrost the freezer"}),
        ("don't let me forget the dentist appointment", "add", {"name": "dentist appointment"}),
        ("mark everything as done", "done", {"task": "every task"}),
        ("clear out the ones that are done", "delete", {"task": "every done task"}),
        ("the plants and the bank are done", [("done", {"task": "water the plants (#31)"}),
                                              ("done", {"task": "call the bank (#32)"})], {}),
        ("add milk, bread and eggs", [("add", {"name": "milk"}), ("add", {"name": "bread"}),
                                      ("add", {"name": "eggs"})], {}),
    ]

    @operation(target="task", verb="add")
    def insert(self, ctx, name: TaskName) -> Result:
        """Add a new task with this name to the current profile."""
        row = self.insert_item(ctx, name=name)
        return Result(f"Added {self.label(row)}", row)

    @operation(target="task", verb="rename")
    def update(self, ctx, id: int, name: TaskName) -> Result:
        """Rename the task with this id."""
        before, after = self.update_item(ctx, id, name=name)
        return Result(f"Renamed task #{id} from '{before['name']}' to '{after['name']}'", after)

    @operation(target="task", verb="done")
    def toggle(self, ctx, id: int) -> Result:
        """Mark the task with this id done, or not done again if it already is."""
        task = self.find(ctx, id)
        after = ctx.update(self.table, id, done=0 if task["done"] else 1)
        state = "done" if after["done"] else "not done"
        return Result(f"Marked {self.label(after)} {state}", after)

    def render_item(self, row: dict, **attrs):
        task_id = self.item_id(row["id"])
        return Li(Input(type="hidden", name="ids", value=row["id"]),
                  Span("⠿", cls="handle", title="Drag to reorder", aria_hidden="true"),
                  Input(type="checkbox", checked=bool(row["done"]), aria_label=f"Done: {row['name']}",
                        hx_post=op_url("tasks.toggle"), hx_vals={"id": row["id"]}, hx_swap="none"),
                  Span(row["name"], cls="name", title="Click to edit", hx_get=f"{self.view_url(row['id'])}/edit",
                       hx_target=f"#{task_id}", hx_swap="outerHTML"),
                  Button("✕", cls="delete outline secondary", aria_label=f"Delete {row['name']}",
                         hx_post=op_url("tasks.delete"), hx_vals={"id": row["id"]}, hx_swap="none",
                         hx_confirm=f"Delete the task “{row['name']}”?"),
                  id=task_id, cls="item done" if row["done"] else "item", **attrs)

    def summary(self) -> str:
        rows = self.rows()
        open_count = sum(1 for r in rows if not r["done"])
        return f"{len(rows)} tasks in this profile, {open_count} open"
