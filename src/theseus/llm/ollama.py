"""Ollama's native API: NDJSON streaming from /api/chat, models from /api/tags."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from .base import BackendError, BackendStatus, check_json_output, check_messages
from .remote import RemoteBackend, parse_json_line

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


class OllamaBackend(RemoteBackend):
    """A model served by Ollama (local or on a GPU machine)."""

    name = "ollama"

    def __init__(
        self, model: str, base_url: str = DEFAULT_OLLAMA_URL, *, keep_alive: str = "30m", **kwargs
    ):
        super().__init__(base_url, model, **kwargs)
        self.keep_alive = keep_alive

    async def probe(self) -> BackendStatus:
        """Ready if Ollama answers and has the model pulled."""
        names = await self.list_models()
        if not has_model(names, self.model):
            detail = f"Ollama at {self.base_url} has no model {self.model!r}; run: ollama pull {self.model}"
            return BackendStatus("error", detail)
        return BackendStatus("ready", f"{self.model} on Ollama at {self.base_url}")

    async def list_models(self) -> list[str]:
        """Return the names of the models Ollama has pulled."""
        data = await self.get_json("/api/tags")
        return [m.get("name") or m.get("model", "") for m in data.get("models", [])]

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        cancel: asyncio.Event | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> AsyncIterator[str]:
        """Yield reply pieces from /api/chat as Ollama streams them."""
        body = self._body(messages, max_tokens, temperature, stream=True)
        async with aclosing(self.stream_lines("/api/chat", body, cancel)) as lines:
            async for line in lines:
                data = parse_json_line(self, line)
                if "error" in data:
                    raise BackendError(f"Ollama: {data['error']}")
                piece = (data.get("message") or {}).get("content") or ""
                if piece:
                    yield piece
                if data.get("done"):
                    return
        if cancel is None or not cancel.is_set():
            raise BackendError(f"Ollama at {self.base_url} closed the stream before it was done")

    async def complete_json(
        self, messages: list[dict], schema: dict, *, max_tokens: int = 256, temperature: float = 0.0,
        on_progress: Callable[[float], None] | None = None, stop_when: Callable[[str], bool] | None = None,
    ) -> str:
        """Return JSON text from /api/chat with `format` set to the schema."""
        body = self._body(messages, max_tokens, temperature, stream=False) | {"format": schema}
        data = await self.request_json("POST", "/api/chat", body, timeout=self.first_token_timeout)
        if "error" in data:
            raise BackendError(f"Ollama: {data['error']}")
        text = (data.get("message") or {}).get("content") or ""
        return check_json_output(self, text, truncated=data.get("done_reason") == "length")

    def _body(self, messages: list[dict], max_tokens: int, temperature: float, stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": check_messages(messages),
            "stream": stream,
            "keep_alive": self.keep_alive,
            "options": {"temperature": temperature, "num_predict": max_tokens},
        }


def has_model(names: list[str], model: str) -> bool:
    """True if model is among Ollama's names, where a bare name means its :latest tag."""
    wanted = model if ":" in model else f"{model}:latest"
    return model in names or wanted in names
