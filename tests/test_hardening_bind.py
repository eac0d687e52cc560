"""Bound beyond loopback (`theseus serve --host 0.0.0.0`): the same fixed Host and Origin sets as on loopback,
and a secret token for every request, set as a cookie once from the link `theseus serve` prints.

tests/test_hardening_origin.py covers the loopback bind; here the wildcard bind must refuse all it refuses.
"""

from __future__ import annotations

import os
import re
import subprocess

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import free_port
from tests.test_cli import THESEUS
from tests.test_hardening_origin import counts
from theseus.config import Config
from theseus.security import Access, allowed_hosts

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", host="0.0.0.0", port=free_port(), allowed_hosts=("theseus.lan",))


@pytest.fixture
def client(app, config) -> TestClient:
    """A client on a loopback name (0.0.0.0 is an address to bind, not a Host to name)."""
    with TestClient(app, base_url=f"http://127.0.0.1:{config.port}", raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def token(app) -> str:
    return app.state.access.token


def own(config, token: str | None = None, host: str = "127.0.0.1") -> dict:
    """Headers of a request from the app's own page (with the token as a Bearer header, when given)."""
    headers = {"host": f"{host}:{config.port}", "origin": f"http://{host}:{config.port}"}
    return headers | ({"authorization": f"Bearer {token}"} if token else {})


def test_a_wildcard_bind_answers_to_a_fixed_set_of_hosts():
    hosts = allowed_hosts("0.0.0.0", 5001, ("theseus.lan", "proxy.example:8443"))
    assert {"127.0.0.1:5001", "localhost:5001", "[::1]:5001", "theseus.lan:5001", "proxy.example:8443"} <= hosts
    assert all(re.fullmatch(r"\S+:\d+", host) for host in hosts) and "evil.example:5001" not in hosts
    assert Access.of(Config(port=5001)).token is None  # loopback: no token, as before
    assert len(Access.of(Config(host="0.0.0.0", port=5001)).token) >= 40


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1.nip.io:{port}", "theseus.lan:1"])
def test_a_foreign_host_is_refused_even_with_the_token(client, runtime, config, token, host):
    host = host.format(port=config.port)
    response = client.get("/log", headers={"host": host, "authorization": f"Bearer {token}"})
    assert response.status_code == 403 and "unexpected Host" in response.text
    origin = f"http://{host}"  # the origin that matches the forged host: once accepted, because built from it
    response = client.post("/ops/tasks.insert", data={"name": "rebound"},
                           headers={"host": host, "origin": origin, "authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert client.get("/sync?tab=t", headers={"host": host, "authorization": f"Bearer {token}"}).status_code == 403
    assert runtime.db.value("SELECT COUNT(*) FROM tasks") == 0


def test_origins_come_from_the_fixed_set_not_from_the_request(client, runtime, config, token):
    for origin in ("http://evil.example", f"http://evil.example:{config.port}", "null"):
        response = client.post("/ops/tasks.insert", data={"name": "csrf"}, headers={**own(config, token),
                                                                                  "origin": origin})
        assert response.status_code == 403 and "foreign Origin" in response.text
    assert client.post("/ops/tasks.insert", data={"name": "mine"}, headers=own(config, token)).status_code == 200
    assert client.post("/ops/tasks.insert", data={"name": "via the listed name"},
                       headers=own(config, token, host="theseus.lan")).status_code == 200  # THESEUS_ALLOWED_HOSTS
    assert [r["name"] for r in runtime.db.query("SELECT name FROM tasks ORDER BY id")] == \
        ["mine", "via the listed name"]


def test_sockets_refuse_a_foreign_host_or_a_missing_token(client, runtime, config, token):
    runtime.chat.conversations.current()
    before = counts(runtime.db)
    foreign = {"host": f"evil.example:{config.port}", "origin": f"http://evil.example:{config.port}"}
    for url, headers in [(f"/chat/ws?tab=evil&token={token}", foreign),  # the token does not make a host ours
                         ("/chat/ws?tab=evil", own(config)),  # our host and origin, but no token
                         ("/chat/ws?tab=evil&token=guess", own(config))]:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect(url, headers=headers) as ws:
                ws.send_text('{"action": "send", "message": "/add from afar"}')
                ws.receive_text()
        assert closed.value.code == 1008, url
    for headers in (foreign | {"authorization": f"Bearer {token}"}, own(config)):
        assert client.get("/sync?tab=evil", headers=headers).status_code == 403
    assert counts(runtime.db) == before


@pytest.mark.parametrize("path", ["/", "/apps/tasks", "/log", "/health", "/static/theseus.js", "/sync?tab=t",
                                  "/chat/1/export.json"])
def test_without_the_token_every_request_is_refused(client, config, path):
    for extra in ({}, {"authorization": "Bearer wrong"}, {"cookie": f"theseus-token-{config.port}=wrong"}):
        response = client.get(path, headers={"host": f"127.0.0.1:{config.port}", **extra})
        assert response.status_code == 403, (path, extra)
        assert "needs its access token" in response.text and "Traceback" not in response.text
    assert client.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403


def test_without_the_token_nothing_is_written(client, runtime, config):
    before = counts(runtime.db)
    for headers in (own(config), own(config) | {"authorization": "Bearer wrong"}):
        assert client.post("/ops/tasks.insert", data={"name": "no token"}, headers=headers).status_code == 403
    assert client.post("/ops/tasks.insert?token=wrong", data={"name": "no token"}).status_code == 403
    assert counts(runtime.db) == before


def test_the_login_link_sets_a_cookie_and_then_the_app_works(client, runtime, config, token):
    response = client.get(f"/apps/tasks?token={token}&x=1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/apps/tasks?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"theseus-token-{config.port}={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert client.get("/log").status_code == 200  # the client keeps the cookie, as a browser does
    assert client.post("/ops/tasks.insert", data={"name": "with the cookie"},
                       headers={"origin": f"http://127.0.0.1:{config.port}"}).status_code == 200
    with client.websocket_connect("/chat/ws?tab=mine", headers={**own(config),
                                                                "cookie": f"theseus-token-{config.port}={token}"}) as ws:
        ws.send_text('{"action": "send", "message": "/add over the socket"}')
        while "Added task" not in ws.receive_text():
            pass
    assert [r["name"] for r in runtime.db.query("SELECT name FROM tasks ORDER BY id")] == \
        ["with the cookie", "over the socket"]


def test_the_login_link_never_redirects_off_the_server(client, config, token):
    base = f"http://127.0.0.1:{config.port}"
    for path, location in [(f"//evil.example/?token={token}", "/evil.example/"), (f"/?token={token}", "/"),
                           (f"/apps/tasks?q=&token={token}", "/apps/tasks?q=")]:
        response = client.get(base + path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == location, path


def test_allowed_hosts_come_from_the_environment():
    config = Config.from_env({"THESEUS_ALLOWED_HOSTS": " theseus.lan, proxy.example:8443 ,[fe80::1]:80,"})
    assert config.allowed_hosts == ("theseus.lan", "proxy.example:8443", "[fe80::1]:80")
    for bad in ("evil.example/x", "user@host", "a b"):
        with pytest.raises(ValueError, match="THESEUS_ALLOWED_HOSTS"):
            Config.from_env({"THESEUS_ALLOWED_HOSTS": bad})
    assert Config.from_env({"THESEUS_TOKEN": "s3cret-s3cret-s3cret"}).token == "s3cret-s3cret-s3cret" and "s3cret" not in repr(
        Config.from_env({"THESEUS_TOKEN": "s3cret-s3cret-s3cret"}))


def test_serve_beyond_loopback_warns_and_prints_a_working_login_link(tmp_path):
    port, data, console = free_port(), tmp_path / "data", tmp_path / "console.txt"
    env = {"THESEUS_LLM": f"openai:http://127.0.0.1:{free_port()}/v1", "THESEUS_INDEX": "0"}
    with console.open("w") as out:
        process = subprocess.Popen([*THESEUS, "serve", "--no-watch", "--host", "0.0.0.0", "--port", str(port),
                                    "--data", str(data)], stdout=out, stderr=out,
                                   env={**os.environ, **env})
    try:
        link = wait_for_link(console, process)
        assert "WARNING: Theseus is bound to 0.0.0.0" in console.read_text()
        base = f"http://127.0.0.1:{port}"
        assert link.startswith(f"{base}/?token=")
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/health").status_code == 403
            assert http.get(link, follow_redirects=False).status_code == 303
            assert http.get("/health").status_code == 200  # the cookie
        token = link.partition("?token=")[2]
        log = (data / "server.log").read_text()
        assert "beyond loopback" in log and token not in log  # the log goes into prompts: never the token
    finally:
        process.terminate()
        process.wait(10)


def wait_for_link(console, process) -> str:
    """The login link `theseus serve` prints, once the server answers."""
    while process.poll() is None:
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", console.read_text())
        if found:
            try:
                httpx.get(found[0].partition("?")[0] + "health", timeout=1)
                return found[0]
            except httpx.TransportError:
                pass
        process_wait(process)
    raise AssertionError(f"theseus serve exited: {console.read_text()}")


def process_wait(process) -> None:
    """Give the server a moment (returns at once if it exits)."""
    try:
        process.wait(0.05)
    except subprocess.TimeoutExpired:
        pass
