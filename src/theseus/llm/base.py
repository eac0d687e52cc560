"""The one interface every LLM backend implements, and the errors callers handle."""

from __future__ import annotations

import abc
import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

STATES = ("idle", "assembling", "loading", "ready", "error", "unreachable")


class BackendError(Exception):
    """The backend failed; str() is a clear message for the user."""


class BackendUnavailable(BackendError):
    """The backend cannot answer now: server down, model missing or not loaded."""


@dataclass(frozen=True)
class BackendStatus:
    """What a backend is doing, for the UI: one of STATES, a detail line, progress 0..1."""

    state: str
    detail: str = ""
    progress: float | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class Backend(abc.ABC):
    """A chat model: streams text, decodes JSON against a schema, counts tokens."""

    name: str = "backend"
    model: str = ""

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin loading (embedded) or probe the server; return quickly."""

    @abc.abstractmethod
    def status(self) -> BackendStatus:
        """Return the current status without waiting."""

    @abc.abstractmethod
    async def wait_ready(self, timeout: float) -> None:
        """Wait until the backend can answer; raise BackendUnavailable if it cannot."""

    @abc.abstractmethod
    def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        cancel: asyncio.Event | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> AsyncIterator[str]:
        """Yield pieces of the assistant's reply as they arrive; stop when cancel is set.

        A backend that reads the prompt itself calls on_progress(fraction) while a long prompt is read.
        """

    @abc.abstractmethod
    async def complete_json(
        self, messages: list[dict], schema: dict, *, max_tokens: int = 256, temperature: float = 0.0,
        on_progress: Callable[[float], None] | None = None, stop_when: Callable[[str], bool] | None = None,
    ) -> str:
        """Return the model's reply as JSON text constrained to the JSON schema. `stop_when(text so far)`: a
        backend that generates token by token may stop early when it says so, and then returns the text as it
        is, incomplete (the caller makes sense of it); others ignore it."""

    async def warm(self, messages: list[dict], role: str = "chat") -> None:
        """Read a prompt ahead of time where this backend caches prompts (`role`: "chat" or "decoder"), so the
        next one that starts the same way costs only the rest. By default there is nothing to do."""

    def count_tokens(self, text: str) -> int:
        """Return a conservative token count (about 3 characters per token)."""
        return estimate_tokens(text)

    @abc.abstractmethod
    async def list_models(self) -> list[str]:
        """Return the names of the models this backend can use."""

    async def close(self) -> None:
        """Release connections, threads and memory."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}:{self.model}>"


def estimate_tokens(text: str) -> int:
    """Return ceil(len(text) / 3): a conservative token count without a tokenizer."""
    return math.ceil(len(text) / 3)


def check_messages(messages: list[dict]) -> list[dict]:
    """Raise BackendError unless messages are OpenAI-style role/content dicts; return them."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise BackendError(f"Message {i} needs a role of system, user or assistant: {message!r}")
        if not isinstance(message.get("content"), str):
            raise BackendError(f"Message {i} needs text content: {message!r}")
    if not messages:
        raise BackendError("No messages to send to the model")
    return messages


def check_json_output(backend: Backend, text: str, truncated: bool) -> str:
    """Return text if it is complete, parseable JSON; otherwise raise BackendError saying why."""
    if truncated:
        raise BackendError(
            f"{backend.name} stopped at max_tokens before the JSON was complete: {text[:200]!r}"
        )
    try:
        json.loads(text)
    except ValueError:
        raise BackendError(f"{backend.name} returned invalid JSON: {text[:200]!r}") from None
    return text
