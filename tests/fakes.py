"""A scripted LLM backend for deterministic unit tests of the chat pipeline (never the only test of a feature)."""

from __future__ import annotations

import asyncio
import json

from theseus.llm.base import Backend, BackendStatus, BackendUnavailable, estimate_tokens


def choices_of(schema: dict) -> list[dict]:
    """The `anyOf` alternatives of a decoder schema (a plan's: those of each of its commands)."""
    return (schema["properties"]["commands"]["items"] if "commands" in schema.get("properties", {}) else schema)["anyOf"]


def verbs(schema: dict) -> list[str]:
    """The verbs a decoder schema offers (one `anyOf` alternative each)."""
    return [choice["properties"]["command"]["const"] for choice in choices_of(schema)]


def alternative(schema: dict, verb: str) -> dict:
    """The properties a decoder schema asks for with this verb (besides "command")."""
    choice = next(c for c in choices_of(schema) if c["properties"]["command"]["const"] == verb)
    return {k: v for k, v in choice["properties"].items() if k != "command"}


class ScriptedBackend(Backend):
    """Replies with scripted texts, piece by piece; records every prompt it was given."""

    name = "scripted"
    model = "scripted"

    def __init__(self, replies: list[str] | None = None, *, commands: list[dict] | None = None,
                 delay: float = 0.0, fail: Exception | None = None):
        self.replies = list(replies or ["Hello from the script."])
        self.commands = list(commands or [])  # JSON answers to complete_json, in order; then "just talk"
        self.delay, self.fail = delay, fail
        self.prompts: list[list[dict]] = []
        self.chat_prompts: list[list[dict]] = []  # the prompts of chat replies only
        self.warmed: list[tuple[str, list[dict]]] = []  # (role, messages) read ahead
        self.progress: list[float] = []  # fractions reported through on_progress before a reply's first piece
        self.schemas: list[dict] = []
        self.temperatures: list[float] = []  # of each chat reply
        self.state = BackendStatus("ready", "scripted")
        self.stopped_early = False

    async def start(self) -> None:
        pass

    def status(self) -> BackendStatus:
        return self.state

    async def wait_ready(self, timeout: float) -> None:
        if not self.state.ready:
            await asyncio.sleep(min(timeout, 0.05))
            raise BackendUnavailable(self.state.detail)

    async def stream_chat(self, messages, *, max_tokens=512, temperature=0.7, cancel=None, on_progress=None):
        self.prompts.append(messages)
        self.chat_prompts.append(messages)
        self.temperatures.append(temperature)
        if self.fail:
            raise self.fail
        for fraction in self.progress if on_progress else []:
            on_progress(fraction)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for word in reply.split(" "):
            if cancel is not None and cancel.is_set():
                self.stopped_early = True
                return
            await asyncio.sleep(self.delay)
            yield word + " "

    async def complete_json(self, messages, schema, *, max_tokens=256, temperature=0.0, on_progress=None,
                            stop_when=None) -> str:
        self.prompts.append(messages)
        if self.fail:
            raise self.fail
        self.schemas.append(schema)
        return json.dumps(self.commands.pop(0) if self.commands else {"command": "chat"})

    async def warm(self, messages, role="chat") -> None:
        self.warmed.append((role, messages))

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def list_models(self) -> list[str]:
        return [self.model]

