"""Chip's code-change proposals with the real embedded model: how many requests give the right diff, and how fast.

Run by hand (not a test):  .venv/bin/python bench/code_change.py

Each request is asked of a fresh copy of a user's workflow plugin (the Greeting workflow of the tests). A
proposal is right when it changes the definition the request is about, the new file parses, and it contains the
expected text (and no longer the text it replaces). Nothing is applied. The time is the whole proposal: finding
the definition and the model's constrained decode.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_changes import GREETING  # noqa: E402
from theseus.changes.proposer import propose  # noqa: E402
from theseus.config import Config  # noqa: E402
from theseus.logs import setup_logging  # noqa: E402
from theseus.runtime import Runtime  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
CASES = [  # (request, text the new file must contain, text it must no longer contain)
    ("make the greeting step suggest 'Hi' instead of 'Hello'", 'f"Hi, {values', 'f"Hello, {'),
    ("change the greeting step so its label is 'Your greeting'", 'label="Your greeting"', 'label="Greeting",'),
    ("make the greeting workflow's description say 'Say hi to someone.'", '"Say hi to someone."',
     '"A name, then a greeting."'),
    ("change the name step's label to 'First name'", 'label="First name"', 'label="Your name"'),
    ("make the greeting step suggest 'Welcome' instead of 'Hello'", 'f"Welcome, {values', 'f"Hello, {'),
    ("change the greeting workflow's display name to 'Greetings'", 'display_name = "Greetings"',
     'display_name = "Greeting"'),
]


async def run() -> None:
    right, times = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "workflows").mkdir(parents=True)
        setup_logging(data / "bench.log", console=False)
        runtime = Runtime(Config(data_dir=data, models_dir=MODELS, temperature=0.0))
        await runtime.backend.start()
        await runtime.backend.wait_ready(120)
        for request, wanted, gone in CASES:
            (data / "workflows" / "greeting.py").write_text(GREETING)
            started = time.perf_counter()
            definition, edit, reason = await propose(runtime, runtime.backend, request)
            times.append(time.perf_counter() - started)
            ok = edit is not None and wanted in edit.after and gone not in edit.after
            right += ok
            changed = [line[1:].strip() for line in edit.diff.splitlines() if line.startswith("+") and
                       not line.startswith("+++")] if edit else []
            print(f"{'ok ' if ok else 'MISS'} {times[-1]:5.1f} s  {request}\n       "
                  f"{definition.cite if definition else '-'}: {changed or reason}")
        await runtime.backend.close()
        runtime.close()
    print(f"\nright: {right}/{len(CASES)}; median {statistics.median(times):.1f} s, "
          f"slowest {max(times):.1f} s per proposal (embedded model, this machine)")


if __name__ == "__main__":
    asyncio.run(run())
