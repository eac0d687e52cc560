"""Run the app under uvicorn, with logging set up and live-sync streams closed on exit."""

from __future__ import annotations

import sys

import uvicorn
from loguru import logger

from .app import create_app
from .config import Config
from .devloop import StatusFile
from .events import Message
from .limits import BODY_LIMIT
from .logs import setup_logging
from .runtime import Runtime
from .security import exposure_notice, with_token


class Server(uvicorn.Server):
    """uvicorn, but ending the live-sync streams first so shutdown does not wait on them."""

    def __init__(self, config: uvicorn.Config, app):
        super().__init__(config)
        self.theseus_app = app

    def handle_exit(self, sig, frame) -> None:
        runtime = self.theseus_app.state.runtime
        runtime.broadcaster.publish(Message("restarting"))  # tabs show it, then reconnect by themselves
        runtime.end_streams()
        super().handle_exit(sig, frame)


def serve(config: Config, *, supervised: bool = False) -> int:
    """Serve until interrupted; return the exit code. Supervised: follow the dev loop's status file."""
    config = with_token(config)  # bound beyond loopback, every request needs this token
    setup_logging(config.log_path)
    logger.info(f"Theseus starting: {config.origin} (data in {config.data_dir.resolve()})"
                + (" under the dev loop" if supervised else ""))
    runtime = Runtime(config)
    runtime.dev_status = StatusFile.of(config) if supervised else None
    app = create_app(config, runtime)
    if app.state.access.token:
        logger.warning(f"bound to {config.host or '*'}, beyond loopback: every request needs the access token "
                       "(printed on the console, never logged)")
        print(exposure_notice(config, app.state.access), file=sys.stderr, flush=True)
    server = Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                   access_log=False, timeout_graceful_shutdown=3, ws_max_size=BODY_LIMIT), app)
    server.run()  # on SIGTERM/SIGINT uvicorn shuts down, then re-raises the signal
    return 0
