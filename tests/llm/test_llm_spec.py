"""Backend specs (THESEUS_LLM) parse into the right backend, and bad ones say what is accepted."""

from pathlib import Path

import pytest

from theseus.config import Config
from theseus.llm import BackendSpec, EmbeddedBackend, OllamaBackend, OpenAICompatBackend, make_backend, parse_spec


@pytest.mark.parametrize(
    "text, expected",
    [
        ("embedded", BackendSpec("embedded")),
        ("  Embedded  ", BackendSpec("embedded")),
        ("embedded:", BackendSpec("embedded")),
        ("embedded:/models/my model.gguf", BackendSpec("embedded", "/models/my model.gguf")),
        ("embedded:~/m/Q.GGUF", BackendSpec("embedded", "~/m/Q.GGUF")),
        ("ollama:gemma3", BackendSpec("ollama", "gemma3", "http://127.0.0.1:11434")),
        ("ollama:gemma3:4b", BackendSpec("ollama", "gemma3:4b", "http://127.0.0.1:11434")),
        ("ollama:gemma3@http://gpu-box:11434/", BackendSpec("ollama", "gemma3", "http://gpu-box:11434")),
        ("ollama:qwen2.5:7b@https://example.test", BackendSpec("ollama", "qwen2.5:7b", "https://example.test")),
        ("openai:http://127.0.0.1:8080/v1#model", BackendSpec("openai", "model", "http://127.0.0.1:8080/v1")),
        ("openai:http://127.0.0.1:8080/v1", BackendSpec("openai", "", "http://127.0.0.1:8080/v1")),
        ("openai:https://vllm.test/v1/#org/Model-7B", BackendSpec("openai", "org/Model-7B", "https://vllm.test/v1")),
    ],
)
def test_parse_spec(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "unknown backend"),
        ("llamafile", "unknown backend"),
        ("gpt4", "unknown backend"),
        ("embedded:/models/model.bin", ".gguf"),
        ("ollama", "model name"),
        ("ollama:", "model name"),
        ("ollama:@http://host:11434", "model name"),
        ("ollama:gemma3@host:11434", "not an http"),
        ("openai:", "not an http"),
        ("openai:127.0.0.1:8080/v1#m", "not an http"),
        ("openai:http://#m", "not an http"),
        ("openai:ftp://host/v1", "not an http"),
    ],
)
def test_bad_spec_lists_accepted_forms(text, problem):
    with pytest.raises(ValueError) as info:
        parse_spec(text)
    message = str(info.value)
    assert problem in message
    for form in ("embedded:/path/to/model.gguf", "ollama:MODEL@http://HOST:PORT", "openai:http://HOST:PORT/v1#MODEL"):
        assert form in message


@pytest.mark.parametrize(
    "llm, backend_type, model",
    [
        ("embedded", EmbeddedBackend, "qwen2.5-coder-0.5b-instruct"),
        ("embedded:/somewhere/tiny.gguf", EmbeddedBackend, "tiny"),
        ("ollama:gemma3", OllamaBackend, "gemma3"),
        ("openai:http://127.0.0.1:8080/v1#m", OpenAICompatBackend, "m"),
    ],
)
def test_make_backend(tmp_path, llm, backend_type, model):
    backend = make_backend(Config(data_dir=tmp_path, llm=llm))
    assert type(backend) is backend_type
    assert backend.model == model
    assert backend.status().state == "idle"


def test_embedded_backend_uses_config_model_dir(tmp_path):
    backend = make_backend(Config(data_dir=tmp_path, llm="embedded", models_dir=tmp_path / "m"))
    assert backend.models_dir == Path(tmp_path / "m")
