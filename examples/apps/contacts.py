"""Contacts: a plugin with its own table, written as a user would (documented in theseus/docs/plugins.md)."""

from typing import Annotated

from theseus.actions import Result, Text, operation
from theseus.apps.crud import BaseApp

Name = Annotated[str, Text(min_len=1, max_len=100)]
Email = Annotated[str, Text(max_len=200, pattern=r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+[.][a-zA-Z]+", looks_like="an email address")]
Phone = Annotated[str, Text(max_len=40, pattern=r"[+]?[0-9][0-9 ()./-]*", looks_like="a phone number")]
Notes = Annotated[str, Text(max_len=1000)]


class Contacts(BaseApp):
    name = "contacts"                 # URL /apps/contacts, operations contacts.*
    display_name = "Contacts"
    description = "People: name, email, phone and notes."
    table = "contacts"                # the plugin's own table, created (and given new columns) at start
    columns = {"name": str, "email": str, "phone": str, "notes": str}
    item = "contact"                  # what a row is called, in messages and in Chip's prompt
    per_profile = True                # rows belong to the current profile
    chip_samples = [                  # rows for Chip's examples: three listed, three new (made up if absent)
        {"name": "Grace Hopper", "email": "grace@navy.mil", "phone": "555-0101", "notes": "compiler pioneer"},
        {"name": "Sam Okafor", "email": "", "phone": "555-0102", "notes": ""},
        {"name": "Lin Wei", "email": "lin@example.org", "phone": "", "notes": "met at the book club"},
        {"name": "Maria Lopez", "email": "maria@lopez.es", "phone": "+34 600 123 456", "notes": "plays cello"},
        {"name": "Tomas Berg", "email": "", "phone": "", "notes": ""},
        {"name": "Ines Duarte", "email": "", "phone": "", "notes": ""},
    ]
    chip_phrasings = [                # more examples, in this app's own words, on those rows (#31, #32, #33)
        ("save Maria Lopez as a contact, she plays cello", "add", {"name": "Maria Lopez", "notes": "plays cello"}),
        ("note that Lin is vegetarian", "change", {"contact": "Lin Wei (#33)", "notes": "vegetarian"}),
        ("do I have a number for Lin?", "chat", {}),
        ("Sam got married, his last name is Reid now", "change", {"contact": "Sam Okafor (#32)", "name": "Sam Reid"}),
    ]

    @operation(target="contact", verb="add")
    def insert(self, ctx, name: Name, email: Email | None = None, phone: Phone | None = None,
               notes: Notes | None = None) -> Result:
        """Add a contact: a name, and an email, phone and notes if given."""
        row = self.insert_item(ctx, name=name, email=email, phone=phone, notes=notes)
        return Result(f"Added {self.label(row)}", row)

    @operation(target="contact", verb="change")
    def update(self, ctx, id: int, name: Name | None = None, email: Email | None = None,
               phone: Phone | None = None, notes: Notes | None = None) -> Result:
        """Change the given fields of the contact with this id (the others stay as they are)."""
        before, after = self.update_item(ctx, id, name=name, email=email, phone=phone, notes=notes)
        changed = ", ".join(f"{k} to '{v}'" for k, v in after.items() if before.get(k) != v)
        return Result(f"Changed {self.label(after)}: {changed or 'nothing'}", after)
