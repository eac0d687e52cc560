"""BaseApp: a CRUD list plugin (a table of items with add, inline edit, delete and sort).

A subclass names its table and item, declares the table's `columns` (name ->
Python type), its `insert` and `update` operations with typed signatures, and
may render one item its own way. BaseApp supplies the table (with `id`,
`priority` and, per profile, `profile_id`), the `list`, `delete` and `sort`
operations, the item and list ids, the add and inline-edit forms (one input
per column), drag-and-drop sorting, the fragments that keep every tab in
sync, and how Chip sees and drives the rows (apps/guide.py).
"""

from __future__ import annotations

from fasthtml.common import H2, Button, Form, Input, Li, Section, Small, Span, Ul

from ..actions import NotFound, OpContext, OperationError, Outcome, Result, operation, parse_int
from ..plugins import Plugin
from ..tables import Table
from ..ui import op_url
from .guide import RowGuide


MANY_CHANGES = 50  # past this many changed rows, re-render the list instead of each row
PAGE_SIZE = 100  # rows rendered per page of a list


class BaseApp(RowGuide, Plugin):
    """A list of rows in one table, ordered by `priority`."""

    table: str = ""
    item: str = ""            # what one row is called: "task", "profile"
    columns: dict[str, type] = {"name": str}  # the table's own columns; the first text column names a row
    not_null: tuple[str, ...] | None = None  # default: the column that names a row
    defaults: dict = {}
    per_profile: bool = False  # rows belong to the current profile (a profile_id column)
    name_limit: int = 500
    drivable = True

    @property
    def tables(self) -> list[Table]:
        """The one table: `id`, the declared columns, `priority` (the list order) and, per profile, `profile_id`."""
        columns = {"id": int, **self.columns, "priority": int} | ({"profile_id": int} if self.per_profile else {})
        own = self.not_null if self.not_null is not None else (self.label_field,)
        not_null = (*own, "priority", *(("profile_id",) if self.per_profile else ()))
        return [Table(self.table, columns, not_null=not_null, defaults={"priority": 0, **self.defaults},
                      foreign_keys=(("profile_id", "profiles"),) if self.per_profile else (),
                      indexes={f"{self.table}_by_profile": ("profile_id", "priority", "id")} if self.per_profile
                      else {})]

    # ---- ids: one helper each, so routes, swaps and tests agree ----
    def item_id(self, row_id: int) -> str:
        return f"{self.item}-{row_id}"

    def list_id(self, profile_id: int | None = None) -> str:
        if self.per_profile:
            return f"{self.name}-list-{profile_id or self.runtime.profile_id}"
        return f"{self.name}-list"

    # ---- data ----
    def rows(self, profile_id: int | None = None, after: tuple[int, int] | None = None,
             limit: int = -1) -> list[dict]:
        """Rows in display order (of the current profile, for per-profile apps).

        `after` is the (priority, id) of the last row already shown: keyset paging, so rows
        added or removed meanwhile never shift a page.
        """
        where, params = [], []
        if self.per_profile:
            where.append("profile_id = ?")
            params.append(profile_id or self.runtime.profile_id)
        if after is not None:
            where.append("(priority, id) > (?, ?)")
            params.extend(after)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.db.query(f"SELECT * FROM {self.table} {clause} ORDER BY priority, id LIMIT ?",
                             (*params, limit))

    def find(self, ctx, row_id: int) -> dict:
        """The row with this id, or NotFound (also for a row of another profile)."""
        row = ctx.get(self.table, row_id)
        if row is None or (self.per_profile and row["profile_id"] != ctx.profile_id):
            where = " in the current profile" if self.per_profile else ""
            raise NotFound(f"There is no {self.item} #{row_id}{where}.")
        return row

    def next_priority(self, ctx) -> int:
        where, params = ("WHERE profile_id = ?", (ctx.profile_id,)) if self.per_profile else ("", ())
        return ctx.db.value(f"SELECT COALESCE(MAX(priority), -1) + 1 FROM {self.table} {where}", params)

    def is_last(self, row: dict) -> bool:
        """Whether the row is at the end of its list."""
        where, params = ("WHERE profile_id = ?", (row["profile_id"],)) if self.per_profile else ("", ())
        last = self.db.value(f"SELECT MAX(priority) FROM {self.table} {where}", params)
        return last is None or row["priority"] >= last

    def prepare_insert(self, ctx, args: dict) -> dict:
        """The row to insert for these (validated) arguments."""
        row = {k: v for k, v in args.items() if v is not None}
        row["priority"] = self.next_priority(ctx)
        if self.per_profile:
            row["profile_id"] = ctx.profile_id
        return row

    def prepare_update(self, ctx, item: dict, args: dict) -> dict:
        """The fields to change on `item` for these arguments (None means leave as is)."""
        return {k: v for k, v in args.items() if v is not None}

    def insert_item(self, ctx, **args) -> dict:
        return ctx.insert(self.table, self.prepare_insert(ctx, args))

    def update_item(self, ctx, row_id: int, **args) -> tuple[dict, dict]:
        """Apply an update; return (before, after)."""
        before = self.find(ctx, row_id)
        fields = self.prepare_update(ctx, before, args)
        if not fields:
            raise OperationError(f"Nothing to change on {self.item} #{row_id}.")
        return before, ctx.update(self.table, row_id, **fields)

    def snapshot(self, limit: int) -> dict:
        """The rows in list order (of the current profile, for per-profile apps), at most `limit`."""
        rows = self.rows(limit=limit + 1)
        return {"item": self.item, "summary": self.summary(), "rows": rows[:limit], "more": len(rows) > limit}

    def label(self, row: dict) -> str:
        return f"{self.item} '{row[self.label_field]}' (#{row['id']})"

    # ---- operations every list app has ----
    @operation(target="", name="list", verb="show", read_only=True)
    def list_items(self, ctx) -> Result:
        """List all {items} with their ids."""
        rows = self.rows(ctx.profile_id)
        return Result(f"{len(rows)} {self.item}{'' if len(rows) == 1 else 's'}", rows)

    @operation(target="", destructive=True, verb="delete")
    def delete(self, ctx, id: int) -> Result:
        """Delete one {item} by its id."""
        row = self.find(ctx, id)
        ctx.delete(self.table, id)
        return Result(f"Deleted {self.label(row)}", row)

    @operation(target="", verb="reorder")
    def sort(self, ctx, ids: list[int]) -> Result:
        """Reorder {items}: ids in their new order (unlisted ones keep their order after them)."""
        if len(set(ids)) != len(ids):
            raise OperationError(f"The new order lists a {self.item} twice.")
        rows = self.rows(ctx.profile_id)
        current = [r["id"] for r in rows]
        known = set(current)
        stray = [i for i in ids if i not in known]
        if stray:
            raise NotFound(f"There is no {self.item} #{stray[0]} in this list.")
        listed = set(ids)
        order = ids + [i for i in current if i not in listed]
        priorities = {r["id"]: r["priority"] for r in rows}
        for position, row_id in enumerate(order):
            if priorities[row_id] != position:
                ctx.update(self.table, row_id, priority=position)
        return Result(f"Reordered {len(ids)} {self.item}s", order)

    # ---- rendering ----
    def render_item(self, row: dict, **attrs):
        """One row as a list item: drag handle, its name (click to edit), its other fields, delete."""
        label = row[self.label_field]
        details = [f"{field}: {row[field]}" for field in self.fields
                   if field != self.label_field and row.get(field) not in (None, "")]
        return Li(Input(type="hidden", name="ids", value=row["id"]),
                  Span("⠿", cls="handle", title="Drag to reorder", aria_hidden="true"),
                  Span(label, cls="name", **self.edit_attrs(row)),
                  Small(" · ".join(details), cls="details") if details else "",
                  Button("✕", cls="delete outline secondary", aria_label=f"Delete {label}",
                         hx_post=op_url(f"{self.name}.delete"), hx_vals={"id": row["id"]}, hx_swap="none",
                         hx_confirm=f"Delete the {self.item} “{label}”?"),
                  id=self.item_id(row["id"]), cls="item", **attrs)

    def edit_attrs(self, row: dict) -> dict:
        """What makes a row's name open its inline edit form (nothing if the app has no `update`)."""
        if not self.text_params("update"):
            return {}
        return {"title": "Click to edit", "hx_get": f"{self.view_url(row['id'])}/edit",
                "hx_target": f"#{self.item_id(row['id'])}", "hx_swap": "outerHTML"}

    def text_params(self, verb: str) -> list:
        """The text arguments of the app's `verb` operation (insert, update): one form field each."""
        op = self.runtime.registry.operations.get(f"{self.name}.{verb}")
        return [p for p in op.params if p.kind == "str"] if op else []

    def field_input(self, param, value: str = "", **attrs):
        """One form field for a text argument (the row's name field is required, the rest as declared)."""
        main = param.name == self.label_field
        limit = param.text.max_len if param.text else self.name_limit
        return Input(**{"name": param.name, "value": value or "", "maxlength": limit,
                        "required": main or param.required, "aria_label": param.name.capitalize(),
                        "placeholder": f"New {self.item}…" if main else param.name.capitalize()} | attrs)

    def render_edit(self, row: dict):
        """The inline edit form for one row: a field for each text argument of `update`."""
        fields = [self.field_input(p, row.get(p.name), aria_label=f"Rename {self.item}" if
                                   p.name == self.label_field else p.name.capitalize(),
                                   autofocus=p.name == self.label_field) for p in self.text_params("update")]
        return Li(Form(Input(type="hidden", name="id", value=row["id"]), *fields,  # Escape cancels: theseus.js
                       Button("Save", type="submit"),
                       Button("Cancel", type="button", cls="secondary cancel",
                              hx_get=self.view_url(row["id"]), hx_target=f"#{self.item_id(row['id'])}",
                              hx_swap="outerHTML"),
                       hx_post=op_url(f"{self.name}.update"), hx_swap="none", cls="edit-form"),
                  id=self.item_id(row["id"]), cls="editing")

    def render_add_form(self):
        """A field for each text argument of `insert`, and Add."""
        fields = [self.field_input(p, aria_label=f"New {self.item}" if p.name == self.label_field else
                                   p.name.capitalize(), autocomplete="off") for p in self.text_params("insert")]
        if not fields:
            return ""
        return Form(*fields, Button("Add", type="submit"),
                    hx_post=op_url(f"{self.name}.insert"), hx_swap="none", cls="add-form",
                    id=f"{self.name}-add")

    def render_list(self, profile_id: int | None = None, **attrs):
        """The list with its first page of rows; the rest loads as the user scrolls."""
        list_id = self.list_id(profile_id)
        return Ul(*self.render_page(profile_id), id=list_id, cls="items sortable",
                  hx_post=op_url(f"{self.name}.sort"), hx_trigger="end", hx_swap="none",
                  hx_include=f"#{list_id} input[name='ids']", **attrs)

    def render_page(self, profile_id: int | None = None, after: tuple[int, int] | None = None) -> list:
        """One page of items, followed by a 'more' item that loads the next page when revealed."""
        rows = self.rows(profile_id, after, PAGE_SIZE + 1)
        items = [self.render_item(r) for r in rows[:PAGE_SIZE]]
        if len(rows) > PAGE_SIZE:
            last = rows[PAGE_SIZE - 1]
            items.append(Li("Loading more…", cls="more", hx_trigger="revealed", hx_swap="outerHTML",
                            hx_get=f"/apps/{self.name}/more?priority={last['priority']}&id={last['id']}"))
        return items

    def render(self, request):
        return Section(H2(self.display_name), self.render_add_form(), self.render_list(),
                       id=f"{self.name}-app", cls="crud-app")

    def view_url(self, row_id: int) -> str:
        return f"/apps/{self.name}/{row_id}"

    def fragments(self, outcome: Outcome) -> list:
        """Out-of-band swaps for the rows an operation changed (the whole list after a reorder)."""
        changes = [c for c in outcome.changes if c.table == self.table]
        moved = any(c.before and c.after and c.before["priority"] != c.after["priority"] for c in changes)
        restored = any(c.before is None and not self.is_last(c.after) for c in changes)  # e.g. by an undo
        if moved or restored or len(changes) > MANY_CHANGES:
            return [self.render_list(hx_swap_oob="true")]
        return [self.change_fragment(c) for c in changes]

    def change_fragment(self, change):
        if change.after is None:
            return Li(id=self.item_id(change.before["id"]), hx_swap_oob="delete")
        if change.before is None:  # appended, unless the tab has not loaded the end of the list yet
            list_id = self.list_id(change.after.get("profile_id"))
            return Ul(self.render_item(change.after),
                      hx_swap_oob=f"beforeend:#{list_id}:not(:has(> li.more))")
        return self.render_item(change.after, hx_swap_oob="true")

    def routes(self, app) -> None:
        @app.get(f"/apps/{self.name}/more")
        def more_items(priority: str = "", id: str = ""):
            after = (parse_int(priority, name="priority"), parse_int(id, name="id"))
            return tuple(self.render_page(after=after))

        @app.get(f"/apps/{self.name}/{{row_id}}")
        def view_item(row_id: str):
            return self.render_item(self.row_or_404(parse_int(row_id, name="row_id", lo=1)))

        @app.get(f"/apps/{self.name}/{{row_id}}/edit")
        def edit_item(row_id: str):
            return self.render_edit(self.row_or_404(parse_int(row_id, name="row_id", lo=1)))

    def row_or_404(self, row_id: int) -> dict:
        return self.find(OpContext(self.db, "user"), row_id)

    def target_row(self, args: dict) -> tuple[str, dict] | None:
        return (self.table, self.row_or_404(args["id"])) if "id" in args else None
