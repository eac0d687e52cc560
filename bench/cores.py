"""How many cores processes outside a benchmark kept busy: on two cores any outside load slows llama.cpp many times.

Shared by the benchmarks in bench/ (run as scripts, so this folder is on sys.path).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (nan off Linux)."""
    try:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return float("nan")
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def tree_busy(root: int) -> float:
    """CPU seconds used by a process and all its descendants (the benchmark, its server, its browser)."""
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False
    return sum(seconds for pid, seconds in used.items() if inside(pid))


class OthersMeter:
    """How many cores processes outside this benchmark kept busy between start() and stop()."""

    def start(self) -> None:
        self.wall, self.machine, self.mine = time.perf_counter(), machine_busy(), tree_busy(os.getpid())

    def stop(self) -> float:
        wall = time.perf_counter() - self.wall
        others = (machine_busy() - self.machine) - (tree_busy(os.getpid()) - self.mine)
        return max(0.0, others / wall) if wall > 0 and not math.isnan(others) else float("nan")
