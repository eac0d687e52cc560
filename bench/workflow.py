"""Workflow benchmark: server time of a step submit plus the next step's render, with 1,000 stored runs.

Run by hand (not a test):  .venv/bin/python bench/workflow.py [--runs 1000] [--rounds 300]

Each request goes through the whole ASGI app in-process (middleware, routing,
validation, transaction, event log, the run column's rendering, broadcast to
one listening tab, Chip's scripted line for the next step). "submit + next
step" is what one Next click costs: the POST, then the GET that the
`hx-trigger="load"` placeholder makes for the next card. Baseline measured in
the same run: GET /health.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from crud import HX, report, timed

from theseus.app import create_app
from theseus.config import Config
from theseus.db import utc_now
from theseus.logs import setup_logging
from theseus.runtime import Runtime


def seed(runtime: Runtime, count: int) -> list[str]:
    """`count` Hello runs at step 1 (setup, not measured); returns their keys."""
    now, profile = utc_now(), runtime.profile_id
    keys = [f"home-hello-{i:04d}" for i in range(1, count + 1)]
    with runtime.db.transaction():
        runtime.db.conn.executemany(
            "INSERT INTO pipelines (key, app, profile_id, data, created, updated) VALUES (?, 'hello', ?, ?, ?, ?)",
            [(key, profile, json.dumps({} if i % 2 else {"step_01": {"value": f"user {i}", "done": False}}),
              now, now) for i, key in enumerate(keys)])
    return keys


async def submit_and_next(client: httpx.AsyncClient, keys: list[str], rounds: int) -> list[float]:
    samples = []
    for i in range(rounds):
        key = keys[i % len(keys)]
        started = time.perf_counter()
        submitted = await client.post("/ops/hello.submit", data={"key": key, "step": "step_01", "value": f"Ada {i}"},
                                      headers=HX)
        following = await client.get(f"/apps/hello/runs/{key}/steps/step_02", headers=HX)
        samples.append((time.perf_counter() - started) * 1000)
        assert submitted.status_code == following.status_code == 200, submitted.text[:200]
        assert f"Hello, Ada {i}!" in following.text
    return samples


async def run(runs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=5001)
        setup_logging(config.log_path, console=False)
        runtime = Runtime(config)
        keys = seed(runtime, runs)
        app = create_app(config, runtime)
        listener = runtime.broadcaster.subscribe("other-tab")  # one other tab receives every change
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=config.origin) as client:
            await timed(client, "GET", "/health", 20)  # warm up
            results = {
                "GET /health (baseline)": await timed(client, "GET", "/health", rounds),
                "submit + next step (one Next)": await submit_and_next(client, keys, rounds),
                "POST submit only": await timed(client, "POST", "/ops/hello.submit", rounds,
                                                lambda i: {"key": keys[-1 - i % len(keys)], "step": "step_01",
                                                           "value": f"Grace {i}"}),
                "GET run page (htmx)": await timed(client, "GET", f"/apps/hello?run={keys[0]}", rounds),
                "GET landing, 1,000 runs stored": await timed(client, "GET", "/apps/hello", rounds),
            }
        stored = runtime.db.value("SELECT COUNT(*) FROM pipelines")
        listener.close()
        runtime.close()
    report(results, f"{stored:,} stored runs; {rounds} rounds per route")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.rounds))


if __name__ == "__main__":
    main()
