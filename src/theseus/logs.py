"""Logging: a fresh, human-readable server.log on every start, plus the console.

One line per request (method, path, status, time) and one per operation
(who, what, outcome), written by loguru. Any web page can make the browser send
a request here, so nothing from a request may forge a line or fill the disk:
every message is shown on one line with its control characters made visible
(`log_safe`), request values are cut short, and the file is capped (when it
reaches LOG_LIMIT it is renamed and a new one begins; one older file is kept).
"""

from __future__ import annotations

import re
import sys
import time
import traceback
from pathlib import Path

from loguru import logger

LOG_LIMIT = 2 * 1024 * 1024  # bytes in server.log before it rotates; one rotated file is kept beside it
LOG_TAIL = 256 * 1024  # bytes of the newest log that /log (and so "Copy log") serves
MESSAGE_LIMIT = 2000  # characters of one log message
PATH_LIMIT = 200  # characters of a request path in a log line
TRACE_LINES = 60  # lines of a logged traceback (its newest)
# C0 and C1 controls, DEL, Unicode line/paragraph separators, bidi marks and overrides, zero-width and other
# invisible format characters: none may reach a log line as is.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
VISIBLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def log_safe(value, limit: int = MESSAGE_LIMIT) -> str:
    """`value` as text for one log line: cut to `limit` characters (`…(+N)`), control characters shown as escapes."""
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit})"
    return CONTROL.sub(lambda match: visible(match[0]), text)


def visible(char: str) -> str:
    """A control character as the escape that shows it: `\\n`, `\\x1b`, `\\u2028`."""
    code = ord(char)
    return VISIBLE.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def line_format(record) -> str:
    """Loguru's format for one line; the message and any traceback go through log_safe, whatever the caller wrote."""
    record["extra"]["line"] = log_safe(record["message"])
    record["extra"]["trace"] = traceback_lines(record["exception"])
    return "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[line]}\n{extra[trace]}"


def traceback_lines(exception) -> str:
    """A logged exception as indented, escaped lines (its newest TRACE_LINES): its message may carry request text."""
    if not exception or exception.type is None:
        return ""
    frames = "".join(traceback.format_tb(exception.traceback)).splitlines()  # our own code: file, line, source
    message = "".join(traceback.format_exception_only(exception.type, exception.value)).rstrip("\n")
    lines = ["Traceback (most recent call last):", *frames, message]  # the message, one line however it reads
    shown = [f"    {log_safe(line, 500)}" for line in lines[-TRACE_LINES:]]
    cut = [f"    …({len(lines) - TRACE_LINES} lines before)"] if len(lines) > TRACE_LINES else []
    return "\n".join(cut + shown) + "\n"


def setup_logging(log_path: Path, *, console: bool = True, level: str = "INFO", limit: int = LOG_LIMIT) -> None:
    """Send logs to a freshly truncated `log_path`, rotated at `limit` bytes (and to stderr)."""
    logger.remove()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.add(log_path, format=line_format, level=level, mode="w", encoding="utf-8", rotation=limit,
               retention=1, backtrace=False, diagnose=False)
    if console:
        logger.add(sys.stderr, format=line_format, level=level, colorize=False, backtrace=False, diagnose=False)


def log_tail(log_path: Path, limit: int = LOG_TAIL) -> str:
    """The newest whole lines of the log, at most `limit` bytes of it ("" if there is no log yet)."""
    try:
        with log_path.open("rb") as log:
            start = max(0, log.seek(0, 2) - limit)
            log.seek(max(0, start - 1))  # from the byte before: a line that begins exactly at `start` is kept
            data = log.read(limit + (start > 0))
    except FileNotFoundError:
        return ""
    if start > 0:
        data = data.partition(b"\n")[2]  # begin at a line's start
    return data.decode("utf-8", errors="replace")


def request_line(scope, status: int, elapsed_ms: float) -> str:
    """The log line of one request; the path is cut and escaped (the query is never logged: it may hold a token)."""
    return f"{log_safe(scope['method'], 16)} {log_safe(scope['path'], PATH_LIMIT)} -> {status} ({elapsed_ms:.1f} ms)"


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
                logger.info(request_line(scope, status[0], (time.perf_counter() - started) * 1000))
