"""LLM backends for Chip: embedded llama.cpp, Ollama, any OpenAI-compatible server."""

from .base import Backend, BackendError, BackendStatus, BackendUnavailable, estimate_tokens
from .embedded import EmbeddedBackend
from .models import (
    CATALOG,
    DEFAULT_MODEL,
    ModelError,
    ModelIntegrityError,
    ModelMissingError,
    ModelSpec,
    ensure_model,
    resolve_model_path,
)
from .ollama import OllamaBackend
from .openai_compat import OpenAICompatBackend
from .spec import BackendSpec, make_backend, parse_spec

__all__ = [
    "Backend",
    "BackendError",
    "BackendSpec",
    "BackendStatus",
    "BackendUnavailable",
    "CATALOG",
    "DEFAULT_MODEL",
    "EmbeddedBackend",
    "ModelError",
    "ModelIntegrityError",
    "ModelMissingError",
    "ModelSpec",
    "OllamaBackend",
    "OpenAICompatBackend",
    "ensure_model",
    "estimate_tokens",
    "make_backend",
    "parse_spec",
    "resolve_model_path",
]
