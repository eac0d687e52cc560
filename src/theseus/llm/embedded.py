"""llama.cpp in-process, through llama-cpp-python: no server, no network.

Two llama.cpp contexts share the (memory-mapped) weights: one for the chat,
one for decoding commands, so each keeps its own prompt cached
(`prompt_cache.PromptCache`: a prompt costs only its new tokens, and the cache
survives a restart). A long read reports its progress through `on_progress`.

All llama.cpp work (assembling, loading, generating) runs on one worker thread
owned by the backend. That single-worker executor is the lock: jobs run one at
a time in the order they were asked for, and a generation asked for while the
model is loading simply waits for the load. Generated pieces cross back into
the event loop with `call_soon_threadsafe`; a `threading.Event` per generation
lets the consumer stop the worker between two tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from loguru import logger

from .base import (
    Backend,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    check_json_output,
    check_messages,
)
from .models import DEFAULT_MODEL, ModelSpec, ensure_model, resolve_model_path
from .prompt_cache import PromptCache, Stopped

_END = object()


class EmbeddedBackend(Backend):
    """A GGUF model run by llama.cpp inside this process."""

    name = "embedded"

    def __init__(
        self,
        models_dir: Path,
        *,
        model_path: str | Path | None = None,
        spec: ModelSpec = DEFAULT_MODEL,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        state_dir: Path | None = None,
    ):
        self.models_dir = Path(models_dir)
        self.state_dir = Path(state_dir) if state_dir else None  # where prompt states outlive a restart
        self.model_path = Path(model_path) if model_path else None
        self.spec = spec
        self.model = self.model_path.stem if self.model_path else spec.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.load_seconds: float | None = None
        self._status = BackendStatus("idle", "The model has not been loaded yet")
        self._llama = None  # the chat's context (also the tokenizer)
        self._chat: PromptCache | None = None
        self._decoder: PromptCache | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="theseus-llm")
        self._loaded: Future | None = None
        self._running: set[threading.Event] = set()
        self._asked = 0  # jobs asked for by a caller who waits: a read-ahead gives way to each new one
        self._closed = False

    async def start(self) -> None:
        """Begin assembling and loading the model on the worker thread; return at once."""
        if self._closed:
            raise BackendUnavailable("The embedded model was closed")
        if self._loaded is None or (self._loaded.done() and self._status.state == "error"):
            self._status = BackendStatus("loading", f"Starting {self.model}", 0.0)
            self._loaded = self._worker.submit(self._load)

    def status(self) -> BackendStatus:
        """Return idle / assembling / loading / ready / error, with progress."""
        return self._status

    async def wait_ready(self, timeout: float) -> None:
        """Wait for the model to load; raise BackendUnavailable on failure or timeout."""
        await self.start()
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._loaded)), timeout)
        except TimeoutError:
            detail = self._status.detail
            raise BackendUnavailable(f"The model is not ready after {timeout:g} s ({detail})") from None
        if not self._status.ready:
            raise BackendUnavailable(self._status.detail)

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        cancel: asyncio.Event | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> AsyncIterator[str]:
        """Yield reply pieces as llama.cpp generates them; stop within a token (or a read chunk) of cancel."""
        check_messages(messages)
        await self.start()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        emit = _emitter(loop, queue, stop)
        relay = asyncio.ensure_future(_relay_cancel(cancel, stop, queue)) if cancel else None
        self._asked += 1
        job = self._worker.submit(self._generate, messages, max_tokens, temperature, stop, emit,
                                  _in_loop(loop, on_progress))
        self._running.add(stop)
        try:
            while (item := await queue.get()) is not _END:
                if cancel is not None and cancel.is_set():
                    return
                if isinstance(item, BaseException):
                    raise _backend_error(item) from item
                yield item
        finally:
            stop.set()
            job.cancel()
            self._running.discard(stop)
            if relay is not None:
                relay.cancel()

    async def complete_json(
        self, messages: list[dict], schema: dict, *, max_tokens: int = 256, temperature: float = 0.0,
        on_progress: Callable[[float], None] | None = None, stop_when: Callable[[str], bool] | None = None,
    ) -> str:
        """Return JSON text decoded under a llama.cpp grammar built from the schema."""
        check_messages(messages)
        await self.start()
        self._asked += 1
        job = self._worker.submit(self._complete_json, messages, schema, max_tokens, temperature,
                                  _in_loop(asyncio.get_running_loop(), on_progress), stop_when)
        try:
            return await asyncio.wrap_future(job)
        except BackendError:
            raise
        except Exception as e:
            raise _backend_error(e) from e

    async def warm(self, messages: list[dict], role: str = "chat") -> None:
        """Read these messages into the chat's or the decoder's context, unless it holds them already; a
        stream or a decode asked for meanwhile goes first (the read stops within a chunk)."""
        check_messages(messages)
        await self.start()
        await asyncio.wrap_future(self._worker.submit(self._warm, messages, role, _Superseded(self)))

    def count_tokens(self, text: str) -> int:
        """Count tokens with the model's tokenizer once loaded, else estimate."""
        if self._llama is None:
            return super().count_tokens(text)
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def list_models(self) -> list[str]:
        """Return the one model this backend runs."""
        return [self.model]

    async def close(self) -> None:
        """Stop running generations, free the model and the worker thread."""
        for stop in list(self._running):
            stop.set()
        self._asked += 1  # a read-ahead in progress stops
        if not self._closed:
            self._closed = True
            await asyncio.wrap_future(self._worker.submit(self._unload))
            self._worker.shutdown(wait=False, cancel_futures=True)
        self._status = BackendStatus("idle", "The model was unloaded")

    # --- worker-thread jobs -------------------------------------------------

    def _load(self) -> None:
        try:
            path = self._model_file()
            self._status = BackendStatus("loading", f"Loading {self.model}", None)
            started = time.perf_counter()
            self._llama = _load_llama(path, self.n_ctx, self.n_threads)
            self._chat = PromptCache(self._llama, "chat", self.state_dir, path)
            self._decoder = PromptCache(_load_llama(path, self.n_ctx, self.n_threads), "decoder", self.state_dir, path)
            warm = {cache.role: cache.restore() for cache in (self._chat, self._decoder)}
            self.load_seconds = time.perf_counter() - started
            detail = f"{self.model} loaded in {self.load_seconds:.1f} s"
            logger.info(f"llm: {detail}; saved prompt states read back: {warm} tokens")
            self._status = BackendStatus("ready", detail, 1.0)
        except Exception as e:  # any failure must end in "error", never a stuck "loading"
            self._status = BackendStatus("error", f"Could not load the model: {e}")

    def _model_file(self) -> Path:
        if self.model_path is not None:
            return resolve_model_path(self.model_path)
        return ensure_model(self.models_dir, self.spec, progress=self._progress)

    def _progress(self, phase: str, fraction: float) -> None:
        if self._closed:  # a server stopping while the model is assembled stops within a chunk, not after it
            raise BackendUnavailable(f"The embedded model was closed while {phase.lower()}")
        self._status = BackendStatus("assembling", f"{phase} {self.model}", fraction)

    def _generate(self, messages, max_tokens, temperature, stop, emit, progress) -> None:
        started, pieces, first = time.perf_counter(), 0, None
        try:
            if stop.is_set():
                return
            self._require_llama()
            cache = self._chat
            tokens = cache.tokens(messages)
            room = _room(cache, tokens, max_tokens)
            reading = cache.read(tokens, progress, stop)
            chunks = cache.llama.create_completion(prompt=tokens, max_tokens=room, temperature=temperature,
                                                   stream=True)
            try:
                for chunk in chunks:
                    if stop.is_set():
                        break
                    if piece := chunk["choices"][0]["text"]:
                        first = first or time.perf_counter() - started
                        pieces += 1
                        emit(piece)
            finally:
                chunks.close()
            _log_reading(cache, reading, first, pieces, time.perf_counter() - started)
            cache.save()
        except Stopped:
            pass
        except Exception as e:
            emit(e)
        finally:
            emit(_END)

    def _complete_json(self, messages, schema, max_tokens, temperature, progress, stop_when=None) -> str:
        started = time.perf_counter()
        self._require_llama()
        cache = self._decoder
        grammar = _grammar(schema, cache.llama)
        tokens = cache.tokens(messages)
        room = _room(cache, tokens, max_tokens)
        reading = cache.read(tokens, progress)
        stopped = []
        criteria = _stop_when(cache.llama, len(tokens), stop_when, stopped) if stop_when else None
        result = cache.llama.create_completion(prompt=tokens, max_tokens=room, temperature=temperature,
                                               grammar=grammar, stopping_criteria=criteria)
        choice = result["choices"][0]
        text = choice["text"] or ""
        _log_reading(cache, reading, None, result["usage"]["completion_tokens"], time.perf_counter() - started)
        cache.save()
        if stopped:
            return text
        return check_json_output(self, text, truncated=choice.get("finish_reason") == "length")

    def _warm(self, messages, role, superseded) -> None:
        self._require_llama()
        cache = {"chat": self._chat, "decoder": self._decoder}[role]
        tokens = cache.tokens(messages)
        if cache.holds(tokens) or superseded.is_set():
            return
        try:
            reading = cache.read(tokens, stop=superseded)
        except Stopped:
            logger.info(f"llm: {role} read-ahead gave way to a new request")
            return
        logger.info(f"llm: {role} read ahead {reading.new} new tokens ({reading.cached} cached) in "
                    f"{reading.seconds:.2f} s")
        cache.save()

    def reading(self, role: str):
        """What the last prompt of the chat or decoder context cost (a `Reading`), or None."""
        cache = {"chat": self._chat, "decoder": self._decoder}[role]
        return cache.last if cache else None

    def _require_llama(self):
        if self._llama is None:
            failed = self._status.state == "error"
            raise BackendUnavailable(self._status.detail if failed else "The model is not loaded")
        return self._llama

    def _unload(self) -> None:
        for cache in (self._chat, self._decoder):
            if cache is not None:
                cache.llama.close()
        self._llama = self._chat = self._decoder = None


def default_threads() -> int:
    """Threads for llama.cpp: the CPU count, at most 4 (leave room for the web server)."""
    return max(1, min(4, os.cpu_count() or 2))


def _load_llama(path: Path, n_ctx: int, n_threads: int):
    from llama_cpp import Llama  # imported on the worker thread: it takes a moment

    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)


def _room(cache: PromptCache, tokens: list[int], max_tokens: int) -> int:
    """max_tokens, or less where the window has less room left after the prompt."""
    room = cache.llama.n_ctx() - len(tokens)
    if room <= 0:
        raise BackendError(f"The prompt ({len(tokens):,} tokens) does not fit the model's context "
                           f"({cache.llama.n_ctx():,} tokens)")
    return min(max_tokens, room)


def _log_reading(cache: PromptCache, reading, first: float | None, generated: int, seconds: float) -> None:
    """One line per job: what the prompt cost, when the first piece came, how much was generated."""
    first_text = f"; first piece at {first:.2f} s" if first is not None else ""
    logger.info(f"llm: {cache.role} read {reading.new} new tokens ({reading.cached} cached) in "
                f"{reading.seconds:.2f} s{first_text}; {generated} generated; {seconds:.2f} s in all")


def _grammar(schema: dict, llama):
    """The llama.cpp grammar for a schema. A text pattern llama.cpp cannot read (e.g. `\\s` inside `[...]`)
    would crash the process while sampling, so each grammar is parsed once first; if it fails, the
    patterns are left out (the registry still checks every value against them) and a warning says so."""
    from llama_cpp import LlamaGrammar

    try:
        try:
            text = grammar_text(schema)
        except Exception:  # llama-cpp-python's converter asserts on what it cannot turn into GBNF ((?:...), ...)
            text = ""
        if not text or not _parses(text, llama):
            logger.warning("llm: llama.cpp cannot read a text pattern of this schema as a grammar; "
                           "decoding without the patterns (values are still checked against them)")
            text = grammar_text(without_patterns(schema))
            if not _parses(text, llama):
                raise ValueError("llama.cpp could not parse the grammar")
        return LlamaGrammar.from_string(text, verbose=False)
    except Exception as e:
        raise BackendError(f"Cannot turn this JSON schema into a grammar: {e}") from e


def _parses(text: str, llama) -> bool:
    """Whether llama.cpp can parse this grammar (it returns no sampler when it cannot)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, text.encode(), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def without_patterns(schema):
    """The schema with every `pattern` left out."""
    if isinstance(schema, dict):
        return {k: without_patterns(v) for k, v in schema.items() if k != "pattern"}
    if isinstance(schema, list):
        return [without_patterns(v) for v in schema]
    return schema


def grammar_text(schema: dict) -> str:
    """The GBNF grammar for a JSON schema, with string literals escaped correctly.

    llama-cpp-python's converter leaves backslashes unescaped, so an enum value holding a quote
    (a task called 'say "hi"') broke the grammar, and llama.cpp crashed the process while sampling.
    """
    from llama_cpp.llama_grammar import SchemaConverter

    class Converter(SchemaConverter):
        def _format_literal(self, literal: str) -> str:
            escapes = {"\\": "\\\\", "\r": "\\r", "\n": "\\n", '"': '\\"'}
            return '"' + "".join(escapes.get(c, c) for c in literal) + '"'

    converter = Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(json.loads(json.dumps(schema)), "stdin"), "")
    return converter.format_grammar()


class _Superseded:
    """Set (for a read-ahead) once a caller asked for another job after it."""

    def __init__(self, backend: EmbeddedBackend):
        self.backend, self.asked = backend, backend._asked

    def is_set(self) -> bool:
        return self.backend._asked != self.asked


def _stop_when(llama, prompt_length: int, stop_when: Callable[[str], bool], stopped: list):
    """llama.cpp stopping criteria: stop once `stop_when` says so of the text generated so far (noted in
    `stopped`)."""
    from llama_cpp import StoppingCriteriaList

    def check(input_ids, logits) -> bool:
        text = llama.detokenize(list(input_ids[prompt_length:])).decode("utf-8", errors="ignore")
        if stop_when(text):
            stopped.append(True)
            return True
        return False
    return StoppingCriteriaList([check])


def _in_loop(loop: asyncio.AbstractEventLoop, callback: Callable | None) -> Callable | None:
    """callback, called from the worker thread but run in the event loop (None stays None)."""
    if callback is None:
        return None

    def call(*args) -> None:
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop is gone
            pass

    return call


def _emitter(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, stop: threading.Event) -> Callable:
    def emit(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody is listening
            stop.set()

    return emit


async def _relay_cancel(cancel: asyncio.Event, stop: threading.Event, queue: asyncio.Queue) -> None:
    await cancel.wait()
    stop.set()
    queue.put_nowait(_END)


def _backend_error(error: BaseException) -> BackendError:
    if isinstance(error, BackendError):
        return error
    return BackendError(f"The embedded model failed: {error}")
