"""Logging: a fresh, human-readable server.log on every start, plus the console.

One line per request (method, path, status, time) and one per operation
(who, what, outcome), written by loguru.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from loguru import logger

LINE = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {message}"


def setup_logging(log_path: Path, *, console: bool = True, level: str = "INFO") -> None:
    """Send logs to a freshly truncated `log_path` (and stderr)."""
    logger.remove()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.add(log_path, format=LINE, level=level, mode="w", encoding="utf-8",
               backtrace=False, diagnose=False)
    if console:
        logger.add(sys.stderr, format=LINE, level=level, colorize=False, backtrace=False, diagnose=False)


class RequestLogMiddleware:
    """ASGI middleware: one log line per HTTP request with its status and duration."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if not scope["path"].startswith("/vendor/"):
                elapsed = (time.perf_counter() - started) * 1000
                logger.info(f"{scope['method']} {scope['path']} -> {status[0]} ({elapsed:.1f} ms)")
