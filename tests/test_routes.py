"""HTTP tests of the shell, the operation routes and bad input, against the real app."""

from __future__ import annotations

import pytest

HX = {"HX-Request": "true"}


def count_tasks(runtime):
    return runtime.db.value("SELECT COUNT(*) FROM tasks")


def test_the_shell_has_nav_main_chat_and_poke(client):
    page = client.get("/")
    assert page.status_code == 200 and page.url.path == "/apps/tasks"
    html = page.text
    for marker in ('id="profile-menu"', 'id="apps-menu"', 'role="search"', 'id="main"', 'id="chat"',
                   "Chip is ready", 'ws-connect="/chat/ws?tab=', "Poke", 'sse-connect="/sync?tab=',
                   'src="/vendor/htmx.min.js"', 'href="/vendor/pico.min.css"'):
        assert marker in html, marker
    assert "unpkg" not in html and "jsdelivr" not in html and "cdn" not in html.lower()


@pytest.mark.parametrize("name", ["htmx.min.js", "sse.js", "ws.js", "pico.min.css", "Sortable.min.js"])
def test_front_end_libraries_are_served_locally(client, name):
    response = client.get(f"/vendor/{name}")
    assert response.status_code == 200 and len(response.content) > 1000


def test_unknown_vendor_file_and_unknown_app_are_clean_404s(client):
    for path in ("/vendor/evil.js", "/vendor/..%2F..%2Fpyproject.toml", "/apps/nope", "/no/such/page"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Traceback" not in response.text and "Not possible" in response.text


def test_an_app_is_logged_as_opened_once_by_the_messages_sent_from_it(client, socket, runtime):
    client.get("/apps/profiles")  # a page view writes nothing
    assert runtime.db.query("SELECT * FROM events WHERE operation = 'app.open'") == []
    tab = socket()
    for _ in range(2):
        tab.send(action="send", message="/help", app="profiles", run="")
        tab.until("Commands that need no model")
    opened = runtime.db.query("SELECT summary FROM events WHERE operation = 'app.open'")
    assert opened == [{"summary": "Opened Profiles"}]
    assert client.get("/").url.path == "/apps/profiles"


def test_an_htmx_request_for_an_app_gets_only_the_main_area(client):
    html = client.get("/apps/tasks", headers=HX).text
    assert 'id="tasks-app"' in html and 'id="chat"' not in html and "<html" not in html


def test_operation_routes_accept_forms_and_answer_with_fragments(client, runtime):
    response = client.post("/ops/tasks.insert", data={"name": "from a form"}, headers=HX)
    assert response.status_code == 200 and 'id="task-1"' in response.text
    response = client.post("/ops/tasks.toggle", data={"id": "1"}, headers=HX)
    assert 'class="item done"' in response.text
    response = client.post("/ops/tasks.update", json={"id": 1, "name": "renamed"})
    assert "renamed" in response.text
    assert runtime.db.query("SELECT name, done FROM tasks") == [{"name": "renamed", "done": 1}]


def test_sort_takes_the_ids_in_their_new_order(client, runtime):
    for name in ("a", "b", "c"):
        client.post("/ops/tasks.insert", data={"name": name})
    client.post("/ops/tasks.sort", data={"ids": ["3", "1", "2"]})
    assert [r["name"] for r in runtime.db.query("SELECT name FROM tasks ORDER BY priority")] == ["c", "a", "b"]


def test_profile_switch_tells_tabs_to_reload_their_main_area(client, runtime):
    client.post("/ops/profiles.insert", data={"name": "Work"})
    response = client.post("/ops/profiles.switch", data={"id": "2"}, headers=HX)
    assert response.headers["HX-Trigger"] == "profile"
    assert 'id="profile-menu"' in response.text and runtime.profile_id == 2
    assert 'id="tasks-list-2"' in client.get("/apps/tasks", headers=HX).text


def test_inline_edit_routes_render_the_form_and_the_item(client):
    client.post("/ops/tasks.insert", data={"name": "edit me"})
    form = client.get("/apps/tasks/1/edit", headers=HX)
    assert form.status_code == 200 and 'value="edit me"' in form.text and 'hx-post="/ops/tasks.update"' in form.text
    assert 'id="task-1"' in client.get("/apps/tasks/1", headers=HX).text
    assert client.get("/apps/tasks/99/edit", headers=HX).status_code == 404


@pytest.mark.parametrize("path, body, status", [
    ("/ops/tasks.insert", {"name": ""}, 400),
    ("/ops/tasks.insert", {"name": "x" * 10_240}, 400),
    ("/ops/tasks.insert", {}, 400),
    ("/ops/tasks.toggle", {"id": "999"}, 404),
    ("/ops/tasks.toggle", {"id": "DROP TABLE tasks"}, 400),
    ("/ops/tasks.delete", {"id": "-1"}, 404),
    ("/ops/tasks.update", {"id": "1", "name": ""}, 400),
    ("/ops/tasks.sort", {"ids": ["1", "1"]}, 400),
    ("/ops/profiles.switch", {"id": "12"}, 404),
    ("/ops/profiles.delete", {"id": "1"}, 400),
])
def test_bad_input_gets_a_clear_message_and_changes_nothing(client, runtime, path, body, status):
    client.post("/ops/tasks.insert", data={"name": "existing"})
    before = runtime.db.query("SELECT * FROM tasks"), runtime.db.query("SELECT * FROM profiles")
    response = client.post(path, data=body, headers=HX)
    assert response.status_code == status
    assert 'id="toast"' in response.text and 'role="alert"' in response.text
    assert "Traceback" not in response.text
    assert (runtime.db.query("SELECT * FROM tasks"), runtime.db.query("SELECT * FROM profiles")) == before


def test_a_task_of_another_profile_cannot_be_touched(client, runtime):
    client.post("/ops/tasks.insert", data={"name": "home only"})
    client.post("/ops/profiles.insert", data={"name": "Work"})
    client.post("/ops/profiles.switch", data={"id": "2"})
    for path in ("/ops/tasks.toggle", "/ops/tasks.delete"):
        assert client.post(path, data={"id": "1"}).status_code == 404
    assert runtime.db.query("SELECT done FROM tasks") == [{"done": 0}]


@pytest.mark.parametrize("body, content_type", [
    (b"{not json", "application/json"),
    (b"--boundary\r\nbroken", "multipart/form-data; boundary=boundary"),
    (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
    (b'["a list"]', "application/json"),
])
def test_malformed_bodies_are_refused_cleanly(client, runtime, body, content_type):
    response = client.post("/ops/tasks.insert", content=body, headers={"content-type": content_type, **HX})
    assert 400 <= response.status_code < 500 and "Traceback" not in response.text
    assert count_tasks(runtime) == 0


def test_user_text_is_escaped_everywhere(client):
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    client.post("/ops/tasks.insert", data={"name": hostile})
    client.post("/ops/profiles.insert", data={"name": hostile})
    for path in ("/apps/tasks", "/apps/profiles"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_finds_apps(client):
    assert "/apps/profiles" in client.get("/search", params={"q": "profile"}).text
    assert "No app matches" in client.get("/search", params={"q": "zzz"}).text
    assert client.get("/search", params={"q": ""}).text == ""


def test_wrong_method_is_a_clean_405(client):
    response = client.get("/ops/tasks.insert")
    assert response.status_code == 405 and "Traceback" not in response.text


def seed_tasks(runtime, count):
    with runtime.db.transaction():
        runtime.db.conn.executemany("INSERT INTO tasks (name, priority, profile_id) VALUES (?, ?, ?)",
                                    [(f"t{i}", i, runtime.profile_id) for i in range(count)])


def test_long_lists_load_page_by_page(client, runtime):
    seed_tasks(runtime, 250)
    first = client.get("/apps/tasks", headers=HX).text
    assert first.count('class="item"') == 100 and 'hx-get="/apps/tasks/more?priority=99&amp;id=100"' in first
    second = client.get("/apps/tasks/more", params={"priority": 99, "id": 100}, headers=HX).text
    assert second.count('class="item"') == 100 and 'id="task-101"' in second and "priority=199" in second
    last = client.get("/apps/tasks/more", params={"priority": 199, "id": 200}, headers=HX).text
    assert last.count('class="item"') == 50 and 'class="more"' not in last


def test_an_insert_is_appended_only_where_the_end_of_the_list_is_loaded(client):
    html = client.post("/ops/tasks.insert", data={"name": "new"}, headers=HX).text
    assert 'hx-swap-oob="beforeend:#tasks-list-1:not(:has(&gt; li.more))"' in html
