"""Profiles: workspaces. The rows of per-profile apps (Tasks, ...) and workflow runs belong to the current profile."""

from __future__ import annotations

import functools
from typing import Annotated

from fasthtml.common import Button, Input, Li, Small, Span

from ..actions import OperationError, Outcome, Result, Text, operation
from ..ui import ProfileMenu, op_url
from .crud import BaseApp

ProfileName = Annotated[str, Text(min_len=1, max_len=100)]


class Profiles(BaseApp):
    name = "profiles"
    display_name = "Profiles"
    description = "Workspaces: each has its own tasks, contacts, runs... Switch with the menu in the nav bar."
    order = 20
    table = "profiles"
    item = "profile"
    name_limit = 100

    @operation(target="profile")
    def insert(self, ctx, name: ProfileName) -> Result:
        """Create a new profile with this name."""
        row = self.insert_item(ctx, name=name)
        return Result(f"Added {self.label(row)}", row)

    @operation(target="profile")
    def update(self, ctx, id: int, name: ProfileName) -> Result:
        """Rename the profile with this id."""
        before, after = self.update_item(ctx, id, name=name)
        return Result(f"Renamed profile #{id} from '{before['name']}' to '{after['name']}'", after)

    @operation(target="profile", destructive=True)
    def delete(self, ctx, id: int) -> Result:
        """Delete the profile with this id and everything in it."""
        profile = self.find(ctx, id)
        others = [r["id"] for r in self.rows() if r["id"] != id]
        if not others:
            raise OperationError("You can't delete the last profile.")
        counts = self.contents(id)
        for table, column in self.dependents:
            for row in ctx.db.query(f"SELECT id FROM [{table}] WHERE [{column}] = ?", (id,)):
                ctx.delete(table, row["id"])  # one by one, so the undo restores each
        ctx.delete(self.table, id)
        signals = ()
        if ctx.profile_id == id:
            ctx.store["profile_id"] = others[0]
            signals = ("profile",)
        return Result(f"Deleted {self.label(profile)}" + (f" and its {counts}" if counts else ""), profile, signals)

    @functools.cached_property
    def dependents(self) -> list[tuple[str, str]]:
        """(table, column) of every table whose rows belong to a profile (a foreign key to profiles): the
        per-profile apps' tables, any plugin's, the workflow runs (the schema is settled once plugins load)."""
        tables = [r["name"] for r in self.db.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                   "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%'")]
        return [(table, key["from"]) for table in tables
                for key in self.db.query("SELECT * FROM pragma_foreign_key_list(?)", (table,))
                if key["table"] == self.table and table != self.table]

    def contents(self, profile_id: int) -> str:
        """What a profile holds, in words: '3 tasks, 1 contact, 2 workflow runs' ('' when nothing)."""
        items = {getattr(p, "table", None): p.item for p in self.runtime.plugins.values()} | {"pipelines": "workflow run"}
        counts = [(items.get(table, f"{table} row"),
                   self.db.value(f"SELECT COUNT(*) FROM [{table}] WHERE [{column}] = ?", (profile_id,)))
                  for table, column in self.dependents]
        return ", ".join(f"{n} {item}{'' if n == 1 else 's'}" for item, n in counts if n)

    @operation(target="profile")
    def switch(self, ctx, id: int) -> Result:
        """Make the profile with this id the current one."""
        profile = self.find(ctx, id)
        ctx.store["profile_id"] = id
        return Result(f"Switched to {self.label(profile)}", profile, ("profile",))

    def render_item(self, row: dict, **attrs):
        current = row["id"] == self.runtime.profile_id
        return Li(Input(type="hidden", name="ids", value=row["id"]),
                  Span("⠿", cls="handle", title="Drag to reorder", aria_hidden="true"),
                  Span(row["name"], cls="name", title="Click to rename",
                       hx_get=f"{self.view_url(row['id'])}/edit", hx_target=f"#{self.item_id(row['id'])}",
                       hx_swap="outerHTML"),
                  Small(self.contents(row["id"]) or "empty", cls="count"),
                  Small("current", cls="badge") if current else
                  Button("Switch", cls="outline", hx_post=op_url("profiles.switch"), hx_vals={"id": row["id"]},
                         hx_swap="none"),
                  Button("✕", cls="delete outline secondary", aria_label=f"Delete {row['name']}",
                         hx_post=op_url("profiles.delete"), hx_vals={"id": row["id"]}, hx_swap="none",
                         hx_confirm=f"Delete the profile “{row['name']}” and all it holds?"),
                  id=self.item_id(row["id"]), cls="item current" if current else "item", **attrs)

    def menu(self, **attrs):
        return ProfileMenu(self.rows(), self.runtime.profile_id, **attrs)

    def fragments(self, outcome: Outcome) -> list:
        """Row swaps and the nav menu; the whole list after a switch (the 'current' mark moves)."""
        if "profile" in outcome.signals:
            return [self.render_list(hx_swap_oob="true"), self.menu(hx_swap_oob="true")]
        fragments = super().fragments(outcome)
        if any(c.table == self.table for c in outcome.changes):
            fragments.append(self.menu(hx_swap_oob="true"))
        columns = dict(self.dependents)
        counted = {(c.after or c.before).get(columns[c.table]) for c in outcome.changes if c.table in columns} - {None}
        counted -= {(c.after or c.before)["id"] for c in outcome.changes if c.table == self.table}
        rows = self.db.query(f"SELECT * FROM profiles WHERE id IN ({','.join('?' * len(counted))})",
                             tuple(counted)) if counted else []
        return fragments + [self.render_item(row, hx_swap_oob="true") for row in rows]

    def summary(self) -> str:
        current = self.db.value("SELECT name FROM profiles WHERE id = ?", (self.runtime.profile_id,))
        return f"current profile: {current}"

