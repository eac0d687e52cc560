"""Cross-site requests and DNS rebinding, across every route, and from a real second origin in Chromium.

tests/test_security.py has the basic Host and Origin checks; these cover every route the app has
(found generically), every way a foreign origin can be spelled, and what a hostile page can
really make a browser do: post a form, fetch, open the chat socket, frame the app, embed an image.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from tests.conftest import free_port
from tests.hardening import state_of
from tests.waits import wait_until
from theseus.ui import app_url

WRITES = ("POST", "PUT", "DELETE", "PATCH")
COUNTED = ("tasks", "profiles", "events", "conversations", "messages", "store")


def concrete(path: str) -> str:
    """A route path with its parameters filled in."""
    for name, value in (("{name}", "tasks"), ("{row_id}", "1"), ("{conversation_id}", "1"), ("{token}", "abc"),
                        ("{event_id}", "1")):
        path = path.replace(name, value)
    return path.split("{")[0] + ("x" if "{" in path else "")


def write_routes(app) -> list[str]:
    return sorted({concrete(r.path) for r in app.routes
                   if isinstance(r, Route) and set(r.methods or ()) & set(WRITES)})


def all_paths(app) -> list[str]:
    return sorted({concrete(r.path) for r in app.routes if not isinstance(r, (Mount, WebSocketRoute))}
                  | {"/static/theseus.js", "/vendor/htmx.min.js", "/log", "/sync?tab=t"})


def counts(db) -> dict:
    return {table: db.value(f"SELECT COUNT(*) FROM {table}") for table in COUNTED} | {
        "last_app": db.value("SELECT value FROM store WHERE key = 'last_app'")}


def foreign_origins(config) -> list[str]:
    port = config.port
    return ["http://evil.example", "null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}",
            f"http://127.0.0.1:{port}.evil.example", f"http://localhost:{port}@evil.example",
            f"http://evil.example/http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", "http://127.0.0.1"]


def test_every_write_route_refuses_every_foreign_origin(app, client, runtime, config):
    runtime.registry.execute("tasks.insert", {"name": "keep me"})
    before = counts(runtime.db)
    routes = write_routes(app)
    assert "/ops/tasks.delete" in routes and "/chat/new" in routes and "/poke" in routes  # found generically
    for path in routes:
        for origin in foreign_origins(config):
            for method in WRITES:
                response = client.request(method, path, data={"id": "1", "name": "x"}, headers={"origin": origin})
                assert response.status_code == 403, (method, path, origin)
                assert "Traceback" not in response.text
        response = client.post(path, data={"id": "1"}, headers={"sec-fetch-site": "cross-site"})
        assert response.status_code == 403, path
    assert counts(runtime.db) == before


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "localhost.evil.example:{port}", "127.0.0.2:{port}", "[::2]:{port}",
                                  "127.0.0.1:{port}@evil.example", "127.0.0.1:{port} evil"])
def test_every_route_refuses_a_rebinding_host(app, client, config, host):
    host = host.format(port=config.port)
    for path in all_paths(app):
        for method in ("GET", "POST"):
            response = client.request(method, path, headers={"host": host})
            assert response.status_code == 403, (method, path)
            assert "theseus" not in response.text.lower() or "Forbidden" in response.text  # nothing leaks


def test_same_origin_reads_and_writes_are_unaffected(client, runtime, config):
    same = {"origin": config.origin, "sec-fetch-site": "same-origin", "HX-Request": "true"}
    assert client.post("/ops/tasks.insert", data={"name": "mine"}, headers=same).status_code == 200
    assert client.post("/ops/tasks.toggle", data={"id": "1"}, headers=same).status_code == 200
    assert client.get("/log").status_code == 200 and client.get("/apps/history").status_code == 200
    for origin in (f"http://localhost:{config.port}", f"http://LOCALHOST:{config.port}"):  # our own aliases
        assert client.post("/ops/tasks.toggle", data={"id": "1"},
                           headers={"origin": origin, "host": f"localhost:{config.port}"}).status_code == 200
    assert runtime.db.value("SELECT done FROM tasks") == 1  # toggled three times


def test_the_chat_socket_refuses_foreign_handshakes(client, config, runtime):
    own = {"host": f"127.0.0.1:{config.port}"}
    for headers in [{**own, "origin": origin} for origin in foreign_origins(config)] + [
            {"host": "evil.example", "origin": config.origin}, {"host": f"evil.example:{config.port}"}]:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/chat/ws?tab=evil", headers=headers) as ws:
                ws.send_text('{"action": "send", "message": "/add from afar"}')
                ws.receive_text()
        assert closed.value.code == 1008, headers
    assert runtime.db.value("SELECT COUNT(*) FROM messages") == 0
    with client.websocket_connect("/chat/ws?tab=mine", headers={**own, "origin": config.origin}) as ws:
        ws.send_text('{"action": "send", "message": "/add from here"}')
        while "Added task" not in ws.receive_text():
            pass
    assert runtime.db.value("SELECT name FROM tasks") == "from here"


def test_live_sync_is_for_our_own_pages_only(client, config, runtime):
    """Another site cannot hold live-sync streams open: they are capped, and it would use up the user's."""
    own = {"host": f"127.0.0.1:{config.port}"}
    refused = [{**own, "origin": origin} for origin in foreign_origins(config)] + [
        {**own, "sec-fetch-site": "cross-site"}, {"host": f"evil.example:{config.port}", "origin": config.origin}]
    for headers in refused:
        response = client.get("/sync?tab=evil", headers=headers)
        assert response.status_code == 403, headers
    assert runtime.broadcaster.count == 0


def test_a_cross_site_subresource_get_changes_nothing(client, runtime):
    runtime.chat.conversations.current()  # the first page view creates the first, empty conversation
    before = counts(runtime.db)
    for site, dest in (("cross-site", "image"), ("same-site", "image"), ("same-site", "iframe"),
                       ("cross-site", "document")):  # on localhost, another port is the same site
        response = client.get("/apps/history", headers={"sec-fetch-site": site, "sec-fetch-dest": dest})
        assert response.status_code == 200
    assert counts(runtime.db) == before  # not even "opened Activity" in Chip's context


GET_HEADERS = [{"sec-fetch-site": "cross-site", "sec-fetch-dest": "image"},
               {"sec-fetch-site": "cross-site", "sec-fetch-dest": "document"},
               {"sec-fetch-site": "same-origin", "sec-fetch-dest": "document"}, {},  # the user's own page views
               {"HX-Request": "true"}]


def get_urls(app, runtime, key: str) -> list[str]:
    """A URL for every GET route (the live-sync stream aside), its parameters filled with real values."""
    urls = []
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()) or route.path == "/sync":
            continue
        path = (route.path.replace("{row_id}", "1").replace("{conversation_id}", "1").replace("{key}", key)
                .replace("{step_id}", "step_01").replace("{name}", "tasks"))
        urls.append(path)
        if route.path == "/apps/{name}":  # every app's page, and a run's page with its key in the address
            urls += [app_url(name) for name in runtime.plugins] + [f"/apps/hello?run={key}", "/"]
    return urls + ["/apps/tasks/more?priority=0&id=1", "/search?q=tasks", "/chat/list?q=a",
                   f"/chip/context?app=hello&run={key}&message=fill+in+Ada",
                   "/source?path=src/theseus/docs/crash-course.md"]


def test_no_get_changes_anything_whoever_causes_it(app, client, runtime):
    runtime.registry.execute("tasks.insert", {"name": "keep me"})
    key = runtime.registry.execute("hello.start").value["key"]
    before = state_of(runtime.db)
    urls = get_urls(app, runtime, key)
    assert {"/apps/hello", f"/apps/hello?run={key}", f"/apps/hello/runs/{key}/steps/step_01"} <= set(urls)
    for url in urls:
        for headers in GET_HEADERS:
            response = client.get(url, headers=headers, follow_redirects=False)
            assert response.status_code < 500, (url, headers)
            assert state_of(runtime.db) == before, (url, headers)  # not the store, not "opened", not a run


def test_a_cross_site_get_of_a_run_does_not_steer_chip(client, socket, runtime, backend):
    mine = runtime.registry.execute("hello.start").value["key"]
    other = runtime.registry.execute("hello.start").value["key"]
    store = runtime.db.query("SELECT * FROM store ORDER BY key")
    client.get(f"/apps/hello?run={other}", headers={"sec-fetch-site": "cross-site", "sec-fetch-dest": "image"})
    assert runtime.db.query("SELECT * FROM store ORDER BY key") == store
    backend.commands = [{"command": "fill", "value": "Ada"}]
    socket().send(action="send", message="fill in Ada", app="hello", run=mine)  # from the user's own tab
    wait_until(lambda: runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (mine,)) != "{}", "the fill")
    assert runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (other,)) == "{}"


def test_pages_cannot_be_framed(client):
    headers = client.get("/apps/tasks").headers
    assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in headers["content-security-policy"]


# ---- a real second origin in Chromium ----

HOSTILE_PAGES = {
    "/form": """<form method="post" action="{app}/ops/tasks.insert"><input name="name" value="csrf form"></form>
                <script>document.forms[0].submit()</script>""",
    "/fetch": """<script>
        Promise.allSettled([
          fetch("{app}/ops/tasks.insert", {{method: "POST", mode: "no-cors",
                body: new URLSearchParams({{name: "csrf fetch"}})}}),
          fetch("{app}/ops/tasks.insert", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                body: JSON.stringify({{name: "csrf json"}})}}),
          fetch("{app}/chat/new", {{method: "POST", mode: "no-cors"}}),
          fetch("{app}/log").then(r => r.text()).then(t => {{ window.leaked = t; }}),
        ]).then(() => {{ document.title = "done"; }});
        </script>""",
    "/ws": """<script>
        var ws = new WebSocket("ws://127.0.0.1:{port}/chat/ws?tab=evil");
        ws.onopen = function () {{ ws.send(JSON.stringify({{action: "send", message: "/add csrf socket"}})); }};
        ws.onclose = function (e) {{ document.title = "closed " + e.code; }};
        </script>""",
    "/frame": """<iframe id="app" src="{app}/apps/tasks" width="800" height="600"></iframe>""",
    "/img": """<img src="{app}/apps/history" onerror="document.title = 'loaded'" onload="document.title = 'loaded'">""",
}


@pytest.fixture
def hostile_site(live_server):
    """Another origin (another port) serving pages that attack the app."""
    port = free_port()
    pages = {path: html.format(app=live_server.url, port=live_server.config.port)
             for path, html in HOSTILE_PAGES.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<!doctype html><title>evil</title>{pages.get(self.path, '')}".encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_a_hostile_page_in_chromium_gets_403_and_changes_nothing(hostile_site, context, live_server):
    db = live_server.runtime.db
    live_server.execute("tasks.insert", {"name": "keep me"}, actor="user")
    live_server.runtime.chat.conversations.current()
    before = counts(db)
    page = context.new_page()
    page.goto(f"{hostile_site}/form")  # the form posts itself; the browser lands on our answer
    expect(page.locator("body")).to_contain_text("Forbidden: foreign Origin")
    page.goto(f"{hostile_site}/fetch")
    expect(page).to_have_title("done")
    assert page.evaluate("window.leaked") is None  # the log cannot be read cross-origin
    page.goto(f"{hostile_site}/ws")
    expect(page).to_have_title("closed 1006")
    page.goto(f"{hostile_site}/img")
    expect(page).to_have_title("loaded")
    page.goto(f"{hostile_site}/frame")
    frame = page.frame_locator("#app")
    expect(frame.locator("body")).to_be_attached()
    assert page.frames[1].url.startswith("chrome-error://")  # the browser refused to show the app in a frame
    assert counts(db) == before
    log = live_server.config.log_path.read_text()
    assert log.count("403 POST /ops/tasks.insert") >= 3 and "403 WS /chat/ws" in log

    own = context.new_page()  # the app itself is unaffected
    own.goto(live_server.url + "/apps/tasks")
    own.fill("#tasks-add input[name=name]", "from the app itself")
    own.click("#tasks-add button")
    expect(own.locator("#main li.item", has_text="from the app itself")).to_be_visible()
