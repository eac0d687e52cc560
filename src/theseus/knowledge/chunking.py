"""Cutting sources into chunks that follow their structure, each with its path and line range.

Markdown is cut at headings (a chunk is one section, titled by its heading
trail); Python at top-level functions and classes (a large class is cut into
its methods); an event of the action log is one chunk. A piece that is still
too long is cut into windows of lines, never mid-line.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass

from ..events import ACTOR_NAMES

MAX_CHARS = 2400  # a chunk longer than this is cut into windows of lines
SMALL_CLASS_LINES = 40  # a class this short stays one chunk; a longer one is cut into its methods
HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece: where it is (path, 1-based inclusive lines), a title and its text."""

    path: str
    kind: str  # doc | code | event
    line_start: int
    line_end: int
    title: str
    text: str
    time: str = ""
    event_id: int | None = None

    @property
    def hash(self) -> str:
        return content_hash(f"{self.title}\n{self.text}")

    @property
    def cite(self) -> str:
        """How a reply cites it: path:line."""
        return f"event #{self.event_id}" if self.kind == "event" else f"{self.path}:{self.line_start}"


def content_hash(text: str | bytes) -> str:
    """The sha256 of a text (or bytes), hex."""
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def chunk_file(path: str, kind: str, text: str, time: str = "") -> list[Chunk]:
    """The chunks of one file's text: markdown by headings, Python by definitions."""
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        return []
    spans = python_spans(text, lines) if path.endswith(".py") else markdown_spans(lines, path)
    chunks = []
    for start, end, title in spans:
        for a, b in windows(lines, start, end):
            body = "\n".join(lines[a - 1:b]).strip("\n")
            if body.strip():
                chunks.append(Chunk(path, kind, a, b, title, body, time))
    return chunks


def windows(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) line windows of at most MAX_CHARS each, covering start..end."""
    result, first, size = [], start, 0
    for number in range(start, end + 1):
        size += len(lines[number - 1]) + 1
        if size > MAX_CHARS and number > first:
            result.append((first, number - 1))
            first, size = number, len(lines[number - 1]) + 1
    result.append((first, end))
    return result


def markdown_spans(lines: list[str], path: str) -> list[tuple[int, int, str]]:
    """(start, end, title) per section; the title is the heading trail, e.g. 'Workflows › Steps'."""
    spans, trail, start, fenced = [], [], 1, False
    title = path.rsplit("/", 1)[-1]
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if not match:
            continue
        if number > start:
            spans.append((start, number - 1, title))
        level, heading = len(match.group(1)), match.group(2)
        trail = [t for t in trail if t[0] < level] + [(level, heading)]
        title, start = " › ".join(t[1] for t in trail), number
    spans.append((start, len(lines), title))
    return [s for s in spans if any(lines[i - 1].strip() for i in range(s[0], s[1] + 1))]


def python_spans(text: str, lines: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, title) per top-level definition, the module head, and what lies between."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return [(1, len(lines), "module (not parsable Python)")]
    module = "module"
    spans, covered = [], 0
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if start - 1 > covered:
            spans.append((covered + 1, start - 1, module if covered == 0 else "module code"))
        spans += definition_spans(node, start)
        covered = node.end_lineno
    if covered < len(lines):
        spans.append((covered + 1, len(lines), module if covered == 0 else "module code"))
    return [s for s in spans if any(lines[i - 1].strip() for i in range(s[0], s[1] + 1))]


def definition_spans(node: ast.AST, start: int) -> list[tuple[int, int, str]]:
    """One span for a function or a small class; a large class: its head, then each method."""
    kind = "class" if isinstance(node, ast.ClassDef) else "def"
    if kind == "def" or node.end_lineno - start < SMALL_CLASS_LINES:
        return [(start, node.end_lineno, f"{kind} {node.name}")]
    methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not methods:
        return [(start, node.end_lineno, f"class {node.name}")]
    spans, covered = [], start - 1
    for method in methods:
        first = min([method.lineno] + [d.lineno for d in method.decorator_list])
        if first - 1 > covered:
            spans.append((covered + 1, first - 1, f"class {node.name}"))
        spans.append((first, method.end_lineno, f"def {node.name}.{method.name}"))
        covered = method.end_lineno
    if node.end_lineno > covered:
        spans.append((covered + 1, node.end_lineno, f"class {node.name}"))
    return spans


def event_chunk(event: dict) -> Chunk:
    """One action-log event as a chunk: when, who, what (its arguments as data)."""
    who = ACTOR_NAMES.get(event["actor"], event["actor"])
    when = event["time"][:16].replace("T", " ")
    args = event["args"] if isinstance(event["args"], str) else json.dumps(event["args"], ensure_ascii=False)
    undone = " (undone later)" if event.get("undone") else ""
    text = f"{when} UTC, {who}: {event['summary'] or event['operation']}{undone}\n" \
           f"operation {event['operation']} {args}"
    return Chunk("events", "event", event["id"], event["id"], f"{event['operation']} at {when}", text,
                 event["time"], event["id"])
