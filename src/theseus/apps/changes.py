"""Changes: the inbox for code changes. Paste a diff (or a whole file and its path), preview it, apply it; see each
change's fate (proposed, applied, failed and why, reverted), apply Chip's proposals and revert.

The work is done by `theseus.changes` (check, write, restart, verify, roll back; its routes and components); this
app is the page.
"""

from __future__ import annotations

from fasthtml.common import H2, Button, Div, Form, Input, Label, P, Small, Textarea

from ..changes.files import roots
from ..changes.ui import CHANGES_URL, PREVIEW_ID, ChangeList
from ..plugins import Plugin


class Changes(Plugin):
    name = "changes"
    display_name = "Changes"
    description = "Change Theseus's code or your plugins: preview, apply with automatic rollback, revert."
    order = 95

    def render(self, request):
        where = ", ".join(f"{name}/" for name in roots(self.runtime.config))
        form = Form(Label("A unified diff, or a whole file", Textarea(name="text", rows=12, required=True,
                                                                       placeholder="--- a/apps/notes.py\n+++ b/..."
                                                                                   "\n@@ ... @@")),
                    Label("Its path (only for a whole file)", Input(name="path", placeholder="workflows/hello.py")),
                    Button("Preview"), hx_post=f"{CHANGES_URL}/preview", hx_target=f"#{PREVIEW_ID}")
        return Div(H2("Changes"), P(Small(f"A change may write files under {where}. Applying checks that the code "
                                          "parses and imports, restarts Theseus on it and checks that every app "
                                          "still loads and renders; if not, the old files come back.")),
                   form, Div(id=PREVIEW_ID), H2("Recent changes"), ChangeList(self.runtime.changes.recent()),
                   cls="changes-app")
