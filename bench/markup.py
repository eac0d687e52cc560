"""Markup benchmark: server-side rendering of a long chat reply and of a hostile 200 KB message.

Run by hand (not a test):  .venv/bin/python bench/markup.py [--size 200000] [--rounds 5]

The tests count work (calls) to check that rendering grows linearly; the seconds live here. For
each text it prints the best and median time of `render_markdown` at half and full size, their
ratio (2.0 means linear), and the throughput against a floor measured in the same run: copying the
text through `html.escape`, the least any renderer must do per character.
"""

from __future__ import annotations

import argparse
import html
import statistics
import time

from theseus.markup import render_markdown

TEXTS = {
    "long reply": "Some **bold** and a [link](https://example.com).\n\n- item `two`\n\n```python\nprint(1)\n```\n\n",
    "hostile": "<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)> **b**\n\n",
}


def timings(function, text: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(text)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="characters of the full-size text")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'text':<11} {'half ms':>8} {'full ms':>8} {'p50 ms':>8} {'full/half':>9} {'MB/s':>6} {'floor MB/s':>10}")
    for name, chunk in TEXTS.items():
        full = chunk * (args.size // len(chunk))
        half = full[: len(full) // 2]
        best_half = min(timings(render_markdown, half, args.rounds))
        full_samples = timings(render_markdown, full, args.rounds)
        floor = min(timings(html.escape, full, args.rounds))
        best_full = min(full_samples)
        print(f"{name:<11} {best_half * 1e3:8.1f} {best_full * 1e3:8.1f} {statistics.median(full_samples) * 1e3:8.1f}"
              f" {best_full / best_half:9.2f} {len(full) / best_full / 1e6:6.2f} {len(full) / floor / 1e6:10.1f}")


if __name__ == "__main__":
    main()
