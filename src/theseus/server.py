"""Run the app under uvicorn, with logging set up and live-sync streams closed on exit."""

from __future__ import annotations

import os
import sys

import uvicorn
from loguru import logger

from .app import create_app
from .changes.service import roll_back_pending
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
        self.restarting = False

    def restart(self) -> None:
        """Shut down gracefully (an answer being sent is finished), then `serve` starts the server again."""
        self.restarting = True
        self.end_streams()
        self.should_exit = True  # not handle_exit: uvicorn would raise the signal again once it stopped

    def handle_exit(self, sig, frame) -> None:
        self.end_streams()
        super().handle_exit(sig, frame)

    def end_streams(self) -> None:
        runtime = self.theseus_app.state.runtime
        runtime.broadcaster.publish(Message("restarting"))  # tabs show it, then reconnect by themselves
        runtime.end_streams()


def serve(config: Config, *, supervised: bool = False) -> int:
    """Serve until interrupted; return the exit code. Supervised: follow the dev loop's status file. A code change
    restarts the server on the new files (the dev loop does, or this process executes itself again)."""
    config = with_token(config)  # bound beyond loopback, every request needs this token
    setup_logging(config.log_path)
    logger.info(f"Theseus starting: {config.origin} (data in {config.data_dir.resolve()})"
                + (" under the dev loop" if supervised else ""))
    try:
        runtime = Runtime(config)
        app = create_app(config, runtime)
    except Exception as error:  # a code change that breaks the start: its old files come back, and the old code runs
        if roll_back_pending(config, error):
            logger.opt(exception=error).error("the changed code did not start; its old files are back")
            restart_process(supervised, config)
        raise
    runtime.dev_status = StatusFile.of(config) if supervised else None
    if app.state.access.token:
        logger.warning(f"bound to {config.host or '*'}, beyond loopback: every request needs the access token "
                       "(printed on the console, never logged)")
        print(exposure_notice(config, app.state.access), file=sys.stderr, flush=True)
    server = Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                   access_log=False, timeout_graceful_shutdown=3, ws_max_size=BODY_LIMIT), app)
    if not supervised:
        runtime.restart = server.restart
    try:
        server.run()  # on SIGTERM/SIGINT uvicorn shuts down, then re-raises the signal
    finally:
        if not server.started and roll_back_pending(config, RuntimeError("the server did not start")):
            logger.error("the changed code did not start; its old files are back")  # (its startup failed)
            restart_process(supervised, config)
    if server.restarting:
        restart_process(supervised, config)
    return 0


def restart_process(supervised: bool, config: Config | None = None) -> None:
    """Start again on the code on disk: under the dev loop, exit (it starts the server again when it sees the
    changed files); otherwise this process becomes a new server with the same arguments (and the same access
    token, so open tabs stay logged in)."""
    if supervised:
        sys.exit(3)
    logger.info("restarting on the changed code")
    logger.complete()
    if config is not None and config.token:
        os.environ["THESEUS_TOKEN"] = config.token
    os.execv(sys.executable, [sys.executable, "-m", "theseus", *sys.argv[1:]])
