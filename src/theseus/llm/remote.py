"""What the HTTP backends (Ollama, OpenAI-compatible) share: one async client,
probing, error messages, and reading a streamed response line by line with a
first-token timeout, a stall timeout and prompt cancellation.

Cancellation does not run the HTTP read in a second task (httpx wants one task
per connection); a small watcher task instead expires the `asyncio.timeout`
scope around the current read, so the read stops where it is. Every reply is
read up to STREAM_LIMIT bytes, and a reply that is not streamed within one
overall deadline: a server that never ends a line, never ends the stream, or
trickles bytes forever cannot fill the memory or hold a turn (the chat cuts a
streamed reply's text far sooner).
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing

import httpx

from .base import Backend, BackendError, BackendStatus, BackendUnavailable

STREAM_LIMIT = 8 * 1024 * 1024  # bytes of one reply (streamed or not) read from a model server
ERROR_LIMIT = 64 * 1024  # bytes of an error answer read, for its message


class HttpStatusError(BackendError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class StreamCancelled(Exception):
    """The caller set its cancel event while a stream was being read."""


class RemoteBackend(Backend):
    """Base for backends that talk to a model server over HTTP."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        connect_timeout: float = 3.0,
        first_token_timeout: float = 120.0,
        stall_timeout: float = 60.0,
        headers: dict | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self._headers = headers or {}
        self._client: httpx.AsyncClient | None = None
        self._status = BackendStatus("idle", f"{self.name} at {self.base_url} not checked yet")

    def status(self) -> BackendStatus:
        """Return the result of the last probe."""
        return self._status

    async def start(self) -> None:
        """Probe the server once; the outcome is in status()."""
        try:
            self._status = await self.probe()
        except BackendError as e:
            self._status = BackendStatus("unreachable", str(e))

    async def wait_ready(self, timeout: float) -> None:
        """Probe until the server is ready; raise BackendUnavailable after timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.start()
            if self._status.ready:
                return
            if loop.time() >= deadline:
                raise BackendUnavailable(self._status.detail)
            await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))

    @abc.abstractmethod
    async def probe(self) -> BackendStatus:
        """Ask the server whether it can serve self.model."""

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def http(self) -> httpx.AsyncClient:
        """Return the client, creating it in the running event loop on first use."""
        if self._client is None:
            timeout = httpx.Timeout(self.first_token_timeout, connect=self.connect_timeout)
            self._client = httpx.AsyncClient(timeout=timeout, headers=self._headers)
        return self._client

    def _stream_timeout(self) -> httpx.Timeout:
        # Streamed reads are bounded by CancelWatch (first-token and stall timeouts), not httpx.
        return httpx.Timeout(None, connect=self.connect_timeout)

    def url(self, path: str) -> str:
        """Return the full URL of an API path on this server."""
        return f"{self.base_url}/{path.lstrip('/')}"

    async def get_json(self, path: str) -> dict:
        """GET path and return its JSON body."""
        return await self.request_json("GET", path, None, timeout=self.connect_timeout + 10)

    async def request_json(self, method: str, path: str, body: dict | None, timeout: float) -> dict:
        """Send one request, map failures to BackendError, return the JSON body (within `timeout` and STREAM_LIMIT)."""
        try:
            async with asyncio.timeout(timeout):  # the whole answer: a server that trickles bytes cannot hold us
                async with self.http().stream(method, self.url(path), json=body, timeout=timeout) as response:
                    content, whole = await read_at_most(response, STREAM_LIMIT)
        except TimeoutError:
            raise BackendUnavailable(f"{self.name} at {self.base_url} did not answer in time (/{path.lstrip('/')})") \
                from None
        except httpx.HTTPError as e:
            raise self.transport_error(e, path) from None
        if response.status_code >= 400:
            raise self.status_error(response.status_code, content)
        if not whole:
            raise BackendError(f"{self.name} at {self.base_url} sent more than {STREAM_LIMIT // (1024 * 1024)} MiB "
                               "in one answer; stopped reading it")
        try:
            return json.loads(content)
        except ValueError:
            snippet = content[:200].decode("utf-8", "replace")
            raise BackendError(f"{self.name} sent a reply that is not JSON: {snippet!r}") from None

    async def stream_lines(
        self, path: str, body: dict, cancel: asyncio.Event | None
    ) -> AsyncIterator[str]:
        """POST body and yield the non-empty lines of the streamed reply until done or cancelled."""
        watch = CancelWatch(cancel)
        try:
            async with AsyncExitStack() as stack:
                stream = self.http().stream("POST", self.url(path), json=body, timeout=self._stream_timeout())
                response = await watch.step(stack.enter_async_context(stream), self.first_token_timeout)
                if response.status_code >= 400:
                    raise self.status_error(response.status_code, (await read_at_most(response, ERROR_LIMIT))[0])
                lines = await stack.enter_async_context(aclosing(self.bounded_lines(response)))
                timeout = self.first_token_timeout
                while (line := await watch.step(anext(lines, None), timeout)) is not None:
                    timeout = self.stall_timeout
                    if line.strip():
                        yield line
        except StreamCancelled:
            return
        except TimeoutError:
            where = f"{self.name} at {self.base_url}"
            raise BackendUnavailable(f"{where} stopped answering (timed out)") from None
        except httpx.HTTPError as e:
            raise self.transport_error(e, path) from None
        finally:
            watch.close()

    async def bounded_lines(self, response: httpx.Response, limit: int = STREAM_LIMIT) -> AsyncIterator[str]:
        """The response's lines (ended by \\n or \\r\\n), until more than `limit` bytes came: then BackendError."""
        pending = ""
        async for text in response.aiter_text():
            if response.num_bytes_downloaded > limit:
                raise BackendError(f"{self.name} at {self.base_url} sent more than {limit // (1024 * 1024)} MiB "
                                   "without ending its reply; stopped reading it")
            if "\n" not in text:
                pending += text
                continue
            *lines, pending = (pending + text).split("\n")
            for line in lines:
                yield line.removesuffix("\r")
        if pending:
            yield pending

    def transport_error(self, error: httpx.HTTPError, path: str) -> BackendError:
        """Turn an httpx exception into a message that says what to check."""
        where = f"{self.name} at {self.base_url}"
        if isinstance(error, httpx.ConnectError):
            return BackendUnavailable(f"Cannot connect to {where}: is the server running? ({error})")
        if isinstance(error, httpx.TimeoutException):
            what = f"{type(error).__name__} on /{path.lstrip('/')}"
            return BackendUnavailable(f"{where} did not answer in time ({what})")
        return BackendError(f"Talking to {where} failed: {type(error).__name__}: {error}")

    def status_error(self, status: int, content: bytes) -> HttpStatusError:
        """Build the error for an HTTP error status, quoting the server's own message."""
        text = server_error_text(content)
        message = f"{self.name} at {self.base_url} answered HTTP {status}: {text}"
        if status in (404, 503):
            return UnavailableStatusError(message, status)
        return HttpStatusError(message, status)


async def read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The response's body up to `limit` bytes, and whether that was all of it (the rest is never read)."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


class UnavailableStatusError(HttpStatusError, BackendUnavailable):
    """HTTP 404/503: the model or endpoint is not there (yet)."""


class CancelWatch:
    """Ends the current `step` early, as if timed out, when the cancel event is set."""

    def __init__(self, cancel: asyncio.Event | None):
        self.cancel = cancel
        self.scope: asyncio.Timeout | None = None
        self.task = asyncio.ensure_future(self._watch()) if cancel is not None else None

    async def _watch(self) -> None:
        await self.cancel.wait()
        if self.scope is not None:
            self.scope.reschedule(asyncio.get_running_loop().time())

    async def step(self, awaitable, timeout: float | None):
        """Await one step; raise StreamCancelled if cancelled, TimeoutError after timeout."""
        if self.cancel is not None and self.cancel.is_set():
            _discard(awaitable)
            raise StreamCancelled
        try:
            async with asyncio.timeout(timeout) as scope:
                self.scope = scope
                return await awaitable
        except TimeoutError:
            if self.cancel is not None and self.cancel.is_set():
                raise StreamCancelled from None
            raise
        finally:
            self.scope = None

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _discard(awaitable) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def server_error_text(content: bytes) -> str:
    """Extract the error message from a server's error body (Ollama, OpenAI, FastAPI shapes)."""
    text = content.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(no message)"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(data)[:300]


def parse_json_line(backend: Backend, line: str) -> dict:
    """Parse one streamed JSON object, raising BackendError on garbage."""
    try:
        data = json.loads(line)
    except ValueError:
        raise BackendError(f"{backend.name} sent a line that is not JSON: {line[:200]!r}") from None
    if not isinstance(data, dict):
        raise BackendError(f"{backend.name} sent JSON that is not an object: {line[:200]!r}")
    return data

