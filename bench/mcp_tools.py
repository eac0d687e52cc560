"""MCP benchmark: a `tasks.toggle` tool call over Streamable HTTP vs the same operation through POST /ops, 10,000 tasks.

(Not bench/mcp.py: a script's folder comes first on Python's path, and that name would hide the `mcp` SDK from
every script here.)

Run by hand (not a test):  .venv/bin/python bench/mcp_tools.py [--tasks 10000] [--rounds 300]

A real `theseus serve` runs in its own process (no model, no indexing: nothing
else takes the cores) on a database seeded with the tasks, and one other tab
listens on its live-sync stream, so every change is also broadcast. The three
ways in are timed in turn, round by round, from this process over loopback:
- POST /ops/tasks.toggle, as the HTMX page sends it (the baseline);
- the MCP tool call through the official SDK's client (what an agent pays);
- the same tools/call as one plain HTTP POST of its JSON-RPC message (the server's share);
- the tool call through `theseus mcp` (stdio, as a desktop client starts it), which forwards it to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from crud import percentiles, seed  # bench/: run as a script, its folder is on sys.path
from theseus.config import Config
from theseus.logs import setup_logging
from theseus.runtime import Runtime
from theseus.security import mcp_token

HX = {"HX-Request": "true", "X-Theseus-Tab": "bench"}
NO_MODEL = "openai:http://127.0.0.1:9/v1#none"  # a backend that is never asked: the model must not take a core


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seeded(data_dir: Path, count: int) -> None:
    """A database with `count` tasks (setup, not measured)."""
    setup_logging(data_dir / "seed.log", console=False)
    runtime = Runtime(Config(data_dir=data_dir, llm=NO_MODEL))
    seed(runtime, count)
    runtime.close()


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "THESEUS_INDEX": "0", "THESEUS_LLM": NO_MODEL}
    server = subprocess.Popen([sys.executable, "-m", "theseus", "serve", "--no-watch", "--port", str(port),
                               "--data", str(data_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def listen(url: str, received: list) -> None:
    """One other tab on the live-sync stream: count what arrives."""
    with httpx.stream("GET", f"{url}/sync?tab=other", timeout=None) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: sync"):
                received.append(line)


async def run(tasks: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        seeded(data_dir, tasks)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(data_dir, port)
        received: list = []
        threading.Thread(target=listen, args=(url, received), daemon=True).start()
        token = mcp_token(data_dir)
        try:
            results = await measure(url, token, tasks, rounds, data_dir)
        finally:
            server.terminate()
            server.wait(10)
    report(results, f"{tasks:,} tasks; {rounds} rounds each, interleaved; a real server process over loopback")
    print(f"live-sync messages delivered to the other tab: {len(received)}")


async def measure(url: str, token: str, tasks: int, rounds: int, data_dir: Path) -> dict[str, list[float]]:
    names = ["POST /ops/tasks.toggle (baseline)", "MCP tools/call, SDK client", "MCP tools/call, one HTTP POST",
             "stdio theseus mcp, forwarded"]
    results: dict[str, list[float]] = {name: [] for name in names}
    auth = {"Authorization": f"Bearer {token}"}
    raw_headers = {**auth, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    desktop = StdioServerParameters(command=sys.executable, args=["-m", "theseus", "mcp", "--data", str(data_dir)],
                                    env={**os.environ, "THESEUS_LLM": NO_MODEL})
    async with httpx.AsyncClient(base_url=url) as web, \
            Client(streamable_http_client(url + "/mcp", http_client=httpx2.AsyncClient(headers=auth))) as agent, \
            Client(desktop) as stdio:
        for i in range(rounds + 20):  # the first 20 rounds warm up and are not kept
            row = str(1 + (i * 53) % tasks)
            started = time.perf_counter()
            response = await web.post("/ops/tasks.toggle", data={"id": row}, headers=HX)
            ops = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text[:200]
            started = time.perf_counter()
            result = await agent.call_tool("tasks.toggle", {"id": int(row)})
            sdk = (time.perf_counter() - started) * 1000
            assert not result.is_error, result
            message = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": "tasks.toggle", "arguments": {"id": int(row)}}}
            started = time.perf_counter()
            response = await web.post("/mcp", json=message, headers=raw_headers)
            raw = (time.perf_counter() - started) * 1000
            assert response.status_code == 200 and '"isError":false' in response.text, response.text[:200]
            started = time.perf_counter()
            result = await stdio.call_tool("tasks.toggle", {"id": int(row)})
            forwarded = (time.perf_counter() - started) * 1000
            assert not result.is_error, result
            if i >= 20:
                for name, sample in zip(names, (ops, sdk, raw, forwarded)):
                    results[name].append(sample)
    return results


def report(results: dict[str, list[float]], setup: str) -> None:
    """p50/p95 per way in, and each as a ratio of the baseline's."""
    base50, base95 = percentiles(next(iter(results.values())))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {setup}")
    print(f"{'way in':36} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
    for name, samples in results.items():
        p50, p95 = percentiles(samples)
        print(f"{name:36} {p50:8.2f} {p95:8.2f} {p50 / base50:9.2f}x {p95 / base95:9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.rounds))


if __name__ == "__main__":
    main()
