"""The read-only source viewer: a file of the knowledge index with line numbers, at a line.

Only a path listed in the index opens, resolved under the root it was indexed
from; anything else (another file, `..`, an absolute path) is a 404 with a
clear message. The text is escaped by the components like any other text.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fasthtml.common import A, H1, Body, Code, Head, Html, Main, P, Pre, Small, Span, Style, Title

from ..actions import parse_int
from ..db import Database
from ..ui import Headers

VIEWER_CSS = """
.source { font-size: .8rem; line-height: 1.35; padding: 0; overflow-x: auto; }
.source .line { display: block; padding: 0 .75rem; white-space: pre; }
.source .line.hl { background: rgba(255, 200, 0, .22); }
.source .line:target { outline: 2px solid rgba(255, 160, 0, .7); }
.source .ln { display: inline-block; width: 4.5ch; margin-right: 1ch; text-align: right; opacity: .55;
              user-select: none; text-decoration: none; }
"""


MAX_LINE = 10_000_000


class NotInIndex(LookupError):
    """The path is not a file of the knowledge index (or no longer exists); str() says so."""


def source_url(path: str, line: int | None = None, end: int | None = None) -> str:
    """The viewer's URL for a file, scrolled to a line (and highlighting line..end)."""
    query = {"path": path} | ({"line": line} if line else {}) | ({"end": end} if end and line and end > line else {})
    return f"/source?{urlencode(query)}" + (f"#L{line}" if line else "")


def resolve(db: Database, path: str) -> Path:
    """The file behind an indexed path; NotInIndex for anything else."""
    rows = db.query("SELECT root FROM knowledge_files WHERE path = ?", (path,)) if path else []
    if not rows:
        raise NotInIndex(f"{path!r} is not a file in Chip's knowledge index, so it cannot be shown.")
    root = Path(rows[0]["root"]).resolve()
    file = (root / path).resolve()
    if root not in file.parents or not file.is_file():
        raise NotInIndex(f"{path} is in the index but no longer exists on disk.")
    return file


def line_number(text: str, name: str) -> int | None:
    """A line number from a query parameter (None if absent); OperationError (400) for anything else."""
    return parse_int(text, name=name, lo=1, hi=MAX_LINE) if text else None


def SourceLine(number: int, text: str, highlighted: bool):
    return Span(A(str(number), href=f"#L{number}", cls="ln", aria_hidden="true"), text,
                id=f"L{number}", cls="line hl" if highlighted else "line")


def SourcePage(path: str, text: str, line: int | None = None, end: int | None = None):
    """The whole viewer page for one file."""
    lines = text.splitlines() or [""]
    first, last = (line, max(end or line, line)) if line else (0, -1)
    return Html(Head(Title(f"{path} · Theseus source"), *Headers(), Style(VIEWER_CSS)),
                Body(Main(H1(Code(path)),
                          P(Small(f"Read-only · {len(lines)} lines" + (f" · line {line}" if line else ""), " · ",
                                  A("Back to Theseus", href="/"))),
                          Pre(*[SourceLine(n, t, first <= n <= last) for n, t in enumerate(lines, 1)],
                              cls="source", data_path=path),
                          cls="container-fluid source-page")))
