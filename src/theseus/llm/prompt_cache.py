"""One llama.cpp context that remembers what it has read, across turns and across restarts.

A prompt costs only the tokens after the longest prefix the context already
holds (llama.cpp keeps their keys and values in its KV cache): the caller
lays prompts out so that prefix is long (chat/context.py appends, never
rewrites). Reading goes in small chunks, so a long read can report its progress
and be stopped between two chunks. After every job the context's state (its KV
cache and the tokens it holds) is written to the data dir, keyed by the model
file and the context's role; at the next start it is read back, so the first
turn after a restart finds its prefix warm. The tokens saved with the state say
what it holds: a prompt that no longer starts the same way just reads again.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

READ_CHUNK = 64  # tokens per llama.cpp call while reading a prompt: within 10% of 256 here, and stoppable
PROGRESS_FROM = 128  # a read of at least this many new tokens reports its progress


class Stopped(Exception):
    """The reader asked to stop before the prompt was read."""


@dataclass(frozen=True)
class Reading:
    """What one prompt cost: tokens read now, tokens found already read, and the seconds it took."""

    new: int
    cached: int
    seconds: float


class PromptCache:
    """A llama.cpp context (`Llama`) whose reads start where the last prompt stops matching."""

    def __init__(self, llama, role: str, state_dir: Path | None, model_path: Path):
        self.llama, self.role = llama, role
        self.state_path = state_dir / f"{model_key(model_path, llama.n_ctx())}.{role}.kv" if state_dir else None
        self.format = chat_formatter(llama)
        self.saved: tuple[int, ...] = ()
        self.last: Reading | None = None

    def tokens(self, messages: list[dict]) -> list[int]:
        """The prompt for these messages, in the model's own chat template, as tokens."""
        prompt = self.format(messages=messages).prompt
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def held(self) -> list[int]:
        return self.llama.input_ids[: self.llama.n_tokens].tolist()

    def holds(self, tokens: list[int], slack: int = 5) -> bool:
        """Whether the context holds these tokens already, but for the last few (the end of the last message
        and the "assistant" header after it, where the next prompt goes on with its own)."""
        return common_prefix(self.held(), tokens) >= len(tokens) - slack

    def read(self, tokens: list[int], progress: Callable[[float], None] | None = None,
             stop: threading.Event | None = None) -> Reading:
        """Evaluate the tokens the context does not hold yet (at least the last, for fresh logits)."""
        started = time.perf_counter()
        llama = self.llama
        same = common_prefix(self.held(), tokens)
        start = min(same, len(tokens) - 1)
        llama.n_tokens = start  # eval() drops whatever the cache held beyond this point
        todo = len(tokens) - start
        for done in range(0, todo, READ_CHUNK):
            if stop is not None and stop.is_set():
                raise Stopped
            llama.eval(tokens[start + done:start + done + READ_CHUNK])
            if progress is not None and todo >= PROGRESS_FROM:
                progress(min(1.0, (done + READ_CHUNK) / todo))
        self.last = Reading(todo, start, time.perf_counter() - started)
        return self.last

    def save(self) -> None:
        """Write the context's state to the data dir (if it changed since the last save)."""
        held = tuple(self.held())
        if self.state_path is None or held == self.saved or not held:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_suffix(f".{os.getpid()}.partial")
        array = (ctypes.c_int32 * len(held))(*held)
        from llama_cpp import llama_state_save_file

        if llama_state_save_file(self.llama._ctx.ctx, str(partial).encode(), array, len(held)):
            partial.replace(self.state_path)
            self.saved = held
        else:
            partial.unlink(missing_ok=True)
            logger.warning(f"llm: could not save the {self.role} context's state to {self.state_path}")

    def restore(self) -> int:
        """Read the state saved by an earlier run back into the context; the number of tokens it holds."""
        if self.state_path is None or not self.state_path.exists():
            return 0
        from llama_cpp import llama_state_load_file

        capacity = self.llama.n_ctx()
        array, count = (ctypes.c_int32 * capacity)(), ctypes.c_size_t(0)
        if not llama_state_load_file(self.llama._ctx.ctx, str(self.state_path).encode(), array, capacity,
                                     ctypes.byref(count)):
            logger.warning(f"llm: the saved {self.role} state {self.state_path} does not load; reading afresh")
            self.llama.reset()
            return 0
        held = list(array[: count.value])
        self.llama.input_ids[: len(held)] = held
        self.llama.n_tokens = len(held)
        self.saved = tuple(held)
        return len(held)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens two sequences share from their start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def model_key(model_path: Path, n_ctx: int) -> str:
    """A short key for a model file and window: a saved state is only read back into the same model."""
    stat = Path(model_path).stat()
    text = f"{Path(model_path).name}:{stat.st_size}:{stat.st_mtime_ns}:{n_ctx}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chat_formatter(llama):
    """The model's own chat template (from the GGUF), as llama-cpp-python's chat completion would use it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("This model file has no chat template")
    token_text = llama._model.token_get_text
    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(template=template, eos_token=token_text(eos) if eos != -1 else "",
                               bos_token=token_text(bos) if bos != -1 else "")
