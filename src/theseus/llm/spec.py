"""Backend specs (THESEUS_LLM): which backend, which model, where."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from .base import Backend
from .embedded import EmbeddedBackend
from .ollama import DEFAULT_OLLAMA_URL, OllamaBackend
from .openai_compat import OpenAICompatBackend

SPEC_FORMS = """\
  embedded                              the built-in model (assembled on first start)
  embedded:/path/to/model.gguf          your own GGUF file, run in-process
  ollama:MODEL                          Ollama on http://127.0.0.1:11434, e.g. ollama:gemma3
  ollama:MODEL@http://HOST:PORT         Ollama elsewhere, e.g. ollama:gemma3@http://gpu-box:11434
  openai:http://HOST:PORT/v1            an OpenAI-compatible server, its first model
  openai:http://HOST:PORT/v1#MODEL      an OpenAI-compatible server, a named model"""


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend spec: kind is embedded, ollama or openai."""

    kind: str
    model: str = ""  # embedded: a .gguf path or "" for the default model
    url: str = ""


def parse_spec(text: str) -> BackendSpec:
    """Parse a THESEUS_LLM value; raise ValueError listing the accepted forms."""
    kind, _, rest = text.strip().partition(":")
    kind, rest = kind.lower(), rest.strip()
    if kind == "embedded":
        return _embedded(text, rest)
    if kind == "ollama":
        return _ollama(text, rest)
    if kind == "openai":
        return _openai(text, rest)
    raise _bad(text, f"unknown backend {kind!r}")


def make_backend(config: Config) -> Backend:
    """Build the backend that config.llm names (not started yet)."""
    spec = parse_spec(config.llm)
    if spec.kind == "embedded":
        return EmbeddedBackend(config.model_dir, model_path=spec.model or None, state_dir=config.data_dir / "states")
    if spec.kind == "ollama":
        return OllamaBackend(spec.model, spec.url)
    return OpenAICompatBackend(spec.url, spec.model, api_key=config.extra.get("llm_api_key"))


def _embedded(text: str, path: str) -> BackendSpec:
    if path and not path.lower().endswith(".gguf"):
        raise _bad(text, "an embedded model must be a path to a .gguf file")
    return BackendSpec("embedded", path)


def _ollama(text: str, rest: str) -> BackendSpec:
    model, _, url = rest.partition("@")
    if not model.strip():
        raise _bad(text, "ollama needs a model name")
    url = url.strip() or DEFAULT_OLLAMA_URL
    _check_url(text, url)
    return BackendSpec("ollama", model.strip(), url.rstrip("/"))


def _openai(text: str, rest: str) -> BackendSpec:
    url, _, model = rest.partition("#")
    _check_url(text, url.strip())
    return BackendSpec("openai", model.strip(), url.strip().rstrip("/"))


def _check_url(text: str, url: str) -> None:
    scheme, sep, host = url.partition("://")
    if scheme not in ("http", "https") or not sep or not host.strip("/"):
        raise _bad(text, f"{url!r} is not an http:// or https:// URL")


def _bad(text: str, problem: str) -> ValueError:
    return ValueError(f"Bad LLM backend spec {text!r}: {problem}. Accepted forms:\n{SPEC_FORMS}")
