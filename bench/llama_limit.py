"""The physical limit of a turn: the bare model, no app around it, reading and generating a job's tokens.

Used by bench/session.py, once its server and browser are gone, so the cores are free.
"""

from __future__ import annotations

import time
from pathlib import Path

from theseus.package_docs import doc_text

N_CTX = 4096  # the embedded backend's window (EmbeddedBackend's default)
FILLER = "crash-course.md"  # a file of the package's docs: real text for the cached prefix


class Limit:
    """The bare model, no app around it: what reading and generating a job's tokens costs."""

    def __init__(self, model_path: Path, threads: int):
        from llama_cpp import Llama

        self.llama = Llama(model_path=str(model_path), n_ctx=N_CTX, n_threads=threads, verbose=False)
        text = self.llama.tokenize(doc_text(FILLER).encode(), add_bos=False)
        self.filler = (text * (N_CTX // len(text) + 1))[:N_CTX]  # the KV cache always holds a prefix of this
        self.measured: dict[tuple[int, int, int], float] = {}
        self.eval(64)  # the first evaluation allocates buffers: not part of any job
        self.llama.n_tokens = 0

    def eval(self, upto: int, one_by_one: bool = False) -> None:
        """Extend the KV cache with the filler up to position `upto`."""
        start = self.llama.n_tokens
        if one_by_one:
            for position in range(start, upto):
                self.llama.eval([self.filler[position]])
        elif upto > start:
            self.llama.eval(self.filler[start:upto])

    def job(self, cached: int, new: int, generated: int) -> float:
        """Seconds to read `new` tokens on top of `cached` ones, then generate `generated` one at a time."""
        generated = max(1, generated)
        cached = min(cached, N_CTX - 1 - generated)
        new = max(1, min(new, N_CTX - cached - generated))
        key = (cached, new, generated)
        if key not in self.measured:
            self.llama.n_tokens = min(self.llama.n_tokens, cached)  # eval drops the cache beyond this
            self.eval(cached)  # untimed: what the app found cached
            started = time.perf_counter()
            self.eval(cached + new)
            self.eval(cached + new + generated, one_by_one=True)
            self.measured[key] = time.perf_counter() - started
        return self.measured[key]

    def close(self) -> None:
        self.llama.close()
