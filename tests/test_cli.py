"""The `theseus` command, and a real `theseus serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import free_port
from tests.waits import wait_until

THESEUS = [sys.executable, "-m", "theseus"]


def run(*args, env=None, timeout=60):
    return subprocess.run([*THESEUS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for word in ("serve", "models", "THESEUS_DATA", "THESEUS_LLM"):
        assert word in result.stdout
    serve_help = run("serve", "--help").stdout
    assert "--port" in serve_help and "--host" in serve_help and "--data" in serve_help


@pytest.mark.parametrize("name, value, message", [
    ("THESEUS_PORT", "http", "THESEUS_PORT must be a number"),
    ("THESEUS_TEMPERATURE", "warm", "THESEUS_TEMPERATURE must be a number"),
    ("THESEUS_TEMPERATURE", "7", "THESEUS_TEMPERATURE must be between 0 and 2"),
    ("THESEUS_TOKEN", "secret", "THESEUS_TOKEN must be at least 16 characters"),
])
def test_a_bad_setting_is_a_clear_error(name, value, message):
    result = run("serve", env={name: value})
    assert result.returncode == 2 and message in result.stderr


def start_server(data_dir, port, *options, env=None):
    """A real `theseus serve` process on this port, once it answers /health (its log is server.log)."""
    process = subprocess.Popen([*THESEUS, "serve", "--port", str(port), "--data", str(data_dir), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        wait_until(lambda: answers(port) or process.poll() is not None, "theseus serve to come up", 30, 0.05)
    finally:
        if not answers(port):
            process.kill()
            log = data_dir / "server.log"
            pytest.fail(f"theseus serve did not come up: {log.read_text() if log.exists() else 'no server.log'}")
    return process


def answers(port) -> bool:
    """Whether a server on this loopback port answers /health."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_writes_a_fresh_log_and_stops_cleanly_with_a_tab_open(tmp_path):
    port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    for round_ in (1, 2):
        process = start_server(data, port)
        assert httpx.post(f"{base}/ops/tasks.insert", data={"name": f"round {round_}"}).status_code == 200
        with httpx.stream("GET", f"{base}/sync?tab=t", timeout=5) as stream:  # an open live-sync tab
            assert stream.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        log = (data / "server.log").read_text()
        assert "Theseus stopped: live-sync streams ended, database closed" in log
        assert f"Added task 'round {round_}'" in log and "POST /ops/tasks.insert -> 200" in log
        assert f"round {3 - round_}'" not in log  # each start begins a fresh log
    process = start_server(data, port)  # the data survived both runs
    assert "round 1" in httpx.get(f"{base}/apps/tasks").text
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.model
def test_chat_prints_a_reply_from_the_real_model_and_stores_it(tmp_path, shared_models_dir, real_model):
    env = {"THESEUS_MODELS": str(shared_models_dir)}
    data = tmp_path / "data"
    # a fresh data dir: the model reads the chat's and the decoder's prefixes cold (~30 s here, more when busy)
    result = run("chat", "Reply with one short friendly sentence.", "--data", str(data), env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    from theseus.chat.conversations import Conversations
    from theseus.db import Database
    messages = Conversations(Database(data / "theseus.db")).messages(1)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"].strip() == result.stdout.strip()
    missing = run("chat", "hi", "--data", str(data), "--conversation", "42", env=env)
    assert missing.returncode == 1 and "There is no conversation #42." in missing.stderr


def test_chat_with_an_unreachable_backend_fails_clearly(tmp_path, unused_port_url):
    result = run("chat", "hello", "--data", str(tmp_path / "d"), "--llm", f"openai:{unused_port_url}/v1")
    assert result.returncode == 1 and "error:" in result.stderr


@pytest.mark.model
def test_models_reports_the_active_model_as_ready(shared_models_dir, real_model):
    result = run("models", env={"THESEUS_MODELS": str(shared_models_dir)})
    assert result.returncode == 0
    assert "active backend: embedded" in result.stdout and "qwen2.5-coder-0.5b-instruct" in result.stdout


@pytest.fixture
def unused_port_url():
    return f"http://127.0.0.1:{free_port()}"


def test_routes_lists_every_route_and_operation(tmp_path):
    result = run("routes", "--data", str(tmp_path / "data"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for expected in ("GET        /apps/{name}", "WS         /chat/ws", "POST       /ops/tasks.toggle",
                     "tasks.delete(id: int) (destructive)  Delete one task by its id.",
                     "history.undo(event_id: int?)  Undo Chip's most recent change, or the change with this event id (with "
                     "the rest of its plan)."):
        assert expected in lines


@pytest.mark.timeout(30)
def test_logs_prints_the_current_server_log(tmp_path):
    data = tmp_path / "data"
    assert run("logs", "--data", str(data)).returncode == 1  # no log yet: a clear error
    data.mkdir()
    (data / "server.log").write_text("line one\nline two\n")
    result = run("logs", "--data", str(data))
    assert result.returncode == 0 and result.stdout == "line one\nline two\n"
    follower = subprocess.Popen([*THESEUS, "logs", "--follow", "--data", str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline() == "line one\n"
        with (data / "server.log").open("a") as log:
            log.write("appended later\n")
        follower.stdout.readline()
        assert follower.stdout.readline() == "appended later\n"
    finally:
        follower.terminate()
        follower.wait(5)
