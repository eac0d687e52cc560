"""Fixtures for the LLM tests: small real HTTP servers on loopback ports."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import pytest
import uvicorn

from tests.conftest import free_port
from tests.waits import wait_until


@contextmanager
def serve(app):
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"test-server-{port}", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the test server to start", timeout=10, every=0.01)
    assert server.started, "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def serve_asgi():
    """The `serve` context manager: `with serve_asgi(app) as base_url: ...`."""
    return serve


@pytest.fixture(scope="session")
def unused_port():
    """A function returning a loopback port nothing listens on."""
    return free_port


@pytest.fixture
def unanswered_port():
    """A loopback port whose accept queue is full, so a new connection hangs as to a host that never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    yield port
    for sock in (*fillers, listener):
        sock.close()
