"""The Ollama backend over real HTTP, against a small server that speaks Ollama's
NDJSON protocol (Ollama itself cannot be installed here)."""

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from theseus.llm import BackendError, BackendUnavailable, OllamaBackend

SCHEMA = {"type": "object", "properties": {"op": {"enum": ["add", "none"]}}, "required": ["op"]}
HI = [{"role": "user", "content": "say the words one two three"}]


def ollama_server(requests: list) -> Starlette:
    """Replies with the words after "say the words"; some model names misbehave on purpose."""

    async def tags(request: Request):
        models = [{"name": "gemma3:latest"}, {"name": "qwen2.5:7b"}, {"name": "slow:latest"}, {"name": "garbage:latest"}]
        return JSONResponse({"models": models})

    async def chat(request: Request):
        body = await request.json()
        requests.append(body)
        model = body["model"]
        if model == "missing":
            return JSONResponse({"error": "model 'missing' not found, try pulling it first"}, status_code=404)
        if model == "broken":
            return JSONResponse({"error": "llama runner process has terminated"}, status_code=500)
        if model in ("trickle", "flood") and not body.get("stream", True):
            return StreamingResponse(_endless(model), media_type="application/json")
        if not body.get("stream", True):
            content = json.dumps({"op": "add"}) if body.get("format") else "prose"
            reason = "length" if body["options"]["num_predict"] < 3 else "stop"
            return JSONResponse({"message": {"role": "assistant", "content": content}, "done": True, "done_reason": reason})
        return StreamingResponse(_lines(model, body), media_type="application/x-ndjson")

    return Starlette(routes=[Route("/api/tags", tags), Route("/api/chat", chat, methods=["POST"])])


async def _endless(model: str):
    """An answer that never ends: a byte now and then ("trickle"), or more than any reply needs ("flood")."""
    if model == "flood":
        for _ in range(9):
            yield b" " * (1024 * 1024)
        return
    for _ in range(2000):
        yield b" "
        await asyncio.sleep(0.05)


async def _lines(model: str, body: dict):
    words = body["messages"][-1]["content"].removeprefix("say the words ").split()
    if model == "stall":
        await asyncio.sleep(30)
    if model == "slow":
        words = [f"w{i}" for i in range(200)]
    for i, word in enumerate(words):
        if model == "garbage" and i == 1:
            yield "this is not json\n"
        if model == "midstream" and i == 1:
            yield json.dumps({"error": "out of memory"}) + "\n"
        piece = word if i == 0 else " " + word
        yield json.dumps({"model": model, "message": {"role": "assistant", "content": piece}, "done": False}) + "\n"
        if model == "slow":
            await asyncio.sleep(0.05)
    if model != "truncated":
        yield json.dumps({"model": model, "message": {"role": "assistant", "content": ""}, "done": True}) + "\n\n"


@pytest.fixture(scope="module")
def ollama(serve_asgi):
    """(base URL, list of request bodies the server received)."""
    requests: list = []
    with serve_asgi(ollama_server(requests)) as url:
        yield url, requests


async def collect(backend, messages=HI, **kwargs):
    return [p async for p in backend.stream_chat(messages, **kwargs)]


def run_with(url, model, scenario, **kwargs):
    async def main():
        backend = OllamaBackend(model, url, **kwargs)
        try:
            return await scenario(backend)
        finally:
            await backend.close()

    return asyncio.run(main())


def test_streams_pieces_and_sends_ollama_options(ollama):
    url, requests = ollama
    pieces = run_with(url, "gemma3", lambda b: collect(b, max_tokens=33, temperature=0.2), keep_alive="1h")
    assert pieces == ["one", " two", " three"]
    body = requests[-1]
    assert body["stream"] is True and body["keep_alive"] == "1h" and body["model"] == "gemma3"
    assert body["options"] == {"temperature": 0.2, "num_predict": 33}
    assert body["messages"] == HI


def test_complete_json_sends_the_schema_as_format(ollama):
    url, requests = ollama
    text = run_with(url, "gemma3", lambda b: b.complete_json(HI, SCHEMA))
    assert json.loads(text) == {"op": "add"}
    assert requests[-1]["format"] == SCHEMA and requests[-1]["stream"] is False
    assert requests[-1]["options"]["temperature"] == 0.0


def test_complete_json_cut_off_is_an_error(ollama):
    url, _ = ollama
    with pytest.raises(BackendError, match="max_tokens"):
        run_with(url, "gemma3", lambda b: b.complete_json(HI, SCHEMA, max_tokens=2))


def test_probe_and_list_models(ollama):
    url, _ = ollama

    async def probe(backend):
        assert "qwen2.5:7b" in await backend.list_models()
        await backend.wait_ready(5)
        return backend.status()

    assert run_with(url, "gemma3", probe).ready  # a bare name means :latest
    assert run_with(url, "qwen2.5:7b", probe).ready

    async def not_pulled(backend):
        await backend.start()
        return backend.status()

    status = run_with(url, "llama3", not_pulled)
    assert status.state == "error" and "ollama pull llama3" in status.detail
    with pytest.raises(BackendUnavailable, match="ollama pull llama3"):
        run_with(url, "llama3", lambda b: b.wait_ready(0.5))


def test_cancel_stops_promptly(ollama):
    url, _ = ollama

    async def scenario(backend):
        cancel = asyncio.Event()
        pieces = []
        stream = backend.stream_chat(HI, cancel=cancel)
        pieces.append(await anext(stream))
        asyncio.get_running_loop().call_later(0.02, cancel.set)  # lands while a read is pending
        pieces += [p async for p in stream]
        return pieces

    pieces = run_with(url, "slow", scenario)
    assert 1 <= len(pieces) <= 3  # of the 200 the slow model would send


@pytest.mark.parametrize(
    "model, error, message",
    [
        ("garbage", BackendError, "not JSON"),
        ("midstream", BackendError, "out of memory"),
        ("truncated", BackendError, "before it was done"),
        ("broken", BackendError, "HTTP 500: llama runner process has terminated"),
        ("missing", BackendUnavailable, "HTTP 404: model 'missing' not found"),
    ],
)
def test_bad_replies_are_clear_errors(ollama, model, error, message):
    url, _ = ollama
    with pytest.raises(error, match=message):
        run_with(url, model, collect)


@pytest.mark.parametrize("model, message", [("trickle", "did not answer in time"), ("flood", "more than 8 MiB")])
def test_a_command_answer_that_never_ends_is_cut(ollama, model, message):
    url, _ = ollama
    with pytest.raises(BackendError, match=message):
        run_with(url, model, lambda backend: backend.complete_json(HI, SCHEMA), first_token_timeout=0.5)


def test_first_token_timeout(ollama):
    url, _ = ollama  # the stalling model would answer after 30 s: only the timeout can raise this
    with pytest.raises(BackendUnavailable, match="stopped answering"):
        run_with(url, "stall", collect, first_token_timeout=0.5)


def test_connection_refused_is_unavailable_quickly(unused_port):
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(BackendUnavailable, match="Cannot connect to ollama"):
        run_with(url, "gemma3", collect)
    with pytest.raises(BackendUnavailable, match="Cannot connect"):
        run_with(url, "gemma3", lambda b: b.complete_json(HI, SCHEMA))
    with pytest.raises(BackendUnavailable, match="Cannot connect"):
        run_with(url, "gemma3", lambda b: b.wait_ready(1))

    async def probe(backend):
        await backend.start()
        return backend.status()

    assert run_with(url, "gemma3", probe).state == "unreachable"


def test_a_host_that_never_answers_is_unavailable_after_the_connect_timeout(unanswered_port):
    with pytest.raises(BackendUnavailable):
        run_with(f"http://127.0.0.1:{unanswered_port}", "gemma3", collect, connect_timeout=0.5)
