"""The embedded backend with the real model: streams, stops on cancel, decodes JSON,
counts tokens with the model's tokenizer, and never blocks the event loop."""

import asyncio
import itertools
import json

import pytest

from theseus.llm import BackendError, BackendUnavailable, EmbeddedBackend
from theseus.package_docs import doc_text

SCHEMA = {"type": "object", "properties": {"op": {"enum": ["add", "none"]}}, "required": ["op"]}
STORY = [
    {"role": "system", "content": "You are Chip, a helpful assistant."},
    {"role": "user", "content": "Tell me a long story about a lighthouse keeper."},
]
COUNTING = [{"role": "user", "content": "Count from 1 to 100 in digits, separated by commas."}]


@pytest.fixture(scope="module")
def backend(real_model, shared_models_dir):
    """One loaded model for this module; each test drives it from its own event loop."""
    backend = EmbeddedBackend(shared_models_dir, n_ctx=2048)
    asyncio.run(backend.wait_ready(120))
    yield backend
    asyncio.run(backend.close())


ARRIVALS = itertools.count()  # the order in which pieces reach their consumers, across streams


async def collect(stream) -> list[tuple[int, str]]:
    return [(next(ARRIVALS), piece) async for piece in stream]


@pytest.mark.model
def test_loads_in_the_background(shared_models_dir, real_model):
    async def scenario():
        backend = EmbeddedBackend(shared_models_dir)
        assert backend.count_tokens("hello world") == 4  # estimate until the tokenizer is there
        await backend.start()  # returns at once: the model loads in the background
        assert backend.status().state in ("assembling", "loading")
        await backend.wait_ready(120)
        assert backend.status().ready and backend.load_seconds > 0
        assert await backend.list_models() == ["qwen2.5-coder-0.5b-instruct"]
        await backend.close()
        assert backend.status().state == "idle"
        with pytest.raises(BackendUnavailable):
            await backend.start()

    asyncio.run(scenario())


@pytest.mark.model
def test_streams_pieces(backend):
    messages = [{"role": "user", "content": "Name three colors, one per line."}]
    pieces = [p for _, p in asyncio.run(collect(backend.stream_chat(messages, max_tokens=40, temperature=0)))]
    assert len(pieces) >= 3
    assert all(pieces)
    assert "".join(pieces).strip()


def count_pieces_drawn(backend) -> list[int]:
    """Count, per generation, the pieces the worker draws from llama.cpp: the work a cancel must cut short."""
    llama, drawn = backend._llama, []
    original = llama.create_completion

    def counting(*args, **kwargs):
        drawn.append(0)
        index = len(drawn) - 1
        for chunk in original(*args, **kwargs):
            drawn[index] += 1
            yield chunk

    llama.create_completion = counting
    return drawn


@pytest.mark.model
def test_cancel_stops_promptly_and_frees_the_model(backend):
    drawn = count_pieces_drawn(backend)

    async def scenario():
        cancel = asyncio.Event()
        pieces = []
        async for piece in backend.stream_chat(COUNTING, max_tokens=400, temperature=0, cancel=cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.set()
        assert len(pieces) == 3
        # the worker stopped within a token or two, so the next generation starts at once
        stream = backend.stream_chat([{"role": "user", "content": "Say hi."}], max_tokens=5)
        await anext(stream)
        await stream.aclose()

    try:
        asyncio.run(scenario())
    finally:
        del backend._llama.create_completion
    # 3 pieces and the few the worker ran ahead before the cancel reached it, not the 400 asked for
    assert len(drawn) == 2 and drawn[0] <= 20, drawn


@pytest.mark.model
def test_cancel_while_waiting_for_another_generation(backend):
    async def scenario():
        first = backend.stream_chat(COUNTING, max_tokens=60, temperature=0)
        await anext(first)
        cancel = asyncio.Event()
        cancel.set()
        assert await collect(backend.stream_chat(STORY, cancel=cancel)) == []
        await first.aclose()

    asyncio.run(scenario())


@pytest.mark.model
def test_one_generation_at_a_time(backend):
    async def scenario():
        messages = [{"role": "user", "content": "Count from one to ten in words."}]
        a, b = await asyncio.gather(
            collect(backend.stream_chat(messages, max_tokens=24, temperature=0)),
            collect(backend.stream_chat(messages, max_tokens=24, temperature=0)),
        )
        assert a and b
        assert a[-1][0] < b[0][0]  # the second waited for the first
        assert "".join(p for _, p in a) == "".join(p for _, p in b)

    asyncio.run(scenario())


@pytest.mark.model
def test_event_loop_stays_responsive(backend):
    """The model runs in a worker thread: other coroutines keep running between the pieces it streams."""
    async def scenario():
        timeline = []

        async def ticker():
            while True:
                await asyncio.sleep(0.005)
                timeline.append("tick")

        tick = asyncio.create_task(ticker())
        async for _ in backend.stream_chat(COUNTING, max_tokens=60, temperature=0):
            timeline.append("piece")
        tick.cancel()
        return timeline

    timeline = asyncio.run(scenario())
    pieces = timeline.count("piece")
    assert pieces > 10
    # a generation that blocked the loop would deliver its pieces back to back, with no tick between them
    first, last = timeline.index("piece"), len(timeline) - timeline[::-1].index("piece")
    gaps_with_a_tick = "".join("t" if t == "tick" else "p" for t in timeline[first:last]).split("p")
    assert sum(1 for gap in gaps_with_a_tick if gap) >= (pieces - 1) // 2, timeline


@pytest.mark.model
def test_complete_json_follows_the_schema(backend):
    messages = [
        {"role": "system", "content": 'Turn the request into a command. "add" adds a task, "none" does nothing.'},
        {"role": "user", "content": "Please add a task: buy milk."},
    ]
    text = asyncio.run(backend.complete_json(messages, SCHEMA))
    data = json.loads(text)
    assert isinstance(data, dict) and data["op"] in ("add", "none")
    assert set(data) <= {"op"}


@pytest.mark.model
def test_complete_json_cut_off_by_max_tokens_is_an_error(backend):
    schema = {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]}
    with pytest.raises(BackendError, match="max_tokens"):
        asyncio.run(backend.complete_json(STORY, schema, max_tokens=5, temperature=0.7))


@pytest.mark.model
def test_count_tokens_uses_the_tokenizer(backend):
    assert backend.count_tokens("hello world") == 2
    assert backend.count_tokens("") == 0
    assert 0 < backend.count_tokens("Chip rides along with the user.") < 12


@pytest.mark.model
def test_prompt_longer_than_context_is_a_clear_error(backend):
    messages = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(BackendError, match="context"):
        asyncio.run(collect(backend.stream_chat(messages)))


def test_not_a_gguf_ends_in_error_status(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")

    async def scenario():
        backend = EmbeddedBackend(tmp_path, model_path=fake)
        with pytest.raises(BackendUnavailable, match="not a GGUF"):
            await backend.wait_ready(30)
        assert backend.status().state == "error"
        with pytest.raises(BackendUnavailable, match="not a GGUF"):
            await collect(backend.stream_chat([{"role": "user", "content": "hi"}]))
        await backend.close()

    asyncio.run(scenario())


def test_bad_messages_are_refused(tmp_path):
    backend = EmbeddedBackend(tmp_path)
    with pytest.raises(BackendError, match="role"):
        asyncio.run(collect(backend.stream_chat([{"role": "robot", "content": "hi"}])))
    assert backend.status().state == "idle"  # refused before anything was loaded


@pytest.mark.model
def test_a_saved_prompt_state_makes_the_first_prompt_after_a_restart_warm(real_model, shared_models_dir, tmp_path):
    """Each context's state is saved after a job and read back at the next start: only new tokens are read."""
    system = {"role": "system", "content": doc_text("crash-course.md")}
    first_turn = [system, {"role": "user", "content": "Say hi."}]

    async def reply(backend, messages):
        return "".join([piece async for piece in backend.stream_chat(messages, max_tokens=8, temperature=0)])

    async def scenario():
        before = EmbeddedBackend(shared_models_dir, state_dir=tmp_path)
        said = await reply(before, first_turn)
        cold = before.reading("chat")
        await before.close()
        after = EmbeddedBackend(shared_models_dir, state_dir=tmp_path)
        await after.warm(first_turn)  # what it holds already is not read again
        assert after.reading("chat") is None
        await reply(after, first_turn + [{"role": "assistant", "content": said}, {"role": "user", "content": "Bye."}])
        warm = after.reading("chat")
        await after.close()
        return cold, warm

    cold, warm = asyncio.run(scenario())
    assert cold.cached == 0 and cold.new > 400  # the crash course, read once
    assert warm.cached >= cold.new and warm.new < 30  # after the restart: only the new turn
    assert [p.name.split(".", 1)[1] for p in sorted(tmp_path.iterdir())] == ["chat.kv"]


@pytest.mark.model
def test_a_damaged_saved_state_is_read_afresh(real_model, shared_models_dir, tmp_path):
    async def scenario():
        backend = EmbeddedBackend(shared_models_dir, state_dir=tmp_path)
        await backend.wait_ready(60)
        path = backend._chat.state_path
        await backend.close()
        path.write_bytes(b"not a llama state")
        backend = EmbeddedBackend(shared_models_dir, state_dir=tmp_path)
        pieces = [p async for p in backend.stream_chat([{"role": "user", "content": "Say hi."}], max_tokens=4)]
        reading = backend.reading("chat")
        await backend.close()
        return pieces, reading

    pieces, reading = asyncio.run(scenario())
    assert pieces and reading.cached == 0
