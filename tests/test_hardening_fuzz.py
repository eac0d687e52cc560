"""Fuzzing with hypothesis: every POST route (operations found in the registry, the rest in the app's
routes), the GET routes that take parameters, and every chat WebSocket message type.

Nothing may answer 5xx or show a traceback, and after every example the database invariants in
tests/hardening.py hold. New operations and routes are covered without touching this file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.conftest import Socket
from tests.hardening import check_invariants, state_of
from theseus.actions import Operation
from theseus.chat import approval
from theseus.logs import setup_logging
from theseus.security import MCP_PATH, mcp_token
from tests.waits import wait_until

pytestmark = pytest.mark.timeout(300)
# The database grows from example to example, so a failure cannot be replayed: report it as found.
FUZZ = settings(max_examples=20, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
ODD = st.sampled_from(["", " ", "0", "-1", "1.5", "1e3", "0x1f", "٣", "²", "１", "٣٤", "9" * 25, "9" * 5000,
                       str(2**63), str(2**64), str(-2**63 - 1), "true", "null", "[]", "{}",
                       "1 OR 1=1", "1; DROP TABLE tasks", "../../etc/passwd", "%00", "\x00", "<b>x</b>",
                       "step_01", "step_99", "finalized", "__proto__"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=6)


@dataclass(frozen=True)
class Target:
    """One route to fuzz: method, path template, and the operation behind it (if any)."""

    method: str
    path: str
    op: Operation | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def targets(app, runtime) -> list[Target]:
    """Every POST route, and every GET route with a path parameter or a known query, found generically (not /mcp:
    a protocol endpoint, fuzzed with protocol messages below)."""
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or route.path == MCP_PATH:
            continue
        methods = set(route.methods or ())
        op = runtime.registry.operations.get(route.name) if route.path.startswith("/ops/") else None
        if "POST" in methods:
            found.append(Target("POST", route.path, op))
        elif "GET" in methods and ("{" in route.path or route.path.endswith("/more")
                                   or route.path in ("/search", "/chat/list", "/source", "/chip/context")) \
                and not route.path.startswith(("/vendor", "/static")):
            found.append(Target("GET", route.path))
    return found


def known(runtime) -> dict[str, list]:
    """Values that exist right now, so fuzzing reaches past 'not found'."""
    db = runtime.db
    return {"ids": [r["id"] for r in db.query("SELECT id FROM tasks UNION SELECT id FROM profiles "
                                              "UNION SELECT id FROM conversations")],
            "events": [r["id"] for r in db.query("SELECT id FROM events ORDER BY id DESC LIMIT 5")],
            "keys": [r["key"] for r in db.query("SELECT key FROM pipelines ORDER BY rowid DESC LIMIT 5")],
            "tokens": list(runtime.chat.agent.proposals),
            "apps": list(runtime.plugins),
            "paths": ["src/theseus/docs/crash-course.md"]}


def value_for(data, name: str, kind: str, runtime):
    """A value for a parameter: often a real one, often nonsense."""
    values = known(runtime)
    real = {"key": values["keys"], "token": values["tokens"], "name": values["apps"], "event_id": values["events"],
            "step": ["step_01", "step_02", "step_03"], "step_id": ["step_01", "step_02"], "run": values["keys"],
            "app": values["apps"], "path": values["paths"]}.get(name, values["ids"])
    existing = st.integers(0, 1000).map(lambda i: real[i % len(real)] if real else 1)  # same shape every time
    ints = st.integers(-3, 40) | st.integers() | st.integers(2**62, 2**70) | st.integers(max_value=-2**62) | existing
    choices = {"int": ints.map(str) | ODD | TEXT,
               "str": TEXT | ODD | existing.map(str) | st.text(min_size=490, max_size=11_000),
               "bool": st.sampled_from(["1", "0", "true", "off", "yes", "maybe", ""]) | TEXT,
               "int_list": st.lists(ints.map(str) | ODD, max_size=5)}
    return data.draw(choices[kind], label=name)


def request_for(data, target: Target, runtime) -> dict:
    """The request (path, body, headers) for one example."""
    path = target.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1:end]
        value = value_for(data, name, "int" if name.endswith("_id") else "str", runtime) or "x"
        path = path[:start] + quote(str(value), safe="") + path[end + 1:]
    params = {p.name: p.kind for p in target.op.params} if target.op else \
        {"id": "int", "name": "str", "value": "str", "q": "str", "priority": "int", "line": "int", "end": "int",
         "path": "str", "app": "str", "run": "str", "message": "str"}
    args = {name: value_for(data, name, kind, runtime) for name, kind in params.items() if data.draw(st.booleans())}
    if data.draw(st.booleans(), label="extra field"):
        args[data.draw(TEXT, label="extra name") or "extra"] = data.draw(TEXT)
    headers = {"HX-Request": "true"} if data.draw(st.booleans(), label="htmx") else {}
    prompt = data.draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=120))
    headers["HX-Prompt"] = prompt.encode()  # as a browser sends it: UTF-8 bytes
    if target.method == "GET":
        return {"url": path, "params": {k: v for k, v in args.items() if isinstance(v, str)}, "headers": headers}
    if data.draw(st.booleans(), label="json"):
        body = data.draw(st.just(args) | st.dictionaries(st.sampled_from(list(params) or ["x"]), JSON) | JSON)
        return {"url": path, "content": json.dumps(body), "headers": {**headers, "content-type": "application/json"}}
    return {"url": path, "data": args, "headers": headers}


def assert_answered_cleanly(response, label: str):
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text and 'File "' not in response.text, label
    if response.status_code >= 400 and response.request.headers.get("hx-request"):
        assert 'id="toast"' in response.text, f"{label}: an error without a message"


@pytest.fixture(autouse=True)
def server_log(config):
    setup_logging(config.log_path, console=False)


@pytest.fixture
def indexed_doc(runtime):
    """src/theseus/docs/crash-course.md listed in the knowledge index, so the source viewer opens it."""
    root = str(Path(__file__).resolve().parents[1])
    runtime.db.conn.execute("INSERT INTO knowledge_files (path, root, kind, hash, mtime, size, chunks, indexed) "
                            "VALUES ('src/theseus/docs/crash-course.md', ?, 'doc', '', 0, 0, 0, '')", (root,))


@pytest.fixture
def fuzz(app, client, runtime, config, indexed_doc):
    """Send one fuzzed request for a target; check the answer and the invariants."""
    def send(data, target: Target):
        request = request_for(data, target, runtime)
        response = client.request(target.method, **request)
        assert_answered_cleanly(response, f"{target}: {request}")
        check_invariants(runtime.db)
    send.targets = targets(app, runtime)
    return send


def test_every_route_answers_fuzzed_input_without_a_server_error(fuzz, runtime, config):
    assert {"/ops/tasks.insert", "/chat/new", "/apps/{name}"} <= {t.path for t in fuzz.targets}
    for target in fuzz.targets:  # one hypothesis run per route, on one growing database
        @FUZZ
        @given(data=st.data())
        def example(data):
            fuzz(data, target)
        example()
    wait_for_quiet(runtime)
    assert "unhandled error" not in config.log_path.read_text()
    check_invariants(runtime.db)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_random_sequences_of_requests_keep_the_invariants(fuzz, data):
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        fuzz(data, data.draw(st.sampled_from(fuzz.targets), label="route"))


def wait_for_quiet(runtime, timeout: float = 30):
    """Until no chat turn is running (a fuzzed /poke or message may have started one)."""
    wait_until(lambda: not runtime.chat.streaming, "the chat turn to end", timeout)


WS_FRAMES = st.one_of(
    st.fixed_dictionaries({"action": st.sampled_from(["send", "stop"]) | TEXT},
                          optional={"message": JSON | st.sampled_from(["/add fuzz", "/done 1", "/list", "/undo",
                                                                       "/chat hi", "/command", "/help", "/auto",
                                                                       "/", "/nope", "hello"])})
    .map(lambda d: ("text", json.dumps(d))),
    JSON.map(lambda v: ("text", json.dumps(v))),
    TEXT.map(lambda t: ("text", t)),
    st.binary(max_size=40).map(lambda b: ("bytes", b)),
)


@settings(FUZZ, max_examples=50)
@given(frames=st.lists(WS_FRAMES, min_size=1, max_size=6))
def test_every_chat_socket_message_type_is_handled(client, runtime, config, frames):
    tab = Socket(client, config, "fuzz")
    try:
        for kind, frame in frames:
            tab.ws.send_bytes(frame) if kind == "bytes" else tab.ws.send_text(frame)
        tab.send(action="stop")
        wait_for_quiet(runtime)
        tab.send(action="send", message="/list")  # the socket still works
        tab.until(r"Your tasks|There are no tasks")
        wait_for_quiet(runtime)
    finally:
        tab.close()  # one socket per example: the server caps how many are open at once
    check_invariants(runtime.db)
    assert "Traceback" not in config.log_path.read_text()


# ---- every integer a request carries: parsed once, with bounds ----

ODD_NUMBERS = ["²", "٣", "１", "٣٤", "", " ", "-1", "0", "+7", "1.0", "1e3", "0x10", "1_0", "٣\n", str(2**63 - 1),
               str(2**63), str(2**64), str(-2**63 - 1), "9" * 19, "9" * 20, "9" * 5000, "NaN", "1 OR 1=1"]


def number_targets(app, runtime) -> list[tuple[str, str, str]]:
    """(method, URL template with {n} for the number, label) for every integer a route takes: path parts named
    like ids, the query numbers of 'more' pages and the source viewer, and operation arguments, found generically."""
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()) and "POST" not in (route.methods or ()):
            continue
        method = "GET" if "GET" in route.methods else "POST"
        for name in re.findall(r"{(\w+_id)}", route.path):
            path = re.sub(r"{(\w+)}", lambda m: "{n}" if m[1] == name else "1", route.path)
            found.append((method, path, f"{route.path} {name}"))
        if route.path.endswith("/more"):
            found += [(method, route.path + "?priority={n}&id=1", f"{route.path} priority"),
                      (method, route.path + "?priority=1&id={n}", f"{route.path} id")]
    found += [("GET", "/source?path=src/theseus/docs/crash-course.md&line={n}", "/source line"),
              ("GET", "/source?path=src/theseus/docs/crash-course.md&line=1&end={n}", "/source end")]
    for op in runtime.registry.operations.values():
        found += [("POST", f"/ops/{op.name}?{p.name}={{n}}", f"{op.name} {p.name}")
                  for p in op.params if p.kind in ("int", "int_list") and not op.internal]
    return found


def test_every_integer_a_request_carries_is_parsed_with_bounds(app, client, runtime, indexed_doc):
    runtime.registry.execute("tasks.insert", {"name": "keep me"})
    targets = number_targets(app, runtime)
    assert {"/chat/{conversation_id}/export.md conversation_id", "/apps/tasks/{row_id} row_id",
            "/apps/tasks/more priority", "/source line", "tasks.toggle id"} <= {label for *_, label in targets}
    before = state_of(runtime.db)
    for method, template, label in targets:
        for number in ODD_NUMBERS:
            url = template.replace("{n}", quote(number, safe=""))
            if method == "POST":  # an operation's arguments are its form fields
                path, _, field = url.partition("?")
                name, _, value = field.partition("=")
                response = client.post(path or url, data={name: unquote(value)} if name else {},
                                       headers={"HX-Request": "true"})
            else:
                response = client.get(url, headers={"HX-Request": "true"})
            assert_answered_cleanly(response, f"{label} = {number[:30]!r}")
            if number in ("²", "٣", str(2**64), "9" * 5000):
                assert response.status_code in (400, 404), (label, number[:30], response.status_code)
    check_invariants(runtime.db)
    assert runtime.db.query("SELECT name FROM tasks") == [{"name": "keep me"}]
    changed = {t for t, rows in state_of(runtime.db).items() if rows != before[t] and t != "events"}
    assert changed <= {"tasks", "profiles", "store"}  # e.g. toggles and switches with a valid number
    assert "unhandled error" not in (runtime.config.log_path.read_text() if runtime.config.log_path.exists() else "")


@pytest.mark.parametrize("url", [
    "/source?path=src/theseus/docs/crash-course.md&line=%C2%B2",
    "/source?path=src/theseus/docs/crash-course.md&line=1&end=%C2%B2",
    f"/chat/{2**63}/export.md", f"/chat/{2**64}/export.json", f"/apps/tasks/{2**63}", f"/apps/tasks/{2**64}/edit",
    f"/apps/tasks/more?priority={2**63}&id=1", f"/apps/tasks/more?priority=1&id={2**64}"])
def test_the_reported_odd_inputs_are_clear_400s(client, runtime, indexed_doc, url):
    before = state_of(runtime.db)
    response = client.get(url)
    assert response.status_code == 400 and ("must be a whole number" in response.text
                                            or "is out of range" in response.text), response.text[:300]
    assert state_of(runtime.db) == before


# ---- what the fuzzer found, kept as plain examples ----

def test_undoing_the_first_profile_never_leaves_no_profile(client, runtime):
    response = client.post("/ops/history.undo", data={"event_id": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "You can't delete the last profile." in response.text
    check_invariants(runtime.db)


def test_undoing_a_profile_takes_its_tasks_with_it_logged_and_switches_away(runtime):
    run = runtime.registry.execute
    work = run("profiles.insert", {"name": "Work"}).value
    run("profiles.switch", {"id": work["id"]})
    run("tasks.insert", {"name": "work task"})
    added = runtime.db.value("SELECT id FROM events WHERE operation = 'profiles.insert' AND args LIKE '%Work%'")
    outcome = run("history.undo", {"event_id": added})
    assert outcome.signals == ("profile",) and runtime.profile_id == 1
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0
    check_invariants(runtime.db)  # the task's deletion is in the log, not a silent cascade


def test_undoing_a_change_whose_parent_is_gone_is_a_clear_refusal(client, runtime):
    run = runtime.registry.execute
    work = run("profiles.insert", {"name": "Work"}).value
    run("profiles.switch", {"id": work["id"]})
    run("tasks.insert", {"name": "work task"})
    run("tasks.delete", {"id": 1})
    deleted = runtime.db.value("SELECT MAX(id) FROM events")
    run("profiles.switch", {"id": 1})
    run("profiles.delete", {"id": work["id"]})
    response = client.post("/ops/history.undo", data={"event_id": str(deleted)}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "can't be undone" in response.text
    check_invariants(runtime.db)


def test_a_binary_frame_on_the_chat_socket_is_answered_not_fatal(socket):
    tab = socket()
    tab.ws.send_bytes(b"\xff\xfe not text")
    assert "not understood" in tab.until("chat-notice")
    tab.send(action="send", message="/list")
    tab.until("There are no tasks")


MCP_NAMES = st.sampled_from(["tasks.insert", "tasks.delete", "tasks.toggle", "tasks.list", "tasks.sort", "history.undo",
                             "profiles.select", "search", "hello.start"]) | TEXT
MCP_PARAMS = st.fixed_dictionaries({}, optional={
    "name": MCP_NAMES, "arguments": JSON | st.dictionaries(st.sampled_from(["id", "name", "ids", "query", "event_id",
                                                                           "limit", "kinds"]), JSON),
    "uri": st.sampled_from(["theseus://apps/tasks", "theseus://docs/crash-course.md", "theseus://docs/../x"]) | TEXT})
MCP_BODIES = st.fixed_dictionaries({"jsonrpc": st.just("2.0") | TEXT, "id": st.integers() | TEXT,
                                    "method": st.sampled_from(["tools/call", "tools/list", "resources/list",
                                                               "resources/read", "initialize", "server/discover",
                                                               "ping"]) | TEXT,
                                    "params": MCP_PARAMS | JSON}) | JSON


@settings(FUZZ, max_examples=120)
@given(body=MCP_BODIES, version=st.sampled_from(["2025-11-25", "2026-07-28", "2024-11-05", "soon"]))
def test_mcp_answers_fuzzed_protocol_messages_without_a_server_error(client, runtime, config, body, version):
    approval.set_agents_policy(runtime.db, approval.NEVER)  # a destructive call runs at once: no card to wait for
    response = client.post(MCP_PATH, content=json.dumps(body), headers={
        "Authorization": f"Bearer {mcp_token(config.data_dir)}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": version})
    assert response.status_code < 500, f"{body}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text and 'File "' not in response.text
    check_invariants(runtime.db)
