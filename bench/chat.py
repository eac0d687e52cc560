"""Chat benchmark: time to first token and tokens/s, straight from the model vs through the app to a WebSocket.

Run by hand (not a test):
    .venv/bin/python bench/chat.py [--rounds 5] [--tokens 128] [--mode auto|chat] [--budget 120]

Same prompt, same model, same run. (a) raw: the embedded backend's
stream_chat, called directly with exactly the messages the chat would send
(build_context on a scratch conversation holding the same user message).
(b) app: the real app under uvicorn on 127.0.0.1 (a thread of this process,
sharing the loaded model), a real WebSocket client on /chat/ws sending
{"action": "send", "message": ...} as htmx's ws extension does. In Chip's
default mode (auto) a decoder call (complete_json) first decides whether the
message asks for an action; --mode chat measures the bare streaming path.

TTFT is given twice: to the first piece (app: the first streamed body
fragment past the "…" placeholder) and to the first visible text (the
rendered markdown shows a character: a reply starting "# " renders an empty
heading first). Tokens/s is the tokenizer's count of the whole reply over the
span from the first piece to the end of the stream (app: to the fragment of
the stored message). The app's breakdown comes from timestamps the backend
notes (same clock, same process) and the CPU time of uvicorn's thread:
decide (the decoder's complete_json calls), other setup (storing the message,
building the context...), model TTFT (stream_chat to its first piece), to
client (first piece to first fragment received), to text (first fragment to
first visible text), to final (end of stream to the stored-message fragment).
"others" is how many cores other processes kept busy during a round (from
/proc/stat): on a 2-core machine llama.cpp uses both, so any outside load
slows it many times over; pairs above QUIET_CORES are left out of the medians.

The chat service passes neither max_tokens nor temperature, so both paths go
through FixedSettings, a thin EmbeddedBackend subclass that forces
temperature=0 and max_tokens=--tokens on every stream (the decoder's
complete_json keeps the app's settings). After one warm-up of each, rounds
alternate raw, app, raw, app... so drift affects both alike; each app round
starts a new conversation (POST /chat/new), so both contexts are equal
(checked). llama.cpp reuses the KV cache of a shared prompt prefix: in chat
mode both sides find the chat prompt cached; in auto mode the decoder's
prompt replaces it before every app reply, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from websockets.asyncio.client import connect

from cores import machine_busy  # bench/: run as a script, its folder is on sys.path
from theseus.app import create_app
from theseus.chat.context import build_context
from theseus.config import Config
from theseus.llm.embedded import EmbeddedBackend
from theseus.logs import setup_logging
from theseus.markup import render_markdown
from theseus.runtime import Runtime
from theseus.server import Server

ROOT = Path(__file__).resolve().parents[1]
PROMPT = ("Write a markdown guide to keeping a to-do list tidy: a heading, then a bulleted list of "
          "ten tips with one sentence each, then a short summary.")
TTFT_TARGET_MS, RATE_TARGET = 30.0, 0.97
QUIET_CORES = 0.1  # a pair of rounds during which other processes kept more cores busy is left out of the medians
# a streaming reply's body (placeholder "…" until text arrives), and the stored message that replaces it
STREAMED = re.compile(r'^<div(?=[^>]*\bid="message-s\d+-body")(?=[^>]*\bhx-swap-oob="true")[^>]*>(.*)</div>\s*$',
                      re.S)
FINAL = re.compile(r'<article(?=[^>]*\bhx-swap-oob="outerHTML:#message-s\d+")[^>]*\bid="message-(\d+)"')
TAG = re.compile(r"<[^>]+>")


@dataclass
class Trace:
    """One stream_chat call as the backend saw it (perf_counter seconds)."""

    messages: list[dict]
    called: float
    first: float | None = None
    end: float | None = None


class FixedSettings(EmbeddedBackend):
    """The embedded model with temperature 0 and max_tokens forced on every stream; notes when each call ran."""

    def __init__(self, models_dir: Path, tokens: int):
        super().__init__(models_dir)
        self.tokens = tokens
        self.traces: list[Trace] = []
        self.decisions: list[tuple[float, float]] = []  # (start, end) of each complete_json: the chat's decoder

    async def complete_json(self, messages, schema, *, max_tokens=256, temperature=0.0, on_progress=None) -> str:
        started = time.perf_counter()
        try:
            return await super().complete_json(messages, schema, max_tokens=max_tokens, temperature=temperature,
                                               on_progress=on_progress)
        finally:
            self.decisions.append((started, time.perf_counter()))

    async def stream_chat(self, messages, *, max_tokens=512, temperature=0.7, cancel=None, on_progress=None):
        trace = Trace([dict(m) for m in messages], time.perf_counter())
        self.traces.append(trace)
        async for piece in super().stream_chat(messages, max_tokens=self.tokens, temperature=0.0, cancel=cancel,
                                               on_progress=on_progress):
            trace.first = trace.first or time.perf_counter()
            yield piece
        trace.end = time.perf_counter()


@dataclass
class Round:
    """One measured reply: when its first piece and first visible text came, its tokens and their span."""

    side: str
    ttft: float  # seconds from the request to the first piece (app: the first streamed body fragment)
    shown: float  # seconds from the request to the first piece that makes visible text (markdown rendered)
    span: float  # seconds from the first piece to the complete reply
    tokens: int
    text: str
    parts: dict[str, float] = field(default_factory=dict)  # app only: where its time went (ms)
    frames: int = 0
    others: float = 0.0  # cores busy with other processes during the round (noise on a small machine)

    @property
    def rate(self) -> float:
        return self.tokens / self.span if self.span > 0 else float("nan")


def visible(html: str) -> bool:
    """True if this HTML shows some text (an empty heading or code block does not)."""
    return TAG.sub("", html).strip() not in ("", "…")


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds so far of the whole machine (nan off Linux) and of this process."""
    return machine_busy(), sum(os.times()[:2])


def thread_cpu(native_id: int) -> float:
    """CPU seconds one thread of this process has used (nan off Linux)."""
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """uvicorn serving the real app in a background thread of this process."""

    def __init__(self, config: Config, runtime: Runtime):
        self.runtime = runtime
        self.app = create_app(config, runtime)
        self.server = Server(uvicorn.Config(self.app, host=config.host, port=config.port, log_level="warning",
                                            access_log=False, timeout_graceful_shutdown=1), self.app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.runtime.end_streams()
        self.server.should_exit = True
        self.thread.join(15)


async def raw_round(backend: FixedSettings, messages: list[dict]) -> Round:
    """Stream straight from the backend: first piece, first visible text, end of stream."""
    text, first, shown = "", None, None
    started = time.perf_counter()
    async for piece in backend.stream_chat(messages):
        now = time.perf_counter()
        text, first = text + piece, first or now
        if shown is None and visible(render_markdown(text)):
            shown = now
    ended = time.perf_counter()
    return Round("raw", first - started, shown - started, ended - first, backend.count_tokens(text), text)


async def new_conversation(client: httpx.AsyncClient, ws) -> None:
    """POST /chat/new (retrying while the last turn winds down), then drain the fragments it broadcasts."""
    for _ in range(100):
        response = await client.post("/chat/new")
        if response.status_code != 409:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 200, (response.status_code, response.text[:200])
    while 'id="chat-log"' not in await ws.recv():
        pass


async def app_round(server: LiveServer, backend: FixedSettings, client: httpx.AsyncClient, ws) -> Round:
    """Send the prompt over the WebSocket; time the first streamed fragments and the final stored message."""
    await new_conversation(client, ws)
    calls, decisions, cpu = len(backend.traces), len(backend.decisions), thread_cpu(server.thread.native_id)
    first, shown, frames = None, None, 0
    sent = time.perf_counter()
    await ws.send(json.dumps({"action": "send", "message": PROMPT}))
    while not (final := FINAL.search(frame := await asyncio.wait_for(ws.recv(), 120))):
        received = time.perf_counter()
        if 'class="chat-notice' in frame:
            raise RuntimeError(f"the app showed a notice: {TAG.sub('', frame).strip()[:200]}")
        if streamed := STREAMED.match(frame):
            first, frames = first or received, frames + 1
            shown = shown or (received if visible(streamed[1]) else None)
    received, cpu = time.perf_counter(), thread_cpu(server.thread.native_id) - cpu
    text = server.runtime.db.value("SELECT content FROM messages WHERE id = ?", (int(final[1]),))
    if len(backend.traces) == calls:
        raise RuntimeError(f"Chip acted instead of talking (the decoder took the prompt for a command): {text!r}")
    trace = backend.traces[calls]
    decide = sum(end - start for start, end in backend.decisions[decisions:])
    parts = (decide, trace.called - sent - decide, trace.first - trace.called, first - trace.first, shown - first,
             received - trace.end, cpu)
    return Round("app", first - sent, shown - sent, received - first, backend.count_tokens(text), text,
                 {name: v * 1000 for name, v in zip(PARTS, parts)}, frames)


def scratch_context(runtime: Runtime, backend: FixedSettings) -> list[dict]:
    """The messages the chat builds for PROMPT in a fresh conversation."""
    conversations = runtime.chat.conversations
    scratch = conversations.create()
    conversations.add(scratch["id"], "user", PROMPT)
    return build_context(runtime, backend, scratch["id"]).messages


COLUMNS = ("round", "side", "TTFT ms", "text ms", "tokens", "span s", "tok/s", "others", "frames")
PARTS = ("decide", "other setup", "model TTFT", "to client", "to text", "to final", "server CPU")  # app only, ms


def report(line: int, r: Round) -> None:
    parts = "".join(f"{v:>{len(name) + 2}.1f}" for name, v in zip(PARTS, r.parts.values()))
    print(f"{line:>5} {r.side:>4} {r.ttft * 1000:8.1f} {r.shown * 1000:8.1f} {r.tokens:6} {r.span:6.2f} "
          f"{r.rate:6.2f} {r.others:6.2f} {r.frames:6}{parts}")


async def set_mode(ws, mode: str) -> None:
    """Switch Chip's sticky mode as a user does: send "/auto" or "/chat" and wait for the answer."""
    await ws.send(json.dumps({"action": "send", "message": f"/{mode}"}))
    while not FINAL.search(await asyncio.wait_for(ws.recv(), 30)):
        pass


async def run(rounds: int, tokens: int, models_dir: Path, mode: str, budget: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=free_port(), models_dir=models_dir)
        setup_logging(config.log_path, console=False)
        backend = FixedSettings(models_dir, tokens)
        runtime = Runtime(config, backend)
        server = LiveServer(config, runtime).start()
        try:
            await backend.wait_ready(120)
            messages = scratch_context(runtime, backend)
            results = await measure(server, backend, messages, config.origin, rounds, mode, budget)
        finally:
            server.stop()
        mismatched = sum(t.messages != messages for t in backend.traces)
        prompt_tokens = sum(backend.count_tokens(m["content"]) for m in messages)
    summarize(results, tokens, prompt_tokens, mismatched, backend, mode)


async def measure(server: LiveServer, backend, messages, origin: str, rounds: int, mode: str,
                  budget: float) -> list[Round]:
    """Warm up, then alternate raw and app rounds; start no new pair once `budget` seconds have passed."""
    headers = {"Origin": origin}
    deadline = time.perf_counter() + budget
    ws_url = origin.replace("http://", "ws://") + "/chat/ws?tab=bench"
    async with httpx.AsyncClient(base_url=origin, headers=headers) as client, \
            connect(ws_url, origin=origin, proxy=None, max_size=None) as ws:
        await set_mode(ws, mode)
        print(" ".join(f"{c:>{w}}" for c, w in zip(COLUMNS, (5, 4, 8, 8, 6, 6, 6, 6, 6)))
              + "".join(f"  {name}" for name in PARTS))
        results = []
        for line in range(rounds + 1):  # round 0 is the warm-up of each side
            if line > 1 and time.perf_counter() > deadline:
                print(f"(stopping after {line - 1} of {rounds} rounds: the {budget:g} s budget is spent)")
                break
            for side in ("raw", "app"):
                (machine, mine), started = cpu_seconds(), time.perf_counter()
                r = await (raw_round(backend, messages) if side == "raw"
                           else app_round(server, backend, client, ws))
                (machine_after, mine_after), wall = cpu_seconds(), time.perf_counter() - started
                r.others = max(0.0, (machine_after - machine) - (mine_after - mine)) / wall
                report(line, r)
                if line:
                    results.append(r)
        return results


def quiet_pairs(results: list[Round]) -> tuple[list[Round], list[Round]]:
    """The (raw, app) rounds of the pairs no other process disturbed; all of them if none was quiet."""
    pairs = list(zip(results[0::2], results[1::2]))
    quiet = [p for p in pairs if max(p[0].others, p[1].others) < QUIET_CORES] or pairs
    return [raw for raw, _ in quiet], [app for _, app in quiet]


def summarize(results: list[Round], tokens: int, prompt_tokens: int, mismatched: int,
              backend: FixedSettings, mode: str) -> None:
    rounds = len(results) // 2
    raw, app = quiet_pairs(results)
    same = {side: "yes" if all(r.text == results[0].text for r in results if r.side == side) else "no"
            for side in ("raw", "app")}
    busy = [r.others for r in results]
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; model {backend.model} ({backend.n_threads} threads); "
          f"{rounds} round{'s' if rounds != 1 else ''} per side after 1 warm-up; "
          f"max {tokens} tokens, temperature 0; prompt {prompt_tokens} tokens; chat mode {mode}")
    print(f"context the app sent == raw context: {'yes' if not mismatched else f'NO ({mismatched} differ)'}; "
          f"every raw reply the same: {same['raw']}; app replies the same as raw: {same['app']}")
    quiet = sum(max(r.others, a.others) < QUIET_CORES for r, a in zip(results[0::2], results[1::2]))
    print(f"other processes kept up to {max(busy):.2f} cores busy; "
          + (f"medians over all {rounds} pairs" if quiet == rounds else
             f"medians over the {quiet} of {rounds} pairs where they kept under {QUIET_CORES} busy" if quiet else
             f"NO pair was quiet (other processes kept >= {QUIET_CORES} cores busy): rerun on a quiet machine"))
    for label, ms in (("TTFT, first piece", lambda r: r.ttft * 1000),
                      ("TTFT, visible text", lambda r: r.shown * 1000)):
        median_raw, median_app = statistics.median(map(ms, raw)), statistics.median(map(ms, app))
        verdict = "ok" if median_app - median_raw <= TTFT_TARGET_MS else "MISSED"
        print(f"median {label:18}  raw {median_raw:8.1f} ms  app {median_app:8.1f} ms  "
              f"difference {median_app - median_raw:+7.1f} ms  (target <= +{TTFT_TARGET_MS:.0f} ms: {verdict})")
    rate_raw, rate_app = statistics.median(r.rate for r in raw), statistics.median(r.rate for r in app)
    verdict = "ok" if rate_app / rate_raw >= RATE_TARGET else "MISSED"
    print(f"median {'tokens/s':18}  raw {rate_raw:8.2f}     app {rate_app:8.2f}     "
          f"ratio {rate_app / rate_raw:12.3f}     (target >= {RATE_TARGET}: {verdict})")
    print("app breakdown, medians: " + "; ".join(
        f"{name} {statistics.median(r.parts[name] for r in app):.1f} ms" for name in PARTS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens of every reply")
    parser.add_argument("--budget", type=float, default=90.0,
                        help="seconds after which no new pair of rounds starts (outside load slows the model)")
    parser.add_argument("--mode", choices=("auto", "chat"), default="auto",
                        help="Chip's mode: auto (the default: a decoder call first decides whether to act) "
                             "or chat (talk only: the bare streaming path)")
    parser.add_argument("--models", type=Path, default=Path(os.environ.get("THESEUS_MODELS", ROOT / "data/models")),
                        help="the directory holding the assembled model (default: $THESEUS_MODELS or data/models)")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.tokens, args.models, args.mode, args.budget))


if __name__ == "__main__":
    main()
