"""Fixtures for the LLM tests: the real model (assembled once per machine) and
small real HTTP servers on loopback ports."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from theseus.llm import DEFAULT_MODEL, ensure_model

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
def shared_models_dir() -> Path:
    """Where the real model lives: $THESEUS_MODELS, else <repo>/data/models (shared across runs)."""
    return Path(os.environ.get("THESEUS_MODELS") or REPO_ROOT / "data" / "models")


@pytest.fixture(scope="session")
def real_model(shared_models_dir: Path) -> Path:
    """The default GGUF, assembled and verified once per machine."""
    return ensure_model(shared_models_dir, DEFAULT_MODEL)


@pytest.fixture(scope="session")
def serve_asgi():
    """The `serve` context manager: `with serve_asgi(app) as base_url: ...`."""
    return serve


@pytest.fixture(scope="session")
def unused_port():
    """A function returning a loopback port nothing listens on."""
    return free_port
