"""The tools: one per offered operation of the registry, and `search` over the knowledge index.

A tool is generated from its operation's one declaration (name, first docstring
line, the JSON schema of its typed signature, and hints from `destructive` and
`read_only`), so a plugin's operations are tools with no MCP code in the plugin.
Internal operations (run by the app itself) are not offered.
"""

from __future__ import annotations

import json

import mcp_types as types

from ..actions import Operation, Outcome, Registry

SEARCH_TOOL = "search"
SEARCH_KINDS = ("doc", "code", "event")
SEARCH_LIMIT = 10
VALUE_ROWS = 200  # items of a result's value (a listing's rows) given back; the app's resource holds more
TEXT_LIMIT = 50_000  # characters of a result's text, whatever its value


def offered(registry: Registry) -> list[Operation]:
    """The operations outside agents may call: every one but the internal ones, by name."""
    return sorted((op for op in registry.operations.values() if not op.internal), key=lambda op: op.name)


def tool_of(op: Operation) -> types.Tool:
    """The MCP tool of one operation."""
    title = f"{op.plugin.display_name or op.plugin.name}: {op.verb or op.name.rpartition('.')[2]}"
    hints = types.ToolAnnotations(title=title, read_only_hint=op.read_only,
                                  destructive_hint=None if op.read_only else op.destructive,
                                  open_world_hint=False)
    asks = " The user is asked to confirm it first, unless they chose otherwise." if op.destructive else ""
    return types.Tool(name=op.name, title=title, description=f"{op.description}{asks}", input_schema=op.schema(),
                      annotations=hints)


def search_tool() -> types.Tool:
    schema = {"type": "object", "additionalProperties": False, "required": ["query"],
              "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 500},
                             "kinds": {"type": "array", "items": {"enum": list(SEARCH_KINDS)},
                                       "description": "what to search (default: all)"},
                             "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT}}}
    return types.Tool(name=SEARCH_TOOL, title="Search Theseus's knowledge", input_schema=schema,
                      description="Search Theseus's docs, its own source code and the action log; returns excerpts "
                                  "cited as path:line (or event #N).",
                      annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False))


def tools(registry: Registry) -> list[types.Tool]:
    return [*(tool_of(op) for op in offered(registry)), search_tool()]


def failure(text: str, **structured) -> types.CallToolResult:
    """A tool error the agent can read and correct; nothing was changed."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True,
                                structured_content={"status": "error", "message": text, **structured})


def plain(value):
    """A value as JSON data (dates and the like as text)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def given_back(outcome: Outcome) -> dict:
    """One outcome as the agent gets it: a long list value (a listing) is cut to VALUE_ROWS, and says so."""
    value, more = outcome.value, None
    if isinstance(value, list) and len(value) > VALUE_ROWS:
        value, more = value[:VALUE_ROWS], f"the first {VALUE_ROWS} of {len(value):,}; theseus://apps/" \
                                         f"{outcome.operation.partition('.')[0]} holds up to 1,000"
    return {"operation": outcome.operation, "message": outcome.message, "event_id": outcome.event_id,
            "value": plain(value)} | ({"more": more} if more else {})


def done(outcomes: list[Outcome]) -> types.CallToolResult:
    """What ran: each operation's message (and value, e.g. a listing's rows) and its event in the action log."""
    results = [given_back(outcome) for outcome in outcomes]
    lines = [f"{r['message'].rstrip('.')}. (event #{r['event_id']})"
             + ("" if r["value"] is None else "\n" + json.dumps(r["value"], ensure_ascii=False))
             + (f"\n({r['more']})" if "more" in r else "") for r in results]
    text = "\n".join(lines)
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT] + "\n… (cut: the structured result has all of it)"
    return types.CallToolResult(content=[types.TextContent(text=text)],
                                structured_content={"status": "done", "results": results})


def search_args(args: dict) -> tuple[str, tuple[str, ...], int]:
    """(query, kinds, limit) from a `search` call; ValueError says what is wrong."""
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("search needs a 'query' (text)")
    kinds = args.get("kinds") or SEARCH_KINDS
    if not isinstance(kinds, list | tuple) or any(kind not in SEARCH_KINDS for kind in kinds):
        raise ValueError(f"'kinds' is a list of {', '.join(SEARCH_KINDS)}")
    limit = args.get("limit", 5)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEARCH_LIMIT:
        raise ValueError(f"'limit' is a whole number from 1 to {SEARCH_LIMIT}")
    unknown = sorted(set(args) - {"query", "kinds", "limit"})
    if unknown:
        raise ValueError(f"search: unknown argument {unknown[0]!r} (expected query, kinds, limit)")
    return query.strip()[:500], tuple(kinds), limit


def found(results) -> types.CallToolResult:
    """Search hits as cited excerpts."""
    hits = [{"cite": hit.cite, "kind": hit.kind, "title": hit.title, "text": hit.text} for hit in results.hits]
    text = "\n\n".join(f"[{hit['cite']}] {hit['title']}\n{hit['text']}" for hit in hits) or "Nothing found."
    notes = "".join(f"\n({note})" for note in results.notes)
    return types.CallToolResult(content=[types.TextContent(text=text + notes)],
                                structured_content={"status": "done", "hits": hits, "notes": results.notes})
