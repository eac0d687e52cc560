"""Shared fixtures: a real app on a tmp data dir, an HTTP client, a live server, a real Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket as net
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from theseus.app import create_app
from theseus.config import Config
from theseus.llm import DEFAULT_MODEL, ensure_model
from theseus.llm.embedded import EmbeddedBackend
from theseus.logs import setup_logging
from theseus.runtime import Runtime
from theseus.server import Server
from tests.fakes import ScriptedBackend
from tests.waits import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


REPO_ROOT = Path(__file__).resolve().parents[1]


def run_async(coroutine):
    """Run a coroutine to the end from sync code, even where Playwright's event loop is running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with net.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def config(tmp_path) -> Config:
    """A tmp data dir and a free port; Chip replies at temperature 0, so a real-model test gets the same reply each run."""
    return Config(data_dir=tmp_path / "data", port=free_port(), temperature=0.0)


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """Where the real model lives: $THESEUS_MODELS, else <repo>/data/models (assembled once per machine)."""
    return Path(os.environ.get("THESEUS_MODELS") or REPO_ROOT / "data" / "models")


@pytest.fixture(scope="session")
def real_model(shared_models_dir: Path) -> Path:
    """The default GGUF, assembled and verified once per machine."""
    return ensure_model(shared_models_dir, DEFAULT_MODEL)


@pytest.fixture(scope="session")
def embedded(real_model, shared_models_dir) -> EmbeddedBackend:
    """The real embedded model, loaded once for the whole session."""
    backend = EmbeddedBackend(shared_models_dir)
    run_async(backend.wait_ready(120))
    yield backend
    run_async(backend.close())


@pytest.fixture
def backend() -> ScriptedBackend:
    """The default backend of app tests: scripted. Real-model tests ask for the embedded one."""
    return ScriptedBackend()


@pytest.fixture
def runtime(config, backend) -> Runtime:
    runtime = Runtime(config, backend)
    yield runtime
    runtime.close()


@pytest.fixture
def app(config, runtime):
    return create_app(config, runtime)


@pytest.fixture
def client(app, config) -> TestClient:
    with TestClient(app, base_url=config.origin, raise_server_exceptions=False) as client:
        yield client


class LiveServer:
    """uvicorn serving the real app in a background thread of the test process."""

    def __init__(self, config: Config, runtime: Runtime):
        self.config, self.runtime = config, runtime
        self.app = create_app(config, runtime)
        self.server = Server(uvicorn.Config(self.app, host=config.host, port=config.port,
                                            log_level="warning", access_log=False,
                                            timeout_graceful_shutdown=1), self.app)
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return self.config.origin

    def start(self) -> "LiveServer":
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "the live server to start", 15)
        assert self.server.started, "the live server did not start"
        return self

    def stop(self) -> None:
        self.runtime.broadcaster.close()
        self.server.should_exit = True
        self.thread.join(10)

    def execute(self, name: str, args: dict | None = None, actor: str = "llm"):
        """Run an operation in-process, as the LLM will."""
        return self.runtime.registry.execute(name, args or {}, actor=actor)


@pytest.fixture
def live_server(config, backend):
    setup_logging(config.log_path, console=False)
    runtime = Runtime(config, backend)
    server = LiveServer(config, runtime).start()
    yield server
    server.stop()
    runtime.close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./run setup (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(5000)
    yield context
    context.close()


@pytest.fixture
def open_page(context, live_server):
    """open_page(path='/apps/tasks') -> a new tab showing that page, connected for live sync."""
    def open_(path: str = "/apps/tasks"):
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors
        page.goto(live_server.url + path)
        page.wait_for_function("document.body.dataset.live === 'open'")
        return page
    return open_


class Socket:
    """A chat WebSocket from the test client, collecting every fragment it receives."""

    def __init__(self, client, config, tab):
        self.ws = client.websocket_connect(f"/chat/ws?tab={tab}", headers={"host": f"127.0.0.1:{config.port}",
                                                                           "origin": config.origin})
        self.ws.__enter__()
        self.frames: list[str] = []

    def send(self, **data):
        self.ws.send_text(json.dumps(data))

    def until(self, pattern: str) -> str:
        """Receive frames until one matches; return it."""
        for _ in range(500):
            frame = self.ws.receive_text()
            self.frames.append(frame)
            if re.search(pattern, frame):
                return frame
        raise AssertionError(f"no frame matched {pattern!r}")

    def close(self):
        self.ws.__exit__(None, None, None)


@pytest.fixture
def socket(client, config):
    sockets = []

    def open_(tab="t1"):
        sockets.append(Socket(client, config, tab))
        return sockets[-1]
    yield open_
    for s in sockets:
        s.close()


REAL_PARTS = {"model": {"embedded", "real_model"}, "browser": {"browser"}}


def pytest_collection_modifyitems(items):
    """Mark each test by the real parts its fixtures bring in, so `-m model` or `-m "not browser"` selects them."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for marker, needs in REAL_PARTS.items():
            if fixtures & needs:
                item.add_marker(marker)
