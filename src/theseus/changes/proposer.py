"""Chip proposes a code change: it finds the one definition a request is about, rewrites it under a constrained
decode, and the diff is computed here (a 0.5B model cannot write unified diffs reliably).

The definition is a function, a class or a `Step(...)` in a file a change may write: the user's plugins, and the
package source in a checkout when the knowledge index cites it for the request. The one whose words (names,
strings) the request shares most is rewritten. The model does not retype it (a small model writing code inside a
JSON string loses quotes and brackets): it picks which of the definition's texts changes (an enum of them) and
writes the new text; the definition is rewritten with it here and must still parse. Nothing is written: the
result is a proposed change that the user applies with one click (through the same check, restart and verify as
any change).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from dataclasses import dataclass

from .diffs import Edit
from .files import ChangeError, Target, target

ASKS_CODE = re.compile(r"^\W*(?:please\s+)?(?:change|make|edit|modify|update|rewrite|fix)\b.*\b(?:the|your|its)\s+"
                       r"(?:[\w'-]+\s+){0,3}?(?:code|step|function|method|class|plugin|workflow|source)(?:s|'s)?\b",
                       re.IGNORECASE | re.DOTALL)
# "'Hi' instead of 'Hello'"
INSTEAD = re.compile(r"""['"‘“](.+?)['"’”]\s+instead\s+of\s+['"‘“](.+?)['"’”]""")
WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])")
SKIP = {"the", "and", "instead", "make", "change", "step", "code", "suggest", "with", "that", "this", "your", "from",
        "into", "please", "function", "method", "class", "plugin", "workflow", "source", "edit", "update", "of"}
DEFINITION_LINES = 60  # a longer definition is too much for the model to rewrite whole
TEXT_LIMIT = 300  # characters of a text the model may write
INSTRUCTIONS = ("You change Python code as the user asks. Below is the code and the request. Answer which text in "
                "the code changes (\"old\", exactly as it is in the code) and what it becomes (\"new\"). Change only "
                "what the request asks for; keep the rest of the text as it is.")


@dataclass(frozen=True)
class Definition:
    """One definition in a file: where it is and its source."""

    file: Target
    name: str
    start: int  # first line, 1-based
    end: int    # last line
    source: str  # from its first character (the indentation before it is not part of it) to its last
    texts: tuple[str, ...] = ()  # its string constants (and the constant parts of its f-strings)
    spans: tuple = ()  # per text: (line, column, end line, end column, in an f-string) of the literal holding it

    @property
    def cite(self) -> str:
        return f"{self.file.name}:{self.start}"


def asks_code_change(request: str) -> bool:
    return bool(ASKS_CODE.search(request))


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} - SKIP


def definitions(file: Target, text: str) -> list[Definition]:
    """The functions, classes and `Step(...)` calls of a file (short enough to rewrite)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines, found = text.splitlines(), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Step":
            name = "Step(" + next((repr(k.value.value) for k in node.keywords if isinstance(k.value, ast.Constant)
                                   and isinstance(k.value.value, str)), "") + ")"
        else:
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if node.end_lineno - start >= DEFINITION_LINES:
            continue
        span = lines[start - 1:node.end_lineno]
        span[-1] = span[-1][:node.end_col_offset]
        span[0] = span[0][node.col_offset:]
        texts = literals(node)
        found.append(Definition(file, name, start, node.end_lineno, "\n".join(span), tuple(texts),
                                tuple(texts.values())))
    return found


def literals(node: ast.AST) -> dict[str, tuple]:
    """The string constants in a definition, each once, in order, with where the literal holding it is (an f-string
    for its constant parts)."""
    found: dict[str, tuple] = {}
    in_fstrings = {id(part) for n in ast.walk(node) if isinstance(n, ast.JoinedStr) for part in n.values}
    holders = {id(part): n for n in ast.walk(node) if isinstance(n, ast.JoinedStr) for part in n.values}
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.strip() and len(n.value) <= TEXT_LIMIT:
            holder = holders.get(id(n), n)
            found.setdefault(n.value, (holder.lineno, holder.col_offset, holder.end_lineno, holder.end_col_offset,
                                       id(n) in in_fstrings))
    return found


def candidate_files(config, knowledge, request: str) -> list[Target]:
    """The user's plugins, then the package files the knowledge index cites for the request (if it has any)."""
    names = [f"{root}/{path.name}" for root in ("apps", "workflows")
             for path in sorted((config.data_dir / root).glob("*.py"))]
    try:
        names += [hit.path for hit in knowledge.search(request, kinds=("code",), limit=5).hits]
    except Exception:  # no index yet, or no embedder: the plugins alone
        pass
    found = []
    for name in dict.fromkeys(names):
        try:
            found.append(target(config, name))
        except ChangeError:
            continue
    return found


def best_definition(config, knowledge, request: str) -> Definition | None:
    """The definition the request shares the most words with (the smallest on a tie); None if none shares one."""
    wanted = words(request)
    scored = []
    for file in candidate_files(config, knowledge, request):
        text = file.read() or ""
        for definition in [d for d in definitions(file, text) if d.texts]:
            shared = len(wanted & words(definition.source + " " + definition.name))
            if shared:
                scored.append((shared, -(definition.end - definition.start), definition))
    return max(scored, key=lambda s: s[:2])[2] if scored else None


def rewrite_messages(definition: Definition, request: str) -> list[dict]:
    return [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": f"Code ({definition.cite}):\n```python\n{definition.source}\n```\n\n"
                                        f"Request: {request}"}]


def rewrite_schema(definition: Definition) -> dict:
    return {"type": "object", "properties": {"old": {"enum": list(definition.texts)},
                                             "new": {"type": "string", "maxLength": TEXT_LIMIT}},
            "required": ["old", "new"], "additionalProperties": False}


def rewritten(text: str, span: tuple, old: str, new: str) -> str:
    """The file's text with `old` replaced by `new` inside the literal at `span` (escaped for that literal)."""
    line, column, end_line, end_column, in_fstring = span
    encoded = text.encode("utf-8")
    starts = [0] + [i + 1 for i, byte in enumerate(encoded) if byte == 0x0A]  # ast columns count UTF-8 bytes
    begin, end = starts[line - 1] + column, starts[end_line - 1] + end_column
    literal = encoded[begin:end].decode("utf-8")
    escaped = new.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"').replace("'", "\\'")
    if in_fstring:
        escaped = escaped.replace("{", "{{").replace("}", "}}")
    at = literal.find(old)
    if at < 0:
        raise ChangeError(f"I could not find {old[:60]!r} written plainly in the code")
    changed = literal[:at] + escaped + literal[at + len(old):]
    return encoded[:begin].decode("utf-8") + changed + encoded[end:].decode("utf-8")


def as_asked(old: str, new: str, request: str) -> str:
    """The new text; when the request says "'X' instead of 'Y'" and the old text has Y, the request's own words
    (the model tends to drop the spaces and commas around them)."""
    said = INSTEAD.search(request)
    return old.replace(said.group(2), said.group(1)) if said and said.group(2) in old else new


def edited(definition: Definition, answer: str, request: str = "") -> Edit:
    """The file with the definition rewritten as the model answered; ChangeError if that does not parse or changes
    nothing."""
    try:
        choice = json.loads(answer)
        old, new = choice["old"], as_asked(choice["old"], choice["new"], request)
        span = definition.spans[definition.texts.index(old)]
    except (ValueError, KeyError, TypeError):
        raise ChangeError("my answer was cut off before it ended") from None
    before = definition.file.read() or ""
    after = rewritten(before, span, old, new)
    try:
        ast.parse(after)
    except SyntaxError as error:
        raise ChangeError(f"what I wrote does not parse ({error.msg}, line {error.lineno})") from None
    if after == before:
        raise ChangeError("my rewrite changed nothing")
    return Edit(definition.file.name, before, after)


async def propose(runtime, backend, request: str) -> tuple[Definition | None, Edit | None, str]:
    """(the definition, the edit, '') or the reason there is none, in words."""
    definition = await asyncio.to_thread(best_definition, runtime.config, runtime.knowledge, request)
    if definition is None:
        return None, None, "I could not find the code that request is about in the files I may change."
    answer = await backend.complete_json(rewrite_messages(definition, request), rewrite_schema(definition),
                                         max_tokens=TEXT_LIMIT // 2 + 60)
    try:
        return definition, edited(definition, answer, request), ""
    except ChangeError as error:
        return definition, None, f"I tried to change `{definition.cite}` ({definition.name}), but {error}."
