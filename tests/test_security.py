"""The security floor: Host and Origin checks against DNS rebinding and cross-site requests."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from theseus.security import allowed_hosts

HX = {"HX-Request": "true"}


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "127.0.0.1:1", "", "localhost:80"])
def test_a_foreign_host_is_refused(client, host):
    response = client.get("/apps/tasks", headers={"host": host})
    assert response.status_code == 403


def test_localhost_names_for_the_bound_port_are_accepted(client, config):
    for host in (f"127.0.0.1:{config.port}", f"localhost:{config.port}", f"LOCALHOST:{config.port}"):
        assert client.get("/apps/tasks", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_a_foreign_origin_cannot_change_anything(client, runtime, method):
    response = client.request(method, "/ops/tasks.insert", data={"name": "csrf"},
                              headers={"origin": "http://evil.example"})
    assert response.status_code == 403
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0


def test_a_cross_site_form_post_without_origin_is_refused(client, runtime):
    response = client.post("/ops/tasks.insert", data={"name": "csrf"}, headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403 and runtime.db.value("SELECT COUNT(*) FROM tasks") == 0


def test_same_origin_writes_work(client, config, runtime):
    response = client.post("/ops/tasks.insert", data={"name": "mine"},
                           headers={"origin": config.origin, "sec-fetch-site": "same-origin", **HX})
    assert response.status_code == 200 and runtime.db.value("SELECT COUNT(*) FROM tasks") == 1


def test_a_foreign_origin_may_still_read_nothing_changes(client):
    assert client.get("/apps/tasks", headers={"origin": "http://evil.example"}).status_code == 200


@pytest.fixture
def ws_app(app):
    async def echo(websocket):
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()
    app.router.add_websocket_route("/ws-probe", echo)
    return app


def test_websocket_handshakes_from_a_foreign_origin_are_refused(ws_app, client, config):
    host = {"host": f"127.0.0.1:{config.port}"}  # the test client's websockets default to "testserver"
    with client.websocket_connect("/ws-probe", headers={**host, "origin": config.origin}) as ws:
        assert ws.receive_text() == "hello"
    for headers in ({**host, "origin": "http://evil.example"}, {"host": "evil.example"}):
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws-probe", headers=headers) as ws:
                ws.receive_text()
        assert closed.value.code == 1008


def test_allowed_hosts():
    loopback = {"127.0.0.1:5001", "localhost:5001", "[::1]:5001"}
    assert allowed_hosts("127.0.0.1", 5001) == loopback
    assert allowed_hosts("0.0.0.0", 5001) >= loopback  # a fixed set, never "any" (see test_hardening_bind.py)
    assert allowed_hosts("myhost.lan", 8000) == {"myhost.lan:8000", "127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert allowed_hosts("::1", 80, ("fe80::1", "Proxy.example:8443")) == {
        "127.0.0.1:80", "localhost:80", "[::1]:80", "127.0.0.1", "localhost", "[::1]", "[fe80::1]:80", "[fe80::1]",
        "proxy.example:8443"}
