"""CRUD benchmark: server time of the HTMX task routes and the full page with 10,000 tasks.

Run by hand (not a test):  .venv/bin/python bench/crud.py [--tasks 10000] [--rounds 300]

Each request goes through the whole ASGI app in-process (middleware, routing,
validation, transaction, event log, rendering, broadcast to one listening tab),
so the figures are server time without the network. Baselines measured in the
same run: GET /health (the framework's floor) and Registry.execute called
directly (the operation without HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from theseus.app import create_app
from theseus.config import Config
from theseus.logs import setup_logging
from theseus.runtime import Runtime

HX = {"HX-Request": "true", "X-Theseus-Tab": "bench"}


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def seed(runtime: Runtime, count: int) -> None:
    """Insert `count` tasks in one transaction (setup, not measured)."""
    profile = runtime.profile_id
    with runtime.db.transaction():
        runtime.db.conn.executemany("INSERT INTO tasks (name, done, priority, profile_id) VALUES (?, ?, ?, ?)",
                                    [(f"task number {i}", i % 3 == 0, i, profile) for i in range(count)])


async def timed(client: httpx.AsyncClient, method: str, url: str, rounds: int, body=None) -> list[float]:
    samples = []
    for i in range(rounds):
        data = body(i) if callable(body) else body
        started = time.perf_counter()
        response = await client.request(method, url, data=data, headers=HX)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return samples


def timed_direct(runtime: Runtime, rounds: int) -> list[float]:
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        runtime.registry.execute("tasks.toggle", {"id": 1 + (i * 37) % 10_000})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run(tasks: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=5001)
        setup_logging(config.log_path, console=False)
        runtime = Runtime(config)
        seed(runtime, tasks)
        app = create_app(config, runtime)
        listener = runtime.broadcaster.subscribe("other-tab")  # one other tab receives every change
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=config.origin) as client:
            await timed(client, "GET", "/health", 20)  # warm up
            results = {
                "GET /health (baseline)": await timed(client, "GET", "/health", rounds),
                "execute tasks.toggle (no HTTP)": await asyncio.to_thread(timed_direct, runtime, rounds),
                "POST toggle": await timed(client, "POST", "/ops/tasks.toggle", rounds,
                                           lambda i: {"id": str(1 + (i * 53) % tasks)}),
                "POST insert": await timed(client, "POST", "/ops/tasks.insert", rounds,
                                           lambda i: {"name": f"benchmark task {i}"}),
                "POST update": await timed(client, "POST", "/ops/tasks.update", rounds,
                                           lambda i: {"id": str(1 + (i * 71) % tasks), "name": f"renamed {i}"}),
                "GET /apps/tasks (full page)": await timed(client, "GET", "/apps/tasks", max(10, rounds // 30)),
            }
        delivered = listener.queue.qsize()
        listener.close()
        runtime.close()
    report(results, f"{tasks:,} tasks; {rounds} rounds per route")
    print(f"live-sync messages delivered to the other tab: {delivered}")


def report(results: dict[str, list[float]], setup: str) -> None:
    """Print p50/p95 per route and p50 as a ratio of the first (baseline) route."""
    floor = percentiles(next(iter(results.values())))[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {setup}")
    print(f"{'route':34} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}")
    for name, samples in results.items():
        p50, p95 = percentiles(samples)
        print(f"{name:34} {p50:8.2f} {p95:8.2f} {p50 / floor:14.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.rounds))


if __name__ == "__main__":
    main()
