"""The OpenAI-compatible backend against a real llama.cpp server (python -m llama_cpp.server),
and its error handling against small real HTTP servers."""

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from theseus.llm import BackendError, BackendUnavailable, OpenAICompatBackend
from tests.waits import wait_until

SCHEMA = {"type": "object", "properties": {"op": {"enum": ["add", "none"]}}, "required": ["op"]}
COUNTING = [{"role": "user", "content": "Count from 1 to 100 in digits, separated by commas."}]
ALIAS = "chip-test"


@pytest.fixture(scope="module")
def llama_server(real_model, unused_port, tmp_path_factory):
    """A llama.cpp OpenAI-compatible server on a free loopback port; yields its /v1 URL."""
    port = unused_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(real_model), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_for_models(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_models(base_url, process, log, timeout=90):
    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{base_url}/models", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, f"llama_cpp.server to answer (its log: {log})", timeout, 0.2)


@pytest.mark.model
def test_lists_and_picks_the_servers_model(llama_server):
    async def scenario():
        backend = OpenAICompatBackend(llama_server)
        assert await backend.list_models() == [ALIAS]
        await backend.wait_ready(10)
        assert backend.status().ready and backend.model == ALIAS
        await backend.close()

    asyncio.run(scenario())


@pytest.mark.model
def test_streams_text(llama_server):
    async def scenario():
        backend = OpenAICompatBackend(llama_server, ALIAS)
        pieces = [p async for p in backend.stream_chat(COUNTING, max_tokens=30, temperature=0)]
        await backend.close()
        return pieces

    pieces = asyncio.run(scenario())
    assert len(pieces) >= 5 and all(pieces)
    assert any(c.isdigit() for c in "".join(pieces))


@pytest.mark.model
def test_cancel_stops_the_stream(llama_server):
    async def scenario():
        backend = OpenAICompatBackend(llama_server, ALIAS)
        cancel = asyncio.Event()
        pieces = []
        async for piece in backend.stream_chat(COUNTING, max_tokens=300, temperature=0, cancel=cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.set()
        await backend.close()
        return pieces

    assert len(asyncio.run(scenario())) == 3


@pytest.mark.model
def test_complete_json_is_valid(llama_server):
    messages = [
        {"role": "system", "content": 'Turn the request into a command. "add" adds a task, "none" does nothing.'},
        {"role": "user", "content": "Please add a task: buy milk."},
    ]

    async def scenario():
        backend = OpenAICompatBackend(llama_server, ALIAS)
        text = await backend.complete_json(messages, SCHEMA)
        await backend.close()
        return text

    data = json.loads(asyncio.run(scenario()))
    assert data["op"] in ("add", "none") and set(data) <= {"op"}


# --- error handling against small scripted servers -------------------------------------


def scripted_server(requests: list) -> Starlette:
    """An OpenAI-like server: model "garbage" streams a broken line, json_schema is refused."""

    async def chat(request: Request):
        body = await request.json()
        requests.append(body)
        if body.get("stream"):
            return StreamingResponse(_events(body["model"]), media_type="text/event-stream")
        if body["response_format"]["type"] == "json_schema":
            return JSONResponse({"detail": [{"msg": "Input should be 'text' or 'json_object'"}]}, status_code=422)
        message = {"role": "assistant", "content": '{"op": "none"}'}
        return JSONResponse({"choices": [{"message": message, "finish_reason": "stop"}]})

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "m1"}, {"id": "m2"}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


async def _events(model: str):
    yield ": keep-alive comment\n\n"
    yield 'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n'
    yield 'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n'
    if model == "garbage":
        yield "data: {not json\n\n"
    yield 'data: {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]}\n\n'
    if model != "truncated":
        yield "data: [DONE]\n\n"


async def collect(backend, **kwargs):
    return [p async for p in backend.stream_chat([{"role": "user", "content": "hi"}], **kwargs)]


def test_sse_stream_and_json_object_fallback(serve_asgi):
    requests = []

    async def scenario(url):
        backend = OpenAICompatBackend(url, "m2", api_key="sk-test")
        assert await collect(backend) == ["Hel", "lo"]
        assert await backend.complete_json([{"role": "user", "content": "x"}], SCHEMA) == '{"op": "none"}'
        assert await backend.complete_json([{"role": "user", "content": "y"}], SCHEMA) == '{"op": "none"}'
        await backend.close()

    with serve_asgi(scripted_server(requests)) as url:
        asyncio.run(scenario(f"{url}/v1"))
    formats = [r["response_format"]["type"] for r in requests if not r.get("stream")]
    assert formats == ["json_schema", "json_object", "json_object"]  # json_schema is not retried
    assert requests[-1]["response_format"]["schema"] == SCHEMA


@pytest.mark.parametrize("model, message", [("garbage", "not JSON"), ("truncated", "before \\[DONE\\]")])
def test_broken_streams_are_backend_errors(serve_asgi, model, message):
    async def scenario(url):
        backend = OpenAICompatBackend(url, model)
        try:
            with pytest.raises(BackendError, match=message):
                await collect(backend)
        finally:
            await backend.close()

    with serve_asgi(scripted_server([])) as url:
        asyncio.run(scenario(f"{url}/v1"))


def test_unknown_model_and_refused_connection(serve_asgi, unused_port):
    async def scenario(url):
        backend = OpenAICompatBackend(url, "nope")
        await backend.start()
        assert backend.status().state == "error" and "m1, m2" in backend.status().detail
        await backend.close()
        down = OpenAICompatBackend(f"http://127.0.0.1:{unused_port()}/v1", "m1")
        with pytest.raises(BackendUnavailable, match="Cannot connect"):
            await collect(down)
        await down.start()
        assert down.status().state == "unreachable"
        await down.close()

    with serve_asgi(scripted_server([])) as url:
        asyncio.run(scenario(f"{url}/v1"))
