"""Any OpenAI-compatible server (llama.cpp server, vLLM, LM Studio, Ollama's /v1):
SSE streaming from /chat/completions, models from /models.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from .base import BackendError, BackendStatus, check_json_output, check_messages
from .remote import HttpStatusError, RemoteBackend, parse_json_line


class OpenAICompatBackend(RemoteBackend):
    """A model behind an OpenAI-compatible /v1 API; model "" means the server's first."""

    name = "openai"

    def __init__(self, base_url: str, model: str = "", *, api_key: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(base_url, model, headers=headers, **kwargs)
        self._json_schema_rejected = False

    async def probe(self) -> BackendStatus:
        """Ready if the server lists models (and self.model among them, when given)."""
        names = await self.list_models()
        if not self.model and names:
            self.model = names[0]
        if not names:
            return BackendStatus("error", f"The server at {self.base_url} lists no models")
        if self.model not in names:
            detail = f"The server at {self.base_url} has no model {self.model!r}; it has {', '.join(names)}"
            return BackendStatus("error", detail)
        return BackendStatus("ready", f"{self.model} at {self.base_url}")

    async def list_models(self) -> list[str]:
        """Return the model ids from /models."""
        data = await self.get_json("/models")
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        cancel: asyncio.Event | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> AsyncIterator[str]:
        """Yield reply pieces from the server-sent events of /chat/completions."""
        if not self.model:
            await self.start()  # picks the server's first model
        body = self._body(messages, max_tokens, temperature) | {"stream": True}
        async with aclosing(self.stream_lines("/chat/completions", body, cancel)) as lines:
            async for line in lines:
                if line.startswith(":") or not line.startswith("data:"):
                    continue  # SSE comments, event:/id: fields
                payload = line.removeprefix("data:").strip()
                if payload == "[DONE]":
                    return
                data = parse_json_line(self, payload)
                if "error" in data:
                    raise BackendError(f"{self.name}: {data['error']}")
                if piece := _delta_text(data):
                    yield piece
        if cancel is None or not cancel.is_set():
            raise BackendError(f"The server at {self.base_url} closed the stream before [DONE]")

    async def complete_json(
        self, messages: list[dict], schema: dict, *, max_tokens: int = 256, temperature: float = 0.0,
        on_progress: Callable[[float], None] | None = None, stop_when: Callable[[str], bool] | None = None,
    ) -> str:
        """Return JSON text constrained by response_format (json_schema, else json_object)."""
        if not self.model:
            await self.start()
        body = self._body(messages, max_tokens, temperature)
        if not self._json_schema_rejected:
            try:
                return await self._complete(body | {"response_format": json_schema_format(schema)})
            except HttpStatusError as e:
                if not rejects_json_schema(e):
                    raise
                self._json_schema_rejected = True
        return await self._complete(body | {"response_format": json_object_format(schema)})

    async def _complete(self, body: dict) -> str:
        data = await self.request_json("POST", "/chat/completions", body, self.first_token_timeout)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            reply = str(data)[:200]
            raise BackendError(f"The server at {self.base_url} sent an unexpected reply: {reply}") from None
        return check_json_output(self, text, truncated=choice.get("finish_reason") == "length")

    def _body(self, messages: list[dict], max_tokens: int, temperature: float) -> dict:
        return {
            "model": self.model,
            "messages": check_messages(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }


def json_schema_format(schema: dict) -> dict:
    """Return an OpenAI response_format that constrains output to schema."""
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def json_object_format(schema: dict) -> dict:
    """Return the older JSON-mode response_format; llama.cpp's server also honours its schema."""
    return {"type": "json_object", "schema": schema}


def rejects_json_schema(error: HttpStatusError) -> bool:
    """True if the server refused the json_schema response_format (400/422, or any status naming it)."""
    return error.status in (400, 422) or "json_schema" in str(error) or "response_format" in str(error)


def _delta_text(data: dict) -> str:
    choices = data.get("choices") or [{}]
    delta = choices[0].get("delta") or {}
    return delta.get("content") or ""
