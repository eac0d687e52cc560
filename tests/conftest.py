"""Shared fixtures: a real app on a tmp data dir, an HTTP client, a live server, a real Chromium."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from theseus.app import create_app
from theseus.config import Config
from theseus.logs import setup_logging
from theseus.runtime import Runtime
from theseus.server import Server
from tests.fakes import ScriptedBackend

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", port=free_port())


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
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
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
