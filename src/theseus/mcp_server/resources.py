"""The resources: the docs Chip learns from, and a read-only snapshot of each app's current state.

`theseus://docs/PATH` is a markdown file of the package's docs (the crash
course, each app's page, the workflows' notes); `theseus://apps/NAME` is the
app's state as JSON (its rows, or its runs), from the plugin's `snapshot` hook.
"""

from __future__ import annotations

import json

import mcp_types as types

from ..package_docs import docs_folder

SCHEME = "theseus://"
DOCS = f"{SCHEME}docs/"
APPS = f"{SCHEME}apps/"
SNAPSHOT_ROWS = 1000  # rows (or runs) of one app's snapshot


class UnknownResource(LookupError):
    """No resource has that URI; str() says so."""


def doc_files() -> dict[str, object]:
    """The docs by their path inside docs/ ("apps/tasks.md")."""
    root = docs_folder()
    return {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*.md"))}


def title_of(text: str, fallback: str) -> str:
    heading = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    return heading or fallback


def resources(plugins: dict) -> list[types.Resource]:
    """Every doc, then every app's state."""
    docs = [types.Resource(uri=f"{DOCS}{name}", name=name, title=title_of(path.read_text(encoding="utf-8"), name),
                           mime_type="text/markdown", description="Theseus documentation (what Chip learns from)")
            for name, path in doc_files().items()]
    apps = [types.Resource(uri=f"{APPS}{plugin.name}", name=plugin.name, mime_type="application/json",
                           title=f"{plugin.display_name or plugin.name}: current state",
                           description=f"{plugin.description} Read-only; change it with the app's tools.".strip())
            for plugin in plugins.values()]
    return docs + apps


def read(plugins: dict, uri: str) -> types.TextResourceContents:
    """The resource's text now; UnknownResource if there is none at `uri`."""
    if uri.startswith(DOCS) and (path := doc_files().get(uri[len(DOCS):])):
        return types.TextResourceContents(uri=uri, mime_type="text/markdown", text=path.read_text(encoding="utf-8"))
    if uri.startswith(APPS) and (plugin := plugins.get(uri[len(APPS):])):
        state = {"app": plugin.name, **plugin.snapshot(SNAPSHOT_ROWS)}
        return types.TextResourceContents(uri=uri, mime_type="application/json",
                                          text=json.dumps(state, default=str, ensure_ascii=False))
    raise UnknownResource(f"There is no resource {uri[:200]!r}; resources/list shows them all.")
