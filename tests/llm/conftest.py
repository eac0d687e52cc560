"""Fixtures for the LLM tests: small real HTTP servers on loopback ports."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn

from tests.conftest import free_port


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
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
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
