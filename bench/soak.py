"""Soak: three browser tabs and Chip issuing mixed operations at once; errors, lost updates, p95 latency.

Run by hand (not a test; heavy):  .venv/bin/python bench/soak.py [--ops 1000] [--chat 10] [--tabs 3]

A real server (uvicorn in this process, the real embedded model) serves three Chromium tabs.
The tabs take turns doing what a person does (add, rename, tick, delete a task), each waiting
until its own page shows the change. Meanwhile "Chip" works from another thread: most of its
operations go straight through the registry as `actor="llm"` (as the chat agent's actions do),
and `--chat` of them are real chat commands decoded by the embedded model. Afterwards every tab
must show exactly the tasks in the database (a difference is a lost update). Latency is per
operation, from the actor's side; the baseline is the same operation with no load, measured first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the live-server helper

from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright  # noqa: E402

from theseus.actions import OperationError  # noqa: E402
from theseus.config import Config  # noqa: E402
from theseus.llm import DEFAULT_MODEL, ensure_model  # noqa: E402
from theseus.llm.embedded import EmbeddedBackend  # noqa: E402
from theseus.logs import setup_logging  # noqa: E402
from theseus.runtime import Runtime  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, free_port  # noqa: E402

MAX_TASKS = 60  # past this, actors delete more than they add, so every task stays on the first page
ITEMS = "#main li.item"


class Results:
    """Latencies per kind, and what went wrong, from every actor (thread-safe)."""

    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.refused: Counter = Counter()  # e.g. a task another actor just deleted: a correct 404
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def time(self, kind: str, started: float) -> None:
        with self.lock:
            self.latency[kind].append((time.perf_counter() - started) * 1000)

    def refuse(self, kind: str) -> None:
        with self.lock:
            self.refused[kind] += 1

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)] if ordered else float("nan")


# ---- the tabs ----

def open_tab(context, url: str, results: Results):
    page = context.new_page()
    page.on("pageerror", lambda error: results.error(f"page error: {error}"))
    page.on("response", lambda r: r.status >= 500 and results.error(f"{r.status} {r.url}"))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url + "/apps/tasks")
    page.wait_for_function("document.body.dataset.live === 'open'")
    return page


def tab_op(page, runtime: Runtime, rng: random.Random, number: int, results: Results) -> None:
    """One thing a person does in this tab; then waits until this tab shows that row as the database has it
    (which may already include another actor's later change: that is not a lost update)."""
    page.bring_to_front()  # a person uses one tab at a time (a hidden tab's timers are throttled)
    items = page.locator(ITEMS)
    count = items.count()
    kind = "add" if count < 5 else rng.choice(["add", "rename", "toggle", "delete"] if count < MAX_TASKS
                                               else ["rename", "toggle", "delete", "delete"])
    started = time.perf_counter()
    item_id = None if kind == "add" else items.nth(rng.randrange(count)).get_attribute("id")
    try:
        with page.expect_response(lambda r: "/ops/tasks." in r.url, timeout=10_000) as answer:
            if kind == "add":
                page.fill("#tasks-add input[name=name]", f"tab task {number}")
                page.click("#tasks-add button")
            elif kind == "rename":
                page.locator(f"#{item_id} .name").click(timeout=5000)
                page.fill(f"#{item_id} input[name=name]", f"renamed {number}", timeout=5000)
                page.press(f"#{item_id} input[name=name]", "Enter")
            else:
                page.locator(f"#{item_id} {'input[type=checkbox]' if kind == 'toggle' else 'button.delete'}") \
                    .click(timeout=5000)
    except PlaywrightTimeout:
        if item_id and row_stored(runtime, item_id) is None:
            results.refuse(f"tab {kind}")  # another actor deleted the row before the click landed
        else:
            results.error(f"tab {kind} {item_id}: the page did not let the action happen")
        return
    response = answer.value
    if response.status >= 500:
        results.error(f"tab {kind}: HTTP {response.status}")
    elif response.status >= 400:
        results.refuse(f"tab {kind}")  # e.g. the task was deleted by another actor a moment before
    if kind == "add" and response.ok:
        found = re.search(r'id="(task-\d+)"', response.text())
        item_id = found and found.group(1)
    if item_id:
        settle(page, runtime, item_id, f"tab {kind}", results)
    page.evaluate("document.getElementById('toast').textContent = ''")
    results.time(f"tab {kind}", started)


def row_shown(page, item_id: str):
    return page.evaluate("""id => { const el = document.getElementById(id);
        return el && !el.classList.contains('editing') ?
            [el.querySelector('.name').textContent, el.classList.contains('done')] : null; }""", item_id)


def row_stored(runtime: Runtime, item_id: str):
    rows = runtime.db.query("SELECT name, done FROM tasks WHERE id = ?", (int(item_id.split("-")[1]),))
    return [rows[0]["name"], bool(rows[0]["done"])] if rows else None


def settle(page, runtime: Runtime, item_id: str, kind: str, results: Results, timeout: float = 30) -> None:
    """Wait until the tab shows the row exactly as stored (or not at all, if it is gone)."""
    deadline = time.monotonic() + timeout
    while row_shown(page, item_id) != row_stored(runtime, item_id):
        if time.monotonic() > deadline:
            results.error(f"{kind}: {item_id} shows {row_shown(page, item_id)}, "
                          f"stored {row_stored(runtime, item_id)}")
            return
        time.sleep(0.01)


# ---- Chip ----

def chip(runtime: Runtime, count: int, chats: int, results: Results, rng: random.Random) -> None:
    """Chip's work, spread over the tabs' time: direct operations with a real chat command every so often."""
    every = max(1, count // max(chats, 1))
    for number in range(count):
        if chats and number % every == every // 2 and number // every < chats:
            chat_command(runtime, number, results)
        chip_op(runtime, number, results, rng)
        time.sleep(rng.uniform(0, 0.3))


def chip_op(runtime: Runtime, number: int, results: Results, rng: random.Random) -> None:
    """One direct operation, as the chat agent runs them (actor="llm")."""
    ids = [r["id"] for r in runtime.db.query("SELECT id FROM tasks WHERE profile_id = ?", (runtime.profile_id,))]
    if len(ids) < 5:
        op, args = "tasks.insert", {"name": f"chip task {number}"}
    else:
        op, args = rng.choice([
            ("tasks.insert", {"name": f"chip task {number}"}) if len(ids) < MAX_TASKS
            else ("tasks.delete", {"id": rng.choice(ids)}),
            ("tasks.toggle", {"id": rng.choice(ids)}), ("tasks.update", {"id": rng.choice(ids), "name": f"chip {number}"}),
            ("tasks.delete", {"id": rng.choice(ids)}), ("tasks.sort", {"ids": rng.sample(ids, 3)})])
    started = time.perf_counter()
    try:
        runtime.registry.execute(op, args, actor="llm")
    except OperationError as error:
        if error.status >= 500:
            results.error(f"chip {op}: {error.message}")
        else:
            results.refuse(f"chip {op}")
    results.time(f"chip {op.split('.')[1]}", started)


def chat_command(runtime: Runtime, number: int, results: Results) -> None:
    """A real chat command, decoded by the embedded model and executed as Chip's action."""
    async def one(message: str) -> None:
        async for _ in runtime.chat.send(message):
            runtime.chat.stop()  # only its action matters here, not a long chatty reply

    started = time.perf_counter()
    try:
        asyncio.run(one(f"/command add a task to buy soak item {number}"))
    except Exception as error:
        results.error(f"chat: {type(error).__name__}: {error}")
    results.time("chip chat command", started)


# ---- the end state ----

def shown(page) -> list[tuple[str, str, bool]]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#main li.item')).map(li =>
        [li.id, li.querySelector('.name').textContent, li.classList.contains('done')])""")


def stored(runtime: Runtime) -> list[tuple[str, str, bool]]:
    rows = runtime.db.query("SELECT * FROM tasks WHERE profile_id = ? ORDER BY priority, id", (runtime.profile_id,))
    return [[f"task-{r['id']}", r["name"], bool(r["done"])] for r in rows]


def lost_updates(pages, runtime: Runtime, settle: float = 10.0) -> list[int]:
    """Per tab, how many rows differ from the database once everything has settled."""
    deadline = time.monotonic() + settle
    while True:
        truth = stored(runtime)
        diffs = [len({tuple(r) for r in shown(p)} ^ {tuple(r) for r in truth}) for p in pages]
        if not any(diffs) or time.monotonic() > deadline:
            return diffs
        time.sleep(0.25)


def baseline(runtime: Runtime, rounds: int = 50) -> list[float]:
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        outcome = runtime.registry.execute("tasks.insert", {"name": f"baseline {i}"}, actor="llm")
        runtime.registry.execute("tasks.delete", {"id": outcome.value["id"]}, actor="llm")
        samples.append((time.perf_counter() - started) * 1000 / 2)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations in all (tabs and Chip)")
    parser.add_argument("--chat", type=int, default=10, help="of Chip's operations, how many are real chat commands")
    parser.add_argument("--tabs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    models = Path(os.environ.get("THESEUS_MODELS") or Path(__file__).resolve().parents[1] / "data" / "models")
    ensure_model(models, DEFAULT_MODEL)
    backend = EmbeddedBackend(models)
    asyncio.run(backend.wait_ready(120))
    rng, results = random.Random(args.seed), Results()
    tab_count = args.ops * 3 // 5
    chip_count = args.ops - tab_count - args.chat
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), port=free_port())
        setup_logging(config.log_path, console=False)
        runtime = Runtime(config, backend)
        server = LiveServer(config, runtime).start()
        base = baseline(runtime)
        started = time.perf_counter()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.set_default_timeout(30_000)
            pages = [open_tab(context, server.url, results) for _ in range(args.tabs)]
            chip_thread = threading.Thread(target=chip, args=(runtime, chip_count, args.chat, results,
                                                              random.Random(args.seed + 1)))
            chip_thread.start()
            for number in range(tab_count):
                try:
                    tab_op(pages[number % len(pages)], runtime, rng, number, results)
                except Exception as error:  # a tab that never showed its own change
                    results.error(f"tab op {number}: {type(error).__name__}: {str(error).splitlines()[0]}")
            chip_thread.join()
            elapsed = time.perf_counter() - started
            diffs = lost_updates(pages, runtime)
            browser.close()
        server.stop()
        log_errors = [line for line in config.log_path.read_text().splitlines() if "| ERROR" in line]
        runtime.close()
    asyncio.run(backend.close())
    report(args, results, base, diffs, elapsed, log_errors)


def report(args, results: Results, base: list[float], diffs: list[int], elapsed: float, log_errors: list[str]) -> None:
    done = sum(len(v) for v in results.latency.values())
    floor = statistics.median(base)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{done} operations in {elapsed:.1f} s ({done / elapsed:.1f}/s): {args.tabs} tabs, Chip "
          f"({args.chat} of them real chat commands decoded by the embedded model)")
    print(f"baseline: execute with no load, p50 {floor:.2f} ms")
    print(f"{'operation':22} {'count':>6} {'p50 ms':>9} {'p95 ms':>9} {'p95 / baseline':>15}")
    everything = []
    for kind, samples in sorted(results.latency.items()):
        everything += samples
        print(f"{kind:22} {len(samples):6} {statistics.median(samples):9.1f} {p95(samples):9.1f} "
              f"{p95(samples) / floor:14.0f}x")
    print(f"{'all':22} {len(everything):6} {statistics.median(everything):9.1f} {p95(everything):9.1f}")
    print(f"refused as they should be (a task another actor had just deleted): {sum(results.refused.values())} "
          f"{dict(results.refused)}")
    print(f"errors: {len(results.errors)}" + "".join(f"\n  {e}" for e in results.errors[:20]))
    print(f"ERROR lines in server.log: {len(log_errors)}" + "".join(f"\n  {e}" for e in log_errors[:10]))
    print(f"lost updates (rows a tab shows differently from the database, per tab): {diffs}")


if __name__ == "__main__":
    main()
