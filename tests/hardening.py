"""Shared by the hardening tests: the database invariants every operation must keep, and the XSS corpus."""

from __future__ import annotations

import json

from theseus.db import Database

# Tables whose every row change goes through the registry, so the action log can account for them.
LOGGED_TABLES = ("profiles", "tasks", "pipelines")


def check_invariants(db: Database) -> None:
    """Assert what must hold after any sequence of operations, whatever they were given."""
    assert db.value("PRAGMA quick_check") == "ok"
    assert db.query("PRAGMA foreign_key_check") == []
    assert db.value("SELECT COUNT(*) FROM tasks WHERE profile_id NOT IN (SELECT id FROM profiles)") == 0, \
        "orphan tasks"
    assert db.value("SELECT COUNT(*) FROM profiles") >= 1
    assert db.value("SELECT value FROM store WHERE key = 'profile_id'") is not None
    assert db.value("SELECT COUNT(*) FROM profiles WHERE id = (SELECT value FROM store WHERE key = 'profile_id')") \
        == 1, "the current profile does not exist"
    for table, column in (("events", "args"), ("events", "changes"), ("store", "value"), ("pipelines", "data"),
                          ("messages", "sources")):
        if column in columns(db, table):
            assert db.value(f"SELECT COUNT(*) FROM {table} WHERE NOT json_valid({column})") == 0, \
                f"invalid JSON in {table}.{column}"
    assert db.value("SELECT COUNT(*) FROM messages WHERE conversation_id NOT IN (SELECT id FROM conversations)") == 0
    check_events_match_rows(db)


def state_of(db: Database) -> dict:
    """Every row of the tables a request could change (and the store), to compare before and after."""
    return {table: db.query(f"SELECT * FROM {table} ORDER BY rowid") for table in
            ("store", "profiles", "tasks", "pipelines", "events", "conversations", "messages")}


def columns(db: Database, table: str) -> set[str]:
    return {row["name"] for row in db.query(f"PRAGMA table_info({table})")}


def check_events_match_rows(db: Database) -> None:
    """Replaying the action log's snapshots gives exactly the rows in the logged tables."""
    last: dict[tuple[str, int], dict | None] = {}
    for event in db.query("SELECT id, changes FROM events ORDER BY id"):
        for change in json.loads(event["changes"]):
            if change["table"] in LOGGED_TABLES:
                row = change["after"] or change["before"]
                last[(change["table"], row["id"])] = change["after"]
    for table in LOGGED_TABLES:
        rows = {row["id"]: row for row in db.query(f"SELECT * FROM {table}")}
        logged = {row_id: after for (name, row_id), after in last.items() if name == table and after is not None}
        assert rows == logged, f"{table}: the rows and the action log disagree"


# ---- cross-site scripting ----

# Each payload is formatted with a marker `m` (e.g. "x07"); running any of them calls
# window.__trap(m) (or opens a dialog), and the marker must stay visible as text.
XSS_PAYLOADS = [
    "<script>__trap('{m}')</script>",
    "<SCRIPT SRC=data:text/javascript,__trap('{m}')></SCRIPT>{m}",
    "<img src=x onerror=\"__trap('{m}')\">",
    "<img src=x onerror=__trap('{m}')//",
    "<svg onload=__trap('{m}')>",
    "<svg><script>__trap('{m}')</script></svg>",
    "<svg><a xlink:href=\"javascript:__trap('{m}')\"><text x=0 y=20>{m}</text></a></svg>",
    "<iframe src=\"javascript:parent.__trap('{m}')\"></iframe>{m}",
    "<iframe srcdoc=\"<script>parent.__trap('{m}')</script>\"></iframe>{m}",
    "<body onload=__trap('{m}')>",
    "<details open ontoggle=__trap('{m}')>{m}</details>",
    "<input autofocus onfocus=__trap('{m}')>",
    "<video><source onerror=\"__trap('{m}')\"></video>{m}",
    "<marquee onstart=__trap('{m}')>{m}</marquee>",
    "<a href=\"javascript:__trap('{m}')\">{m}</a>",
    "[{m}](javascript:__trap('{m}'))",
    "[{m}](JaVaScRiPt:__trap('{m}'))",
    "[{m}](data:text/html;base64,PHNjcmlwdD5wYXJlbnQuX190cmFwKCd4Jyk8L3NjcmlwdD4=)",
    "[{m}](vbscript:msgbox('{m}'))",
    "![{m}](javascript:__trap('{m}'))",
    "<a href=\"jav&#x09;ascript:__trap('{m}')\">{m}</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;__trap('{m}')\">{m}</a>",
    "&lt;script&gt;__trap('{m}')&lt;/script&gt;",
    "<object data=\"data:text/html,<script>parent.__trap('{m}')</script>\"></object>{m}",
    "<embed src=\"javascript:__trap('{m}')\">{m}",
    "<style>@import 'javascript:__trap(1)';</style>{m}",
    "<div style=\"background:url(javascript:__trap('{m}'))\">{m}</div>",
    "<math><mtext><table><mglyph><style><img src=x onerror=__trap('{m}')></style></mglyph></table></mtext></math>",
    "<noscript><p title=\"</noscript><img src=x onerror=__trap('{m}')>\"></noscript>",
    "\"><script>__trap('{m}')</script>",
    "'><img src=x onerror=__trap('{m}')>",
    "</textarea><script>__trap('{m}')</script>",
    "</title><script>__trap('{m}')</script>",
    "```\n</code></pre><script>__trap('{m}')</script>\n```",
    "`<img src=x onerror=__trap('{m}')>`",
    "[{m}]: javascript:__trap('{m}')\n\n[{m}]",
    "<div hx-get=\"/ops/tasks.delete\" hx-trigger=\"load\" hx-vals='{{\"id\": 1}}'>{m}</div>",
    "<div hx-on:htmx:load=\"__trap('{m}')\">{m}</div>",
    "<div data-hx-on-click=\"__trap('{m}')\" _=\"on load call __trap('{m}')\">{m}</div>",
    "{{{{constructor.constructor('__trap(\"{m}\")')()}}}} {m}",
    "\u202e<img src=x onerror=__trap('{m}')>\u202c {m}",
    "java\u200bscript:__trap('{m}') {m}",
    "\uff1cscript\uff1e__trap('{m}')\uff1c/script\uff1e",
    "<scr<script>ipt>__trap('{m}')</scr</script>ipt>",
    "<<img src=x onerror=__trap('{m}')>>",
    "<img src=\"x\" onerror=\"&#95;&#95;trap('{m}')\">",
]


def xss_payloads() -> list[tuple[str, str]]:
    """(marker, payload) pairs."""
    return [(f"x{i:02d}", p.format(m=f"x{i:02d}")) for i, p in enumerate(XSS_PAYLOADS)]


# Installed in every page before any of its scripts: any executed payload leaves a trace here.
XSS_TRAP = """
window.__xss = [];
window.__trap = function (marker) { window.__xss.push(String(marker)); };
"""
